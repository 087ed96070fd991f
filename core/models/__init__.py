"""Built-in backbones: the ``DnCNN`` and ``UNet`` networks and the classical, parameter-free
``BM3D`` and ``NLMeans`` denoisers.

Every class here is a ``noiseshift.Denoiser``; registering them under their ``name`` is done
elsewhere, so importing this package has no side effects beyond importing the classes.
"""

from __future__ import annotations

from .classical import BM3D, NLMeans
from .dncnn import DnCNN
from .unet import UNet

__all__ = ["BM3D", "DnCNN", "NLMeans", "UNet"]
