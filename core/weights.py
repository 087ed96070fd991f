"""Saving and loading weights.

noiseshift writes safetensors whose metadata carries the component's registry name and
constructor config, so ``noiseshift.load(path)`` rebuilds the model from the file alone.
Official releases in the legacy ``.pth`` format are read with ``torch.load(weights_only=True)``
(never a full unpickle), unwrapped from ``params`` / ``params_ema`` / ``state_dict`` and loaded
strictly, with missing and unexpected keys named.

A *domain head* is a safetensors file holding only the tensors an adapter changed; it loads on
top of base weights (``apply_head``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from .denoiser import Denoiser
from .errors import OutputExistsError, WeightsError
from .image_io import atomic_write_bytes

FORMAT_VERSION = "1"
LEGACY_WRAPPER_KEYS: tuple[str, ...] = ("params_ema", "params", "state_dict", "model", "net")
"""Keys under which checkpoints nest their state dict, in the order they are preferred."""


def save(
    model: Denoiser,
    path: str | Path,
    *,
    overwrite: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save a registered denoiser as safetensors with the metadata that rebuilds it.

    Args:
        model: a Denoiser whose class is registered (``model.name``) and whose constructor
            arguments (``model.config()``) are JSON-serialisable.
        path: destination ``.safetensors`` file.
        overwrite: replace an existing file.
        extra: additional JSON-serialisable metadata (training config, metrics, ...).

    Returns:
        The written path. The file is written atomically.
    """
    if not model.name:
        raise WeightsError(f"{type(model).__name__} has no registry name; cannot save it for load()")
    metadata = {
        "noiseshift_format": FORMAT_VERSION,
        "kind": "model",
        "type": model.name,
        "config": _to_json(model.config(), "constructor config"),
    }
    if extra:
        metadata["extra"] = _to_json(dict(extra), "extra metadata")
    return _write(model.state_dict(), path, metadata, overwrite)


def save_head(
    tensors: Mapping[str, torch.Tensor],
    path: str | Path,
    *,
    base: Denoiser,
    adapter: str,
    adapter_config: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a domain head: only the tensors an adapter changed, plus what they apply to."""
    metadata = {
        "noiseshift_format": FORMAT_VERSION,
        "kind": "head",
        "type": base.name,
        "config": _to_json(base.config(), "base config"),
        "adapter": adapter,
        "adapter_config": _to_json(dict(adapter_config or {}), "adapter config"),
    }
    return _write(dict(tensors), path, metadata, overwrite)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The decoded noiseshift metadata of a safetensors file (empty for foreign files)."""
    from safetensors import safe_open

    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        if key in {"config", "extra", "adapter_config"}:
            try:
                decoded[key] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise WeightsError(f"{path}: metadata {key!r} is not valid JSON") from exc
        else:
            decoded[key] = value
    return decoded


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read tensors from ``.safetensors`` or (safely) from a legacy ``.pth``/``.pt``/``.ckpt``.

    Legacy files are read with ``torch.load(weights_only=True)``, which refuses pickled code;
    the state dict is unwrapped from ``params_ema``/``params``/``state_dict`` when nested, and a
    DataParallel ``module.`` prefix is stripped.

    Raises:
        WeightsError: missing, corrupt, unsafe or tensor-less files.
    """
    path = _existing(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for unsafe globals, RuntimeError for corrupt zips
        raise WeightsError(
            f"{path}: refused or unreadable as a weights-only checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). noiseshift never unpickles "
            "arbitrary objects; convert trusted files to safetensors."
        ) from exc
    state = _unwrap(obj, path)
    if any(key.startswith("module.") for key in state) and all(k.startswith("module.") for k in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    return state


def load_into(model: nn.Module, state: Mapping[str, torch.Tensor], *, strict: bool = True, source: str = "") -> None:
    """Load ``state`` into ``model``; in strict mode name every missing / unexpected / misshaped key."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshaped = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(own[k].shape) != tuple(state[k].shape)
    )
    problems = []
    if misshaped:
        problems.append(f"shape mismatch for {len(misshaped)} key(s): {_short_list(misshaped)}")
    if strict and missing:
        problems.append(f"missing {len(missing)} key(s): {_short_list(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s): {_short_list(unexpected)}")
    if problems:
        where = f"{source}: " if source else ""
        raise WeightsError(f"{where}weights do not match {type(model).__name__}; " + "; ".join(problems))
    model.load_state_dict(dict(state), strict=strict)


def load(
    path: str | Path,
    *,
    head: str | Path | None = None,
    map_location: str | torch.device = "cpu",
    model_type: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> Denoiser:
    """Rebuild a denoiser from a weights file (and optionally apply a domain head).

    A safetensors file written by noiseshift rebuilds itself from its metadata. Any other
    checkpoint (an official ``.pth`` such as Restormer's ``{'params': ...}``, or a foreign
    safetensors file) needs the registry ``model_type`` (and constructor ``config`` when it
    differs from the defaults); it is read safely (``weights_only=True``) and loaded strictly.

    Args:
        path: the weights file.
        head: a domain head written by an adapter, applied on top.
        map_location: device for the returned model.
        model_type: registry name to build, for checkpoints without noiseshift metadata.
        config: constructor options for ``model_type``.

    Returns:
        The model in eval mode.
    """
    from noiseshift.registry import DENOISERS

    path = _existing(path)
    meta = read_metadata(path) if path.suffix == ".safetensors" else {}
    if meta.get("kind") == "head":
        raise WeightsError(
            f"{path} is a domain head (adapter {meta.get('adapter')!r}) for a {meta.get('type')!r} "
            "model; load the base weights and pass this file as head= (CLI: --head)"
        )
    if model_type is not None:
        build = {"type": model_type, **dict(config or {})}
    elif "type" in meta:
        build = {"type": meta["type"], **meta.get("config", {})}
    else:
        raise WeightsError(
            f"{path}: no noiseshift metadata (registry type and config), so the architecture is "
            "unknown; pass model_type= (and config=) (CLI: --model-type NAME -O key=value)"
        )
    model = DENOISERS.build(build)
    load_into(model, load_state_dict(path), strict=True, source=str(path))
    if head is not None:
        apply_head(model, head)
    return model.to(map_location).eval()


def apply_head(model: Denoiser, head: str | Path) -> dict[str, Any]:
    """Overwrite ``model``'s tensors with those of a domain head; returns the head's metadata."""
    meta = read_metadata(head)
    if meta.get("kind") != "head":
        raise WeightsError(f"{head}: not a domain head (kind={meta.get('kind')!r})")
    if meta.get("type") != model.name:
        raise WeightsError(
            f"{head}: head is for a {meta.get('type')!r} model, not {model.name!r}"
        )
    if meta.get("config") != _json_roundtrip(model.config()):
        raise WeightsError(
            f"{head}: head was made for a {meta.get('type')!r} with config {meta.get('config')}, "
            f"but the model has {model.config()}"
        )
    tensors = load_state_dict(head)
    own = model.state_dict()
    unknown = sorted(set(tensors) - set(own))
    if unknown:
        raise WeightsError(f"{head}: head has keys the model lacks: {_short_list(unknown)}")
    merged = dict(own)
    merged.update(tensors)
    load_into(model, merged, strict=True, source=str(head))
    return meta


# -- helpers ------------------------------------------------------------------------------


def _write(state: Mapping[str, torch.Tensor], path: str | Path, metadata: dict[str, str], overwrite: bool) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: weights are written as .safetensors")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    # safetensors refuses shared or non-contiguous storage; weights are small, so copy.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    atomic_write_bytes(path, safetensors_bytes(tensors, metadata=metadata), overwrite=overwrite)
    return path


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):
        if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        if isinstance(obj, Mapping):
            for key in LEGACY_WRAPPER_KEYS:
                if key in obj:
                    obj = obj[key]
                    break
            else:
                keys = sorted(str(k) for k in obj)[:10]
                raise WeightsError(
                    f"{path}: no state dict found; top-level keys are {keys}, expected tensors or one "
                    f"of {list(LEGACY_WRAPPER_KEYS)}"
                )
        else:
            break
    raise WeightsError(f"{path}: expected a state dict of tensors, found {type(obj).__name__}")


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: weights file is empty")
    return path


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError as exc:
        raise WeightsError(f"{what} is not JSON-serialisable: {exc}") from exc


def _json_roundtrip(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))


def _short_list(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
