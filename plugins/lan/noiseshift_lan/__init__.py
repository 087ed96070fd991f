"""noiseshift-lan: LAN (learning to adapt noise) and self-supervised test-time adaptation.

Registers:

* adapters ``lan`` (:class:`LAN`: a learnable input offset ``tanh(φ)`` in front of a frozen
  backbone) and LAN's baselines ``tt_full``, ``tt_first``, ``tt_last`` (the same loop
  fine-tuning the backbone's ``all`` / ``first`` / ``last`` parameters), all episodic;
* losses ``zsn2n`` (zero-shot Noise2Noise) and ``nbr2nbr`` (Neighbor2Neighbor), called as
  ``loss(denoise_fn, noisy, generator=..., step=..., total_steps=...)``, usable by any adapter.

See docs/adapters.md for the options, the loss signature and the measured costs.
"""

from __future__ import annotations

from collections.abc import Callable

from noiseshift.api import hookimpl

from .baselines import TTFirst, TTFull, TTLast
from .lan import LAN
from .losses import Neighbor2NeighborLoss, ZeroShotN2NLoss, build_self_supervised_loss
from .sampling import apply_neighbour_pairs, draw_neighbour_pairs, neighbour_subsample, zsn2n_downsample
from .selfsup import SelfSupervisedAdapter, backbone_function

__all__ = [
    "LAN",
    "Neighbor2NeighborLoss",
    "SelfSupervisedAdapter",
    "TTFirst",
    "TTFull",
    "TTLast",
    "ZeroShotN2NLoss",
    "apply_neighbour_pairs",
    "backbone_function",
    "build_self_supervised_loss",
    "draw_neighbour_pairs",
    "neighbour_subsample",
    "zsn2n_downsample",
]


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    for component in (LAN, TTFull, TTFirst, TTLast):
        register(component)


@hookimpl
def register_losses(register: Callable[..., None]) -> None:
    register(ZeroShotN2NLoss)
    register(Neighbor2NeighborLoss)
