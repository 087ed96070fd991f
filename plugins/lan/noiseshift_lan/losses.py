"""Self-supervised denoising losses (ZS-N2N and Neighbor2Neighbor) for any test-time adapter.

Both are registered in ``LOSSES`` (``zsn2n``, ``nbr2nbr``) and share one call signature, built
for a *denoiser function* rather than for an (output, target) pair, because they evaluate the
network on sub-sampled copies of the noisy image::

    value = loss(denoise_fn, noisy, generator=g, step=k, total_steps=n)

* ``denoise_fn(x) -> estimate``: the network as a function of its input, returning the
  **clean image** (not the noise) for any ``M×C×h×w`` batch, including half-size ones; it must
  keep the autograd graph (adapters pass their backbone wrapped to pad to its size multiple).
* ``noisy``: the ``N×C×H×W`` noisy batch the loss is evaluated on (for LAN the adapted input
  ``y + tanh(φ)``, which carries a graph to ``φ``).
* ``generator``: the ``torch.Generator`` random sub-samplers draw from (ZS-N2N draws nothing).
* ``step`` / ``total_steps``: the 1-based index of the current iteration and the number of
  iterations, for schedules such as Neighbor2Neighbor's ramped regulariser.

It returns a 0-dim tensor. Classes carry ``self_supervised = True`` so that adapters can tell
them from the pixel losses ``loss(output, target)`` that share the registry; calling one with a
tensor in place of ``denoise_fn`` raises ``InvalidInputError``.

The formulas are those of the LAN paper's sample code (Kim, Kim & Baik, CVPR 2024), in which
the network already returns a clean image (Restormer has a global residual): see each class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from noiseshift.api import LOSSES, InvalidInputError

from .sampling import apply_neighbour_pairs, neighbour_subsample, zsn2n_downsample

__all__ = ["DenoiseFn", "Neighbor2NeighborLoss", "ZeroShotN2NLoss", "build_self_supervised_loss"]

DenoiseFn = Callable[[torch.Tensor], torch.Tensor]
"""``denoise_fn(noisy) -> clean estimate`` for an ``M×C×h×w`` batch, differentiable."""


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).square().mean()


class _SelfSupervisedLoss(nn.Module):
    """Argument checks shared by the self-supervised losses."""

    name: ClassVar[str] = ""
    self_supervised: ClassVar[bool] = True

    def _check(self, denoise_fn: Any, noisy: Any, step: int, total_steps: int) -> None:
        if isinstance(denoise_fn, torch.Tensor) or not callable(denoise_fn):
            raise InvalidInputError(
                f"{self.name} is a self-supervised loss: call it as loss(denoise_fn, noisy, generator=..., "
                f"step=..., total_steps=...) with the denoiser as a function, not as loss(output, target) "
                f"(got a {type(denoise_fn).__name__} as first argument)"
            )
        if not isinstance(noisy, torch.Tensor) or noisy.dim() != 4 or not noisy.is_floating_point():
            shape = tuple(noisy.shape) if isinstance(noisy, torch.Tensor) else type(noisy).__name__
            raise InvalidInputError(f"{self.name}: noisy must be a float N×C×H×W tensor, got {shape}")
        for label, value in (("step", step), ("total_steps", total_steps)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInputError(f"{self.name}: {label} must be an int, got {value!r}")
        if total_steps < 1 or not 1 <= step <= total_steps:
            raise InvalidInputError(
                f"{self.name}: need 1 <= step <= total_steps, got step={step}, total_steps={total_steps}"
            )

    def _denoise(self, denoise_fn: DenoiseFn, x: torch.Tensor) -> torch.Tensor:
        out = denoise_fn(x)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InvalidInputError(
                f"{self.name}: the denoiser returned {shape} for an input of shape {tuple(x.shape)}; "
                "self-supervised losses compare outputs with noisy pixels, so they need a denoiser "
                "with as many output as input channels"
            )
        return out


class ZeroShotN2NLoss(_SelfSupervisedLoss):
    """Zero-shot Noise2Noise loss (Mansour & Heckel, CVPR 2023) as LAN uses it.

    With the fixed downsamplers ``D1``, ``D2`` of :func:`~noiseshift_lan.sampling.zsn2n_downsample`
    and a denoiser ``f`` that returns the clean image:

    * residual (cross) term: ``½·[MSE(D1(y), f(D2(y))) + MSE(D2(y), f(D1(y)))]``;
    * consistency term: ``½·[MSE(f(D1(y)), D1(f(y))) + MSE(f(D2(y)), D2(f(y)))]``;
    * loss = ``residual_weight · residual + consistency_weight · consistency`` (1 and 1).

    The original ZS-N2N network predicts the noise and uses ``y − net(y)``; a clean-image
    denoiser makes that subtraction unnecessary. Every term keeps its gradient. Draws nothing
    (``generator`` is accepted and ignored); ``step`` is not used.

    Args:
        residual_weight: weight of the residual term, ``>= 0``.
        consistency_weight: weight of the consistency term, ``>= 0``.
    """

    name: ClassVar[str] = "zsn2n"

    def __init__(self, residual_weight: float = 1.0, consistency_weight: float = 1.0) -> None:
        super().__init__()
        for label, value in (("residual_weight", residual_weight), ("consistency_weight", consistency_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise InvalidInputError(f"zsn2n loss: {label} must be a number >= 0, got {value!r}")
        self.residual_weight = float(residual_weight)
        self.consistency_weight = float(consistency_weight)

    def forward(
        self,
        denoise_fn: DenoiseFn,
        noisy: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        step: int = 1,
        total_steps: int = 1,
    ) -> torch.Tensor:
        """The loss of ``denoise_fn`` on ``noisy`` (see the module docstring for the arguments)."""
        self._check(denoise_fn, noisy, step, total_steps)
        down1, down2 = zsn2n_downsample(noisy)
        pred1, pred2 = self._denoise(denoise_fn, down1), self._denoise(denoise_fn, down2)
        residual = 0.5 * (_mse(down1, pred2) + _mse(down2, pred1))
        loss = self.residual_weight * residual
        if self.consistency_weight:
            full1, full2 = zsn2n_downsample(self._denoise(denoise_fn, noisy))
            consistency = 0.5 * (_mse(pred1, full1) + _mse(pred2, full2))
            loss = loss + self.consistency_weight * consistency
        return loss

    def extra_repr(self) -> str:
        return f"residual_weight={self.residual_weight}, consistency_weight={self.consistency_weight}"


class Neighbor2NeighborLoss(_SelfSupervisedLoss):
    """Neighbor2Neighbor loss (Huang et al., CVPR 2021) as LAN uses it.

    With the random neighbour sub-sampler ``(g1, g2)`` of
    :func:`~noiseshift_lan.sampling.neighbour_subsample` (one draw per call, from
    ``generator``) and a denoiser ``f`` that returns the clean image:

    * ``ŷ = clip(f(y))`` computed without gradient, sub-sampled with the same draw;
    * ``diff = clip(f(g1(y))) − g2(y)`` (``clip`` to ``[0, 1]``, on by default as in LAN's code);
    * ``reg = diff − (g1(ŷ) − g2(ŷ))``;
    * loss = ``mean(diff²) + Λ · mean(reg²)`` with ``Λ = gamma · (step − 1) / total_steps``,
      a regulariser weight that ramps from 0 at the first iteration towards ``gamma`` (LAN: 0.1
      over its 20 iterations; the original training ramps per epoch with ``gamma = 2``).

    Args:
        gamma: the regulariser weight reached at the end of the ramp, ``>= 0``.
        clip: clip the denoiser's outputs to ``[0, 1]`` (LAN's code does; note that clipping
            stops the gradient of pixels the network pushes outside the range).
    """

    name: ClassVar[str] = "nbr2nbr"

    def __init__(self, gamma: float = 0.1, clip: bool = True) -> None:
        super().__init__()
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma >= 0:
            raise InvalidInputError(f"nbr2nbr loss: gamma must be a number >= 0, got {gamma!r}")
        self.gamma = float(gamma)
        self.clip = bool(clip)

    def regulariser_weight(self, step: int, total_steps: int) -> float:
        """``Λ`` at 1-based iteration ``step`` of ``total_steps``."""
        return self.gamma * (step - 1) / total_steps

    def forward(
        self,
        denoise_fn: DenoiseFn,
        noisy: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        step: int = 1,
        total_steps: int = 1,
    ) -> torch.Tensor:
        """The loss of ``denoise_fn`` on ``noisy`` (see the module docstring for the arguments)."""
        self._check(denoise_fn, noisy, step, total_steps)
        if generator is None:
            raise InvalidInputError("nbr2nbr: the neighbour sub-sampler needs an explicit torch.Generator")
        first, second, pairs = neighbour_subsample(noisy, generator)
        output = self._denoise(denoise_fn, first)
        if self.clip:
            output = output.clamp(0, 1)
        diff = output - second
        loss = diff.square().mean()
        weight = self.regulariser_weight(step, total_steps)
        if weight:  # Λ = 0 at the first step: the full-size pass for ŷ would be wasted
            with torch.no_grad():
                estimate = self._denoise(denoise_fn, noisy.detach())
                if self.clip:
                    estimate = estimate.clamp(0, 1)
                est_first, est_second = apply_neighbour_pairs(estimate, pairs)
            reg = diff - (est_first - est_second)
            loss = loss + weight * reg.square().mean()
        return loss

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, clip={self.clip}"


_OWN: dict[str, type[_SelfSupervisedLoss]] = {cls.name: cls for cls in (ZeroShotN2NLoss, Neighbor2NeighborLoss)}


def build_self_supervised_loss(spec: str | Mapping[str, Any]) -> Callable[..., torch.Tensor]:
    """A self-supervised loss by registry name or config (``"zsn2n"``, ``{"type": "nbr2nbr", "gamma": 0.2}``).

    This plugin's own losses resolve without the registry (so they work when the plugin is
    imported directly); other names are looked up in ``LOSSES`` and must be marked
    ``self_supervised = True``.

    Raises:
        InvalidInputError: a malformed spec, or a loss that is not self-supervised (a pixel loss
            such as ``l1`` compares an output with a target and cannot adapt on a noisy image).
    """
    if isinstance(spec, str):
        config: dict[str, Any] = {"type": spec}
    elif isinstance(spec, Mapping) and isinstance(spec.get("type"), str):
        config = dict(spec)
    else:
        raise InvalidInputError(f"loss must be a registry name or a config with a 'type', got {spec!r}")
    name = config.pop("type")
    short = name.split(".", 1)[1] if name.startswith("lan.") else name
    component: Any = _OWN.get(short) or LOSSES.lookup(name)
    if not getattr(component, "self_supervised", False):
        raise InvalidInputError(
            f"loss {name!r} is a pixel loss (output vs target); test-time adaptation on a noisy image needs "
            f"a self-supervised loss: {sorted(_OWN)}"
        )
    if isinstance(component, type):
        return component(**config)
    if config:
        raise InvalidInputError(f"loss {name!r} is a function and takes no options, got {sorted(config)}")
    return component
