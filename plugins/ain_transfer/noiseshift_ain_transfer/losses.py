"""AINDNet's training objectives: the multi-scale asymmetric estimation loss and the synthetic-stage sum.

Both need what a pixel loss never sees — the backbone's noise-level estimate and the true noise
map of the synthetic noise — so they declare ``needs_noise_map = True`` and are called as::

    value = loss(output, clean, aux=model.aux_outputs, sigma=true_sigma)

``noiseshift``'s trainer does exactly that when a config names them (``train_cfg.loss``), asking
the training data for the noise model's σ map (``NoisySample.sigma``, expanded to ``N×C×H×W``).

The estimation loss (paper Eq. 5)::

    L_ms-asymm = Σ_{i ∈ {1, 4}} w_i · mean( |α − 1[σ̂_i − σ_i < 0]| · (σ̂_i − σ_i)² )

with ``w₁ = 0.2``, ``w₄ = 0.8``, ``α = 0.25``: an under-estimate costs ``1 − α = 0.75`` per
squared error, an over-estimate ``α = 0.25`` — three times less, because a denoiser fed too low
a noise level leaves noise in, which is worse than slight over-smoothing (CBDNet's argument).
``σ̂_1`` is the full-resolution (fine) estimate, ``σ̂_4`` the coarse one, and the coarse target
is the true map average-pooled to the coarse map's size: by 4 in the paper, by 8 with the
released code's 1/8 estimator (``aindnet``'s ``coarse_scale``); the factor is read off the
shapes. The mean runs over every element of a scale (the paper's Eq. 5 is element-wise and says
nothing about the reduction).

From a backbone's ``aux_outputs`` the loss reads ``sigma_fine`` and ``sigma_coarse`` (AINDNet
provides both). A backbone that only provides the fused ``sigma`` map is scored on it at full
resolution and on its ``coarse_scale``-pooled version at the coarse scale. Without ``sigma`` in
``aux`` the loss raises ``InvalidInputError``: it only makes sense for a backbone with a noise
estimator.

The synthetic-stage objective (paper Eq. 6): ``‖F(y) − x‖₁ + λ · L_ms-asymm`` with ``λ = 0.05``
(L1 as a mean over elements). The real-noise (transfer) stage uses L1 alone (Eq. 7), i.e. the
core ``l1`` loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from noiseshift.api import InvalidInputError

__all__ = ["AINDNetSyntheticLoss", "MultiScaleAsymmetricLoss", "asymmetric_squared_error"]


def asymmetric_squared_error(estimate: torch.Tensor, target: torch.Tensor, alpha: float = 0.25) -> torch.Tensor:
    """Element-wise ``|α − 1[estimate < target]| · (estimate − target)²``.

    Args:
        estimate: predicted noise levels, any shape.
        target: true noise levels, same shape.
        alpha: weight of over-estimates; under-estimates weigh ``1 − alpha``.

    Returns:
        A tensor of ``estimate``'s shape.
    """
    difference = estimate - target
    weight = torch.where(difference < 0, 1.0 - alpha, alpha)
    return weight * difference.square()


def _pool_factor(full: torch.Size, coarse: torch.Size, owner: str) -> int:
    """The integer factor that maps the ``full`` size onto the ``coarse`` one (same for H and W)."""
    factors = {f // c if c and f % c == 0 else 0 for f, c in zip(full, coarse)}
    if len(factors) != 1 or 0 in factors:
        raise InvalidInputError(
            f"{owner}: the coarse estimate ({tuple(coarse)}) is not an integer down-scaling of the "
            f"noise map ({tuple(full)})"
        )
    return factors.pop()


class MultiScaleAsymmetricLoss(nn.Module):
    """AINDNet's multi-scale asymmetric noise-estimation loss ``L_ms-asymm`` (see module docstring).

    Args:
        w1: weight of the full-resolution term (0.2).
        w4: weight of the coarse term (0.8).
        alpha: asymmetry; under-estimates are penalised ``(1 − α)/α`` times more (0.25 → 3×).
        coarse_scale: pooling factor of the coarse term for backbones that give only a fused
            ``sigma`` map (AINDNet gives its coarse map, whose size sets the factor).

    Raises:
        InvalidInputError: ``alpha`` outside ``(0, 1)``, negative weights or a bad ``coarse_scale``.
    """

    name: ClassVar[str] = "ms_asymm"
    needs_noise_map: ClassVar[bool] = True

    def __init__(self, w1: float = 0.2, w4: float = 0.8, alpha: float = 0.25, coarse_scale: int = 4) -> None:
        super().__init__()
        if not 0.0 < alpha < 1.0:
            raise InvalidInputError(f"{self.name}: alpha must be in (0, 1), got {alpha!r}")
        if w1 < 0 or w4 < 0:
            raise InvalidInputError(f"{self.name}: weights must be >= 0, got w1={w1!r}, w4={w4!r}")
        if isinstance(coarse_scale, bool) or not isinstance(coarse_scale, int) or coarse_scale < 1:
            raise InvalidInputError(f"{self.name}: coarse_scale must be a positive integer, got {coarse_scale!r}")
        self.w1, self.w4, self.alpha, self.coarse_scale = float(w1), float(w4), float(alpha), coarse_scale

    def forward(
        self,
        output: torch.Tensor | None = None,
        clean: torch.Tensor | None = None,
        *,
        aux: Mapping[str, torch.Tensor] | None = None,
        sigma: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The estimation loss of one batch.

        Args:
            output: the denoised batch (unused; accepted for the trainer's call signature).
            clean: the clean batch (unused).
            aux: the backbone's ``aux_outputs``: ``sigma`` (``N×C×H×W``), optionally
                ``sigma_fine`` (``N×C×H×W``) and ``sigma_coarse`` (``N×C×H/s×W/s``).
            sigma: the true noise std map, ``N×C×H×W`` or ``N×1×H×W``, image units.

        Returns:
            A 0-dim tensor.

        Raises:
            InvalidInputError: no estimate in ``aux``, no true ``sigma``, or shapes that do not
                match / pool evenly.
        """
        fine, coarse = self._estimates(aux)
        target = self._target(sigma, fine)
        fine_term = asymmetric_squared_error(fine, target, self.alpha).mean()
        if coarse is None:
            coarse = F.avg_pool2d(fine, self.coarse_scale)
        factor = _pool_factor(target.shape[-2:], coarse.shape[-2:], self.name)
        coarse_target = F.avg_pool2d(target, factor) if factor > 1 else target
        if coarse_target.shape != coarse.shape:
            raise InvalidInputError(
                f"{self.name}: coarse estimate {tuple(coarse.shape)} does not match the pooled target "
                f"{tuple(coarse_target.shape)}"
            )
        coarse_term = asymmetric_squared_error(coarse, coarse_target, self.alpha).mean()
        return self.w1 * fine_term + self.w4 * coarse_term

    def _estimates(self, aux: Mapping[str, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not aux or not isinstance(aux.get("sigma"), torch.Tensor):
            raise InvalidInputError(
                f"{self.name}: needs the backbone's noise-level estimate aux_outputs['sigma'] (a backbone "
                f"with a noise estimator, such as aindnet); got aux keys {sorted(aux or {})}"
            )
        fine = aux.get("sigma_fine", aux["sigma"])
        coarse = aux.get("sigma_coarse")
        if fine.dim() != 4 or (coarse is not None and coarse.dim() != 4):
            raise InvalidInputError(f"{self.name}: noise estimates must be N×C×H×W tensors")
        return fine, coarse

    def _target(self, sigma: Any, estimate: torch.Tensor) -> torch.Tensor:
        if not isinstance(sigma, torch.Tensor):
            raise InvalidInputError(
                f"{self.name}: needs the true noise std map (sigma=N×C×H×W from a noise model that "
                f"provides NoisySample.sigma, e.g. cbdnet or poisson_gaussian); got {type(sigma).__name__}"
            )
        sigma = sigma.to(dtype=estimate.dtype, device=estimate.device)
        if sigma.dim() == 4 and sigma.shape[1] == 1 and estimate.shape[1] != 1:
            sigma = sigma.expand(-1, estimate.shape[1], -1, -1)
        if sigma.shape != estimate.shape:
            raise InvalidInputError(
                f"{self.name}: true sigma map {tuple(sigma.shape)} does not match the estimate "
                f"{tuple(estimate.shape)}"
            )
        return sigma

    def extra_repr(self) -> str:
        return f"w1={self.w1}, w4={self.w4}, alpha={self.alpha}, coarse_scale={self.coarse_scale}"


class AINDNetSyntheticLoss(nn.Module):
    """AINDNet's synthetic-stage objective ``mean|F(y) − x| + weight · L_ms-asymm`` (paper Eq. 6).

    Args:
        weight: ``λ_ms-asymm`` (0.05).
        w1, w4, alpha, coarse_scale: the estimation loss's options (``MultiScaleAsymmetricLoss``).
    """

    name: ClassVar[str] = "aindnet_synthetic"
    needs_noise_map: ClassVar[bool] = True

    def __init__(
        self, weight: float = 0.05, w1: float = 0.2, w4: float = 0.8, alpha: float = 0.25, coarse_scale: int = 4
    ) -> None:
        super().__init__()
        if weight < 0:
            raise InvalidInputError(f"{self.name}: weight must be >= 0, got {weight!r}")
        self.weight = float(weight)
        self.estimation = MultiScaleAsymmetricLoss(w1=w1, w4=w4, alpha=alpha, coarse_scale=coarse_scale)

    def forward(
        self,
        output: torch.Tensor,
        clean: torch.Tensor,
        *,
        aux: Mapping[str, torch.Tensor] | None = None,
        sigma: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L1 reconstruction plus the weighted estimation loss (0-dim tensor); see ``MultiScaleAsymmetricLoss``."""
        if not isinstance(output, torch.Tensor) or not isinstance(clean, torch.Tensor) or output.shape != clean.shape:
            shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in (output, clean)]
            raise InvalidInputError(f"{self.name}: output and clean must be tensors of one shape, got {shapes}")
        return (output - clean).abs().mean() + self.weight * self.estimation(aux=aux, sigma=sigma)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"
