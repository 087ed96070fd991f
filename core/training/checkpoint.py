"""Training checkpoints: safetensors for tensors, JSON for everything else — never pickle.

A checkpoint at iteration ``t`` is three files in ``<work_dir>/checkpoints/``:

* ``iter_<t>.safetensors`` — the model, written by ``noiseshift.weights.save`` (registry name
  and constructor config in the metadata), so ``noiseshift.load`` rebuilds it directly;
* ``iter_<t>.state.safetensors`` — the optimiser's tensors (``optimizer.<param>.<key>``, e.g.
  Adam's ``exp_avg``), the EMA weights (``ema.<name>``) and torch's RNG states (``rng.*``);
* ``iter_<t>.json`` — the training state: iteration, optimiser hyper-parameters and scalar
  state, EMA update count, best validation score, elapsed time, the resolved config's digest,
  and the SHA-256 of the two tensor files.

Each file is written atomically and the JSON last, so a checkpoint counts only once its JSON
exists and the hashes match: a run killed while writing leaves the previous checkpoint as the
latest complete one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from ..denoiser import Denoiser
from ..errors import WeightsError
from ..image_io import atomic_write_bytes, atomic_write_text
from ..weights import load_into, load_state_dict, save
from .ema import ModelEMA

__all__ = [
    "CheckpointPaths",
    "find_latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "prune_checkpoints",
    "save_checkpoint",
]

STATE_FORMAT = "noiseshift-train-1"
_NAME = re.compile(r"^iter_(\d+)\.json$")


@dataclass(frozen=True)
class CheckpointPaths:
    """The three files of the checkpoint at ``iteration`` in ``directory``."""

    directory: Path
    iteration: int

    @property
    def stem(self) -> str:
        return f"iter_{self.iteration:08d}"

    @property
    def model(self) -> Path:
        return self.directory / f"{self.stem}.safetensors"

    @property
    def state(self) -> Path:
        return self.directory / f"{self.stem}.state.safetensors"

    @property
    def json(self) -> Path:
        return self.directory / f"{self.stem}.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _split_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state dict -> (tensors for safetensors, JSON-able rest)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = json.loads(json.dumps(state["param_groups"]))  # tuples -> lists, fails loudly on objects
    return tensors, {"param_groups": groups, "scalars": scalars}


def _join_optimizer_state(tensors: Mapping[str, torch.Tensor], info: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entries in info["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": [dict(g) for g in info["param_groups"]]}


def save_checkpoint(
    directory: str | Path,
    iteration: int,
    *,
    model: Denoiser,
    optimizer: torch.optim.Optimizer,
    ema: ModelEMA | None,
    training: Mapping[str, Any],
) -> CheckpointPaths:
    """Write the checkpoint of ``iteration`` (model, tensors, JSON state — JSON last).

    Args:
        directory: the checkpoints folder (created).
        iteration: iterations completed.
        model: the network (unwrapped from DDP).
        optimizer: its optimiser.
        ema: the EMA, if the run uses one.
        training: JSON-able training state to store (best score, elapsed time, config digest,
            ...); ``iteration`` and the optimiser/EMA/hash entries are added here.

    Returns:
        The paths written.
    """
    paths = CheckpointPaths(Path(directory), iteration)
    paths.directory.mkdir(parents=True, exist_ok=True)
    save(model, paths.model, overwrite=True, extra={"iteration": iteration})
    tensors, optimizer_info = _split_optimizer_state(optimizer)
    if ema is not None:
        tensors.update({f"ema.{name}": value for name, value in ema.state_tensors().items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = rng
    payload = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write_bytes(paths.state, safetensors_bytes(payload, metadata={"format": STATE_FORMAT}), overwrite=True)
    document = {
        **dict(training),
        "format": STATE_FORMAT,
        "iteration": iteration,
        "optimizer": optimizer_info,
        "ema_updates": ema.updates if ema is not None else None,
        "files": {paths.model.name: _sha256(paths.model), paths.state.name: _sha256(paths.state)},
    }
    atomic_write_text(paths.json, json.dumps(document, indent=2, sort_keys=True) + "\n", overwrite=True)
    return paths


def list_checkpoints(directory: str | Path) -> list[CheckpointPaths]:
    """Checkpoints with a JSON state in ``directory``, oldest first (completeness unchecked)."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = []
    for file in folder.iterdir():
        match = _NAME.match(file.name)
        if match:
            found.append(CheckpointPaths(folder, int(match.group(1))))
    return sorted(found, key=lambda p: p.iteration)


def _verify(paths: CheckpointPaths) -> dict[str, Any]:
    try:
        document = json.loads(paths.json.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{paths.json}: unreadable training state ({exc})") from exc
    if document.get("format") != STATE_FORMAT:
        raise WeightsError(f"{paths.json}: not a noiseshift training state (format {document.get('format')!r})")
    for name, digest in document.get("files", {}).items():
        file = paths.directory / name
        if not file.is_file() or _sha256(file) != digest:
            raise WeightsError(f"{paths.json}: {name} is missing or does not match its recorded SHA-256")
    return document


def find_latest_checkpoint(directory: str | Path) -> tuple[CheckpointPaths, dict[str, Any]] | None:
    """The newest complete, verified checkpoint and its JSON state, or ``None``."""
    for paths in reversed(list_checkpoints(directory)):
        try:
            return paths, _verify(paths)
        except WeightsError:
            continue
    return None


def load_checkpoint(
    paths: CheckpointPaths,
    document: Mapping[str, Any],
    *,
    model: Denoiser,
    optimizer: torch.optim.Optimizer,
    ema: ModelEMA | None,
    restore_rng: bool = True,
) -> None:
    """Restore model, optimiser, EMA and RNG state from a checkpoint (in place).

    Raises:
        WeightsError: the files do not match the model/optimiser, or the run had no EMA and
            this one has (or vice versa).
    """
    load_into(model, load_state_dict(paths.model), strict=True, source=str(paths.model))
    try:
        tensors = load_file(str(paths.state))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{paths.state}: unreadable ({exc})") from exc
    device = next(model.parameters()).device
    restored = _join_optimizer_state(tensors, document["optimizer"])
    # JSON turned tuples (Adam's betas) into lists; give them back the optimiser's own types.
    for saved, current in zip(restored["param_groups"], optimizer.param_groups):
        for key, value in current.items():
            if isinstance(value, tuple) and isinstance(saved.get(key), list):
                saved[key] = tuple(saved[key])
    try:
        optimizer.load_state_dict(restored)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise WeightsError(f"{paths.state}: optimizer state does not match this run's optimizer: {exc}") from exc
    ema_tensors = {k[len("ema."):]: v.to(device) for k, v in tensors.items() if k.startswith("ema.")}
    if (ema is None) != (not ema_tensors):
        raise WeightsError(
            f"{paths.json}: the checkpoint was {'written with' if ema_tensors else 'written without'} EMA, "
            "but this config " + ("does not use it" if ema is None else "does")
        )
    if ema is not None:
        ema.load_state_tensors(ema_tensors, document["ema_updates"])
    if restore_rng:
        torch.set_rng_state(tensors["rng.torch"])
        cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(len(tensors)) if f"rng.cuda.{i}" in tensors]
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def prune_checkpoints(directory: str | Path, keep: int) -> list[int]:
    """Delete all but the newest ``keep`` checkpoints (``keep=0`` keeps all); returns those removed.

    The JSON goes first, so a half-deleted checkpoint is never taken for a complete one.
    """
    if keep <= 0:
        return []
    removed = []
    for paths in list_checkpoints(directory)[:-keep]:
        for file in (paths.json, paths.state, paths.model):
            file.unlink(missing_ok=True)
        removed.append(paths.iteration)
    return removed
