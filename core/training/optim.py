"""Optimiser and learning-rate schedule from config dicts.

``optimizer = dict(type='Adam', lr=1e-3, ...)``: any ``torch.optim`` optimiser by class name,
with its keyword arguments.

``lr_schedule = dict(type=..., warmup_iters=0, warmup_ratio=0.001, ...)``: the learning rate is
a pure function of the iteration number — ``lr(t) = base_lr · factor(t)`` — so resuming needs
only the iteration (no scheduler object state to restore, nothing to pickle). Types:

* ``constant``: factor 1.
* ``step``: multiply by ``gamma`` (default 0.1) at each iteration in ``milestones``.
* ``cosine``: half-cosine from 1 down to ``min_lr / base_lr`` at ``max_iters`` (SGDR without
  restarts, Loshchilov & Hutter 2017).

``warmup_iters > 0`` ramps the factor linearly from ``warmup_ratio`` to its scheduled value
over the first ``warmup_iters`` iterations.
"""

from __future__ import annotations

import bisect
import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from ..errors import InvalidInputError

__all__ = ["LRSchedule", "build_optimizer"]


def build_optimizer(params: Iterable[torch.nn.Parameter], config: Mapping[str, Any]) -> torch.optim.Optimizer:
    """A ``torch.optim`` optimiser named by ``config['type']``.

    Raises:
        InvalidInputError: an unknown optimiser or option, or no ``lr``.
    """
    options = dict(config)
    name = options.pop("type", None)
    cls = getattr(torch.optim, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        known = sorted(n for n, v in vars(torch.optim).items()
                       if isinstance(v, type) and issubclass(v, torch.optim.Optimizer) and v is not torch.optim.Optimizer)
        raise InvalidInputError(f"optimizer type {name!r} is not a torch.optim optimiser; known: {known}")
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "params"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InvalidInputError(f"optimizer {name}: unknown option(s) {unknown}; known: {sorted(accepted)}")
    if "lr" not in options:
        raise InvalidInputError(f"optimizer {name}: set lr")
    for key, value in list(options.items()):
        if isinstance(value, list):  # configs and --cfg-options give lists where torch wants tuples
            options[key] = tuple(value)
    return cls(params, **options)


class LRSchedule:
    """``factor(t)`` for the iteration ``t`` (0-based, the iteration about to run).

    Args:
        config: ``dict(type='constant'|'step'|'cosine', warmup_iters=0, warmup_ratio=0.001,
            milestones=[...], gamma=0.1, min_lr=0.0)``.
        base_lr: the optimiser's configured learning rate (``min_lr`` is relative to it).
        max_iters: the run's length (the cosine reaches its floor there).

    Raises:
        InvalidInputError: an unknown type or option, or invalid values.
    """

    _OPTIONS: dict[str, set[str]] = {
        "constant": set(),
        "step": {"milestones", "gamma"},
        "cosine": {"min_lr"},
    }

    def __init__(self, config: Mapping[str, Any], base_lr: float, max_iters: int) -> None:
        options = dict(config)
        self.kind = options.pop("type", None)
        if self.kind not in self._OPTIONS:
            raise InvalidInputError(f"lr_schedule type {self.kind!r} unknown; known: {sorted(self._OPTIONS)}")
        allowed = self._OPTIONS[self.kind] | {"warmup_iters", "warmup_ratio"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise InvalidInputError(f"lr_schedule {self.kind}: unknown option(s) {unknown}; known: {sorted(allowed)}")
        self.base_lr = float(base_lr)
        self.max_iters = int(max_iters)
        self.warmup_iters = int(options.get("warmup_iters", 0))
        self.warmup_ratio = float(options.get("warmup_ratio", 0.001))
        self.milestones = sorted(int(m) for m in options.get("milestones", []))
        self.gamma = float(options.get("gamma", 0.1))
        self.min_lr = float(options.get("min_lr", 0.0))
        if self.warmup_iters < 0 or not 0 < self.warmup_ratio <= 1:
            raise InvalidInputError("lr_schedule: warmup_iters must be >= 0 and warmup_ratio in (0, 1]")
        if self.kind == "cosine" and not 0 <= self.min_lr <= self.base_lr:
            raise InvalidInputError(f"lr_schedule cosine: min_lr must be in [0, lr={self.base_lr}], got {self.min_lr}")

    def factor(self, iteration: int) -> float:
        """The multiplier of the base learning rate at ``iteration``."""
        if self.kind == "step":
            value = self.gamma ** bisect.bisect_right(self.milestones, iteration)
        elif self.kind == "cosine":
            floor = self.min_lr / self.base_lr if self.base_lr > 0 else 0.0
            progress = min(iteration / max(self.max_iters, 1), 1.0)
            value = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            value = 1.0
        if iteration < self.warmup_iters:
            ramp = self.warmup_ratio + (1.0 - self.warmup_ratio) * iteration / self.warmup_iters
            value *= ramp
        return value

    def apply(self, optimizer: torch.optim.Optimizer, iteration: int) -> float:
        """Set every parameter group's ``lr`` for ``iteration``; returns the first group's."""
        factor = self.factor(iteration)
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("base_lr", group["lr"]) * factor
        return float(optimizer.param_groups[0]["lr"])
