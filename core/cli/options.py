"""Shared CLI plumbing: ``-O key=value`` parsing, model resolution and progress bars."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..denoiser import Denoiser
from ..errors import InvalidInputError

DEFAULT_MODEL_FILE = Path(__file__).resolve().parent.parent / "assets" / "default.safetensors"
"""The shipped default model (a small U-Net, docs/training.md); classical BM3D if the file is missing."""

stderr = Console(stderr=True)


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse repeated ``-O key=value``; values are Python literals when they parse, else strings.

    ``-O iters=10 -O loss=zsn2n -O sigma=[0,50]`` -> ``{"iters": 10, "loss": "zsn2n", "sigma": [0, 50]}``.
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise click.BadParameter(f"expected key=value with a Python identifier as key, got {pair!r}", param_hint="-O")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        options[key] = value
    return options


def resolve_model(
    spec: str, options: dict[str, Any] | None = None, head: str | None = None, model_type: str | None = None
) -> Denoiser:
    """Build the model a ``--model`` value names.

    Args:
        spec: ``default`` (the shipped model), a weights file (``.safetensors`` written by
            noiseshift), or the registry name of a parameter-free denoiser (``bm3d``).
        options: constructor options (for registry names).
        head: a domain head to apply on top of weights.
        model_type: registry name of the architecture, for checkpoints without noiseshift
            metadata (official ``.pth`` releases); ``options`` are then its constructor options.
    """
    from ..registry import DENOISERS
    from ..weights import load

    options = dict(options or {})
    if spec == "default":
        if DEFAULT_MODEL_FILE.is_file():
            spec = str(DEFAULT_MODEL_FILE)
        else:
            spec = "bm3d"
    path = Path(spec)
    if path.suffix in {".safetensors", ".pth", ".pt", ".ckpt"} or path.exists():
        if model_type is not None:
            return load(path, head=head, model_type=model_type, config=options)
        if options:
            raise InvalidInputError(
                f"options {sorted(options)} cannot change a model loaded from {path} "
                "(they apply with --model-type, for checkpoints without noiseshift metadata)"
            )
        return load(path, head=head)
    if model_type is not None:
        raise InvalidInputError(f"--model-type needs --model to be a weights file, got {spec!r}")
    model_cls = DENOISERS.lookup(spec)
    if model_cls.trainable:
        raise InvalidInputError(
            f"{spec!r} is a trainable network; pass its weights file (--model PATH.safetensors) "
            "or use --model default"
        )
    if head is not None:
        raise InvalidInputError(f"--head needs a trained model, not {spec!r}")
    return DENOISERS.build({"type": spec, **options})


def pick_device(device: str | None) -> torch.device:
    """``--device`` value -> ``torch.device`` with a clear error when it is unavailable."""
    if device is None:
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
        torch.empty(0, device=resolved)
    except (RuntimeError, AssertionError) as exc:
        raise InvalidInputError(f"device {device!r} is not available here: {exc}") from exc
    return resolved


def progress_bar(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=stderr, transient=transient,
    )
