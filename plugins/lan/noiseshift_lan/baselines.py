"""LAN's baselines: self-supervised test-time fine-tuning of the network itself.

The same loop, loss and step count as :class:`~noiseshift_lan.lan.LAN`, but the backbone's
weights of one parameter role train instead of an input offset (the LAN paper's
"full-trainable", "first-layer" and "last-layer" rows):

* ``tt_full``: every weight (role ``all``);
* ``tt_first``: the input layer (role ``first``);
* ``tt_last``: the output layer (role ``last``).

Each is episodic: the weights are restored after every image. The backbone stays in eval mode
(normalisation statistics are not re-estimated from one image), as in LAN's code. Default
learning rate ``5e-6``, the paper's rate for full fine-tuning; LAN's sample code has only that
baseline, and the paper gives no separate rate for the partial ones, so they use it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from noiseshift.api import Conditions, Denoiser, InvalidInputError

from .selfsup import SelfSupervisedAdapter

__all__ = ["TTFirst", "TTFull", "TTLast"]


class _RoleTuning(SelfSupervisedAdapter):
    """Fine-tune the backbone parameters of ``role`` on the self-supervised loss, per image."""

    role: ClassVar[str] = "all"
    smoke_config: ClassVar[dict[str, Any]] = {"steps": 2}

    def __init__(
        self, *, steps: int = 20, lr: float = 5e-6, loss: str | Mapping[str, Any] = "zsn2n", seed: int = 0
    ) -> None:
        super().__init__(steps=steps, lr=lr, loss=loss, seed=seed)

    def configure(self, backbone: Denoiser, noisy: torch.Tensor, cond: Conditions | None) -> list[torch.Tensor]:
        params = backbone.parameters_for(self.role)
        if not params:
            raise InvalidInputError(
                f"adapter {self.name!r}: {backbone.name or type(backbone).__name__} has no parameters in role "
                f"{self.role!r}"
            )
        for param in params:
            param.requires_grad_(True)
        return list(params)


class TTFull(_RoleTuning):
    """Self-supervised test-time fine-tuning of every backbone weight (LAN's "full-trainable")."""

    name: ClassVar[str] = "tt_full"
    role: ClassVar[str] = "all"
    trainable: ClassVar[tuple[str, ...]] = ("all",)


class TTFirst(_RoleTuning):
    """Self-supervised test-time fine-tuning of the input layer (LAN's "first-layer")."""

    name: ClassVar[str] = "tt_first"
    role: ClassVar[str] = "first"
    trainable: ClassVar[tuple[str, ...]] = ("first",)


class TTLast(_RoleTuning):
    """Self-supervised test-time fine-tuning of the output layer (LAN's "last-layer")."""

    name: ClassVar[str] = "tt_last"
    role: ClassVar[str] = "last"
    trainable: ClassVar[tuple[str, ...]] = ("last",)
