"""noiseshift-ain_transfer: AINDNet and AIN transfer learning (Kim et al., CVPR 2020).

Registers:

* the denoiser ``aindnet`` (:class:`AINDNet`: noise-level estimator + U-Net of adaptive
  instance-normalisation residual blocks; presets ``paper``, ``small``, ``tiny``), which
  reports its noise estimate in ``aux_outputs["sigma"]``;
* the losses ``ms_asymm`` (multi-scale asymmetric estimation loss) and ``aindnet_synthetic``
  (L1 + 0.05·``ms_asymm``, the synthetic training stage), called by the trainer with the true
  noise map (``needs_noise_map = True``);
* the adapter ``ain_transfer`` (:class:`AINTransfer`): fine-tunes exactly a backbone's
  ``domain`` parameter role on target pairs with L1 and saves it as a domain head — on
  ``aindnet`` the paper's transfer stage, on any other backbone its normalisation /
  modulation and output layers.

See docs/ain_transfer.md.
"""

from __future__ import annotations

from collections.abc import Callable

from noiseshift.api import hookimpl

from .aindnet import (
    PRESETS,
    AdaptiveInstanceNorm,
    AINDNet,
    AINResBlock,
    NoiseLevelEstimator,
    count_parameters,
)
from .losses import AINDNetSyntheticLoss, MultiScaleAsymmetricLoss, asymmetric_squared_error
from .transfer import AINTransfer

__all__ = [
    "AINDNet",
    "AINDNetSyntheticLoss",
    "AINResBlock",
    "AINTransfer",
    "AdaptiveInstanceNorm",
    "MultiScaleAsymmetricLoss",
    "NoiseLevelEstimator",
    "PRESETS",
    "asymmetric_squared_error",
    "count_parameters",
]


@hookimpl
def register_denoisers(register: Callable[[type], None]) -> None:
    register(AINDNet)


@hookimpl
def register_losses(register: Callable[[type], None]) -> None:
    register(MultiScaleAsymmetricLoss)
    register(AINDNetSyntheticLoss)


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    register(AINTransfer)
