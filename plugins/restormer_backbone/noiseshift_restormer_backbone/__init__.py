"""noiseshift-restormer-backbone: the Restormer transformer as a noiseshift denoiser.

Registers the denoiser ``restormer`` (qualified ``restormer_backbone.restormer``). The
architecture, its size presets and the official-checkpoint compatibility are in
:mod:`noiseshift_restormer_backbone.restormer`.
"""

from __future__ import annotations

from collections.abc import Callable

from noiseshift.api import hookimpl

from .restormer import LAYER_NORM_TYPES, PRESETS, Restormer, count_parameters

__all__ = ["LAYER_NORM_TYPES", "PRESETS", "Restormer", "count_parameters", "register_denoisers"]


@hookimpl
def register_denoisers(register: Callable[[type], None]) -> None:
    register(Restormer)
