"""Exponential moving average (EMA) of a model's weights.

``shadow ← decay · shadow + (1 − decay) · weights`` after every optimiser step (floating-point
parameters); buffers (batch-norm running statistics, counters) are copied, since averaging
statistics of differently-trained networks has no meaning. The averaged model is usually a
little better than the last iterate and is what validation scores and ``best.safetensors``
holds when EMA is on. ``decay`` ramps up as ``min(decay, (1 + k) / (10 + k))`` over the first
updates (``k`` updates done) so early, random weights are forgotten quickly — the warm-up used
by TensorFlow's ``ExponentialMovingAverage(num_updates=...)``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import InvalidInputError

__all__ = ["ModelEMA"]


class ModelEMA:
    """An averaged copy of ``model``.

    Args:
        model: the network being trained (not wrapped in DDP).
        decay: the long-run decay in ``[0, 1)`` (``0.999`` averages over ~1000 steps).
        warmup: ramp the decay up over the first updates (see the module docstring).

    Attributes:
        module: the averaged network (eval mode, no gradients).
        updates: how many updates were applied.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise InvalidInputError(f"ema: decay must be in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self.warmup = warmup
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next update uses."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights into the average."""
        decay = self.current_decay()
        shadow = self.module.state_dict()
        for name, value in model.state_dict().items():
            target = shadow[name]
            if target.is_floating_point() and name in self._param_names():
                target.lerp_(value.detach(), 1.0 - decay)
            else:
                target.copy_(value)
        self.updates += 1

    def _param_names(self) -> set[str]:
        names = getattr(self, "_names", None)
        if names is None:
            names = {name for name, _ in self.module.named_parameters()}
            self._names = names
        return names

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The averaged tensors, for a checkpoint."""
        return {name: value.detach() for name, value in self.module.state_dict().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], updates: int) -> None:
        """Restore from ``state_tensors()`` and the update count."""
        from ..weights import load_into

        load_into(self.module, tensors, strict=True, source="checkpoint EMA state")
        self.updates = int(updates)
