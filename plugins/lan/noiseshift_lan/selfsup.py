"""The shared loop of LAN and its baselines: adapt on one image with a self-supervised loss.

:class:`SelfSupervisedAdapter` is a ``TestTimeAdapter`` (episodic; the core runs the loop,
reports progress, records traces and restores the backbone) whose objective is a
self-supervised loss from ``LOSSES`` (``zsn2n`` or ``nbr2nbr``, see :mod:`noiseshift_lan.losses`)
evaluated on ``adapted_input(noisy)`` through the backbone. Subclasses only choose what trains
(``configure``) and, for LAN, how the input is adapted (``adapted_input``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from noiseshift.api import AdaptedDenoiser, Conditions, Denoiser, InvalidInputError, TestTimeAdapter
from noiseshift.inference import denoise_padded

from .losses import build_self_supervised_loss

__all__ = ["SelfSupervisedAdapter", "backbone_function", "check_differentiable"]


def check_differentiable(adapter: str, backbone: Denoiser) -> None:
    """Raise ``InvalidInputError`` unless gradients can flow through ``backbone``.

    Parameter-free (``trainable = False``) denoisers such as BM3D run outside autograd.
    """
    if not getattr(backbone, "trainable", True):
        raise InvalidInputError(
            f"adapter {adapter!r} back-propagates through the backbone, but "
            f"{backbone.name or type(backbone).__name__!r} is a parameter-free, non-differentiable "
            "denoiser (trainable=False); use a network backbone"
        )


def backbone_function(
    backbone: Denoiser, cond: Conditions | None, height: int, width: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The backbone as ``f(x) -> estimate`` for inputs of any size, keeping the autograd graph.

    Inputs are padded to ``backbone.size_multiple`` and the output cropped back
    (``noiseshift.inference.denoise_padded``), so half-size sub-images work with any backbone.
    Per-pixel maps in ``cond`` (``...×height×width``) are area-averaged to the input's size
    when it differs (a σ map of a sub-sampled image is then its local mean level).

    Args:
        backbone: the network.
        cond: the image's conditions (non-spatial entries pass through unchanged).
        height: the full image's height, to recognise per-pixel maps.
        width: the full image's width.
    """
    spatial = [
        key for key, value in (cond or {}).items()
        if isinstance(value, torch.Tensor) and value.dim() >= 3 and tuple(value.shape[-2:]) == (height, width)
    ]

    def conditions_for(x: torch.Tensor) -> Conditions | None:
        if not spatial or tuple(x.shape[-2:]) == (height, width):
            return cond
        assert cond is not None
        resized: dict[str, Any] = dict(cond)
        for key in spatial:
            value = cond[key]
            flat = value.reshape(-1, 1, height, width).to(torch.float32)
            pooled = F.adaptive_avg_pool2d(flat, tuple(x.shape[-2:]))
            resized[key] = pooled.reshape(*value.shape[:-2], *x.shape[-2:]).to(value.dtype)
        return resized  # type: ignore[return-value]

    def run(x: torch.Tensor) -> torch.Tensor:
        return denoise_padded(backbone, x, conditions_for(x))

    return run


class SelfSupervisedAdapter(TestTimeAdapter):
    """Base of LAN and of the self-supervised test-time fine-tuning baselines.

    Each step evaluates ``loss(f, adapted_input(y), generator, step, total_steps)`` with ``f``
    the backbone (padded to its size multiple) and takes one Adam step on the tensors
    ``configure`` returned. The output is ``f(adapted_input(y))`` after the last step, not
    clipped (benchmark protocols clip and quantise; LAN's code clips to ``[0, 1]``).

    Args:
        steps: adaptation iterations per image (LAN: 20).
        lr: Adam learning rate.
        loss: a self-supervised loss by registry name or config: ``"zsn2n"`` (default) or
            ``"nbr2nbr"`` (or e.g. ``{"type": "nbr2nbr", "gamma": 0.1}``).
        seed: seed of the generator the loss's random sub-sampler draws from (reset per image,
            so the same image gives the same output).
    """

    def __init__(
        self, *, steps: int = 20, lr: float = 5e-4, loss: str | Mapping[str, Any] = "zsn2n", seed: int = 0
    ) -> None:
        super().__init__(steps=steps, lr=lr, seed=seed)
        self.objective = build_self_supervised_loss(loss)
        self.loss_spec: str | dict[str, Any] = loss if isinstance(loss, str) else dict(loss)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "loss": self.loss_spec}

    def wrap(self, backbone: Denoiser) -> AdaptedDenoiser:
        """Bind to ``backbone``; it must be differentiable and map C channels to C channels."""
        if isinstance(backbone, Denoiser):
            check_differentiable(self.name, backbone)
            if backbone.in_channels != backbone.out_channels:
                raise InvalidInputError(
                    f"adapter {self.name!r}: self-supervised losses compare the output with noisy pixels, so the "
                    f"backbone needs as many output as input channels (got {backbone.in_channels} -> "
                    f"{backbone.out_channels})"
                )
        return super().wrap(backbone)

    def adapted_input(self, noisy: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """What the backbone sees: the noisy image itself (LAN adds its offset)."""
        return noisy

    def loss(
        self,
        backbone: Denoiser,
        noisy: torch.Tensor,
        cond: Conditions | None,
        params: list[torch.Tensor],
        generator: torch.Generator,
    ) -> torch.Tensor:
        run = backbone_function(backbone, cond, noisy.shape[-2], noisy.shape[-1])
        return self.objective(run, self.adapted_input(noisy, params), generator=generator,
                              step=max(self.current_step, 1), total_steps=max(self.steps, 1))

    def predict(
        self,
        backbone: Denoiser,
        noisy: torch.Tensor,
        cond: Conditions | None,
        params: list[torch.Tensor],
    ) -> torch.Tensor:
        run = backbone_function(backbone, cond, noisy.shape[-2], noisy.shape[-1])
        return run(self.adapted_input(noisy, params))
