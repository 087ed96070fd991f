"""noiseshift-modulation_unet: ADL's channel-wise modulation U-Net (sensor type + ISO).

Registers the denoiser ``modulation_unet`` (:class:`ModulationUNet`). See
``docs/backbones.md`` for the options and the choices the paper leaves open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from noiseshift.api import hookimpl

from .metadata import MetadataEncoder
from .network import PAPER_SENSORS, ChannelModulation, ModulatedConv, ModulationUNet

__all__ = ["ChannelModulation", "MetadataEncoder", "ModulatedConv", "ModulationUNet", "PAPER_SENSORS"]


@hookimpl
def register_denoisers(register: Callable[..., Any]) -> None:
    register(ModulationUNet)
