"""Training configs: mmengine Python configs, ``--cfg-options`` overrides, the resolved copy.

A training config is an mmengine Python config (``_base_`` inheritance, plain ``dict``s) whose
components are named only by ``type=`` strings, so a config never imports code. The keys the
engine reads, with their defaults, are in ``DEFAULTS`` below and documented in
``docs/training.md``; an unknown key inside one of these sections is an error (a typo such as
``max_iter`` would otherwise be silently ignored).

Relative paths in a config (data folders) are resolved against the current working directory,
as in mmengine / MMagic: run training from the repository root.
"""

from __future__ import annotations

import ast
import copy
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mmengine.config import Config

from ..errors import InvalidInputError
from ..image_io import atomic_write_text

__all__ = [
    "DEFAULTS",
    "config_digest",
    "config_text",
    "load_config",
    "parse_cfg_options",
    "save_config",
]

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "device": "auto",
    "deterministic": False,
    "work_dir": None,
    "log_interval": 10,
    "progress": True,
    "train_cfg": {
        "max_iters": 1000,
        "val_interval": 0,
        "loss": "l2",
        "grad_clip": None,
        "ema": None,
    },
    "optimizer": {"type": "Adam", "lr": 1e-3},
    "lr_schedule": {"type": "constant"},
    "checkpoint": {"interval": 500, "keep": 2},
    "train_dataloader": {"batch_size": 16, "num_workers": 0},
    "train_noise": None,
    "val_dataset": None,
    "val_noise": None,
}
"""Every top-level key the engine reads and its default. ``model`` and
``train_dataloader.dataset`` have no default and are required."""

_SECTIONS_WITH_FIXED_KEYS: dict[str, frozenset[str]] = {
    "train_cfg": frozenset(DEFAULTS["train_cfg"]),
    "checkpoint": frozenset(DEFAULTS["checkpoint"]),
    "train_dataloader": frozenset({"batch_size", "num_workers", "dataset"}),
}


def parse_cfg_options(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` overrides as mmengine's ``--cfg-options`` does.

    Keys are dotted paths into the config (``optimizer.lr``, ``train_cfg.ema.decay``). Values are
    Python literals when they parse (``1e-3``, ``[0, 50]``, ``None``, ``'x'``); ``true``/``false``
    (any case) are booleans, ``none``/``null`` is ``None``; anything else is a string. A value
    holding a top-level comma that is not a literal becomes a list (``a,b`` -> ``['a', 'b']``).

    Args:
        pairs: strings of the form ``key=value``.

    Returns:
        ``{dotted key: value}``, ready for ``Config.merge_from_dict``.

    Raises:
        InvalidInputError: a pair without ``=`` or with an empty or malformed key.
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or not key or not all(part.isidentifier() or part.isdigit() for part in parts):
            raise InvalidInputError(
                f"--cfg-options: expected key=value with a dotted key such as optimizer.lr=1e-3, got {pair!r}"
            )
        options[key] = _parse_value(raw.strip())
    return options


def _parse_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"none", "null"}:
        return None
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        pass
    if "," in raw and not raw.startswith(("[", "(", "{")):
        return [_parse_value(item.strip()) for item in raw.split(",")]
    return raw


def load_config(
    path: str | Path,
    options: Mapping[str, Any] | Iterable[str] | None = None,
) -> Config:
    """Read a training config, apply overrides, fill defaults and check it.

    Args:
        path: an mmengine Python config (``.py``); ``_base_`` files are merged.
        options: overrides, either parsed (``{"optimizer.lr": 1e-3}``) or raw ``key=value``
            strings as given to ``--cfg-options``.

    Returns:
        The resolved ``Config`` (defaults filled in for every key in ``DEFAULTS``).

    Raises:
        InvalidInputError: a missing file, a syntax error, a missing ``model`` or dataset, a
            component without ``type``, or an unknown key in a fixed section.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(f"config {file} not found")
    if file.suffix != ".py":
        raise InvalidInputError(f"config {file}: training configs are mmengine Python files (.py)")
    try:
        cfg = Config.fromfile(str(file))
    except Exception as exc:  # mmengine raises SyntaxError, FileNotFoundError, KeyError, ...
        raise InvalidInputError(f"config {file} cannot be read: {type(exc).__name__}: {exc}") from exc
    if options:
        parsed = dict(options) if isinstance(options, Mapping) else parse_cfg_options(options)
        try:
            cfg.merge_from_dict(parsed)
        except Exception as exc:
            raise InvalidInputError(f"--cfg-options {parsed} cannot be applied: {exc}") from exc
    return resolve(cfg, source=str(file))


def resolve(cfg: Config, source: str = "config") -> Config:
    """Fill defaults into ``cfg`` (a copy) and validate it; see ``load_config``."""
    data = copy.deepcopy(cfg.to_dict())
    for key, default in DEFAULTS.items():
        if isinstance(default, dict) and isinstance(data.get(key), Mapping):
            merged = copy.deepcopy(default)
            merged.update(data[key])
            data[key] = merged
        elif key not in data:
            data[key] = copy.deepcopy(default)
    _validate(data, source)
    resolved = Config(data, filename=cfg.filename)
    return resolved


def _validate(data: dict[str, Any], source: str) -> None:
    def need_type(section: str, value: Any) -> None:
        if not isinstance(value, Mapping) or "type" not in value:
            raise InvalidInputError(f"{source}: {section} must be a dict with a 'type' key, got {value!r}")

    if "model" not in data:
        raise InvalidInputError(f"{source}: no 'model' (e.g. model = dict(type='dncnn', depth=17))")
    need_type("model", data["model"])
    for section, allowed in _SECTIONS_WITH_FIXED_KEYS.items():
        value = data[section]
        if not isinstance(value, Mapping):
            raise InvalidInputError(f"{source}: {section} must be a dict, got {value!r}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise InvalidInputError(
                f"{source}: unknown key(s) {unknown} in {section}; known: {sorted(allowed)}"
            )
    if "dataset" not in data["train_dataloader"]:
        raise InvalidInputError(f"{source}: train_dataloader has no 'dataset'")
    need_type("train_dataloader.dataset", data["train_dataloader"]["dataset"])
    need_type("optimizer", data["optimizer"])
    need_type("lr_schedule", data["lr_schedule"])
    for section in ("train_noise", "val_noise"):
        if data[section] is not None:
            need_type(section, data[section])
    train = data["train_cfg"]
    if not isinstance(train["max_iters"], int) or train["max_iters"] < 1:
        raise InvalidInputError(f"{source}: train_cfg.max_iters must be a positive integer, got {train['max_iters']!r}")
    for key, value in (
        ("train_cfg.val_interval", train["val_interval"]),
        ("checkpoint.interval", data["checkpoint"]["interval"]),
        ("checkpoint.keep", data["checkpoint"]["keep"]),
        ("log_interval", data["log_interval"]),
        ("train_dataloader.num_workers", data["train_dataloader"]["num_workers"]),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidInputError(f"{source}: {key} must be an integer >= 0, got {value!r}")
    batch = data["train_dataloader"]["batch_size"]
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise InvalidInputError(f"{source}: train_dataloader.batch_size must be a positive integer, got {batch!r}")
    if not isinstance(data["seed"], int) or data["seed"] < 0:
        raise InvalidInputError(f"{source}: seed must be an integer >= 0, got {data['seed']!r}")


def config_text(cfg: Config) -> str:
    """The resolved config as Python source that ``Config.fromfile`` reads back."""
    return Config(cfg.to_dict()).pretty_text


def config_digest(cfg: Config) -> str:
    """SHA-256 of ``config_text(cfg)``: identifies a resolved config in checkpoints."""
    return hashlib.sha256(config_text(cfg).encode("utf-8")).hexdigest()


def save_config(cfg: Config, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the resolved config atomically as a Python config file.

    Args:
        cfg: a resolved config (``load_config``).
        path: destination ``.py`` file.
        overwrite: replace an existing file.

    Returns:
        The written path.
    """
    source = f"# Resolved noiseshift training config (defaults and overrides applied).\n{config_text(cfg)}"
    return atomic_write_text(path, source, overwrite=overwrite)
