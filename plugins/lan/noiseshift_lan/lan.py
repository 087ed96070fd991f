"""LAN — Learning to Adapt Noise (Kim, Kim & Baik, CVPR 2024).

Instead of changing the network, LAN changes the *input*: a frozen pretrained denoiser ``f``
sees ``y + tanh(φ)``, where the offset ``φ`` has the shape of the noisy image ``y``, starts at
zero (so step 0 is exactly the pretrained model) and is fitted per image by a few Adam steps on
a self-supervised loss (ZS-N2N or Neighbor2Neighbor) evaluated through ``f``. ``tanh`` keeps
the offset in ``(−1, 1)``. The output is ``f(y + tanh(φ*))``.

Gradients flow through the backbone to ``φ`` only: the backbone's parameters keep
``requires_grad = False``, so no weight gradients are computed or stored, which is what makes
LAN cheaper than fine-tuning the network (the paper's Table 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from noiseshift.api import Conditions, Denoiser

from .selfsup import SelfSupervisedAdapter

__all__ = ["LAN"]


class LAN(SelfSupervisedAdapter):
    """Adapt the noise, not the network: a learnable input offset ``tanh(φ)`` per image.

    Paper defaults: Adam, lr ``5e-4``, 20 iterations, ``φ`` initialised to zeros, ZS-N2N loss
    (``loss="nbr2nbr"`` for Neighbor2Neighbor).

    Args:
        steps: adaptation iterations per image.
        lr: Adam learning rate of ``φ``.
        loss: ``"zsn2n"`` or ``"nbr2nbr"`` (or a loss config); see :mod:`noiseshift_lan.losses`.
        seed: seed of the loss's sub-sampling generator (reset per image).
    """

    name: ClassVar[str] = "lan"
    trainable: ClassVar[tuple[str, ...]] = ()  # no backbone weight changes: only the input offset
    smoke_config: ClassVar[dict[str, Any]] = {"steps": 2}

    def __init__(
        self, *, steps: int = 20, lr: float = 5e-4, loss: str | Mapping[str, Any] = "zsn2n", seed: int = 0
    ) -> None:
        super().__init__(steps=steps, lr=lr, loss=loss, seed=seed)

    def configure(self, backbone: Denoiser, noisy: torch.Tensor, cond: Conditions | None) -> list[torch.Tensor]:
        """A zero offset ``φ`` of the input's shape, the only tensor that trains."""
        phi = torch.zeros_like(noisy, dtype=torch.float32, requires_grad=True)
        return [phi]

    def adapted_input(self, noisy: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """``y + tanh(φ)``."""
        (phi,) = params
        return noisy + torch.tanh(phi)
