"""noiseshift-cbdnet_noise: realistic synthetic noise for sRGB (CBDNet) and raw (unprocessing).

Registers two noise models:

* ``cbdnet`` (:class:`CBDNetNoise`, sRGB): inverse camera response, random Bayer mosaic,
  heteroscedastic Poisson-Gaussian noise in the irradiance domain, Malvar-He-Cutler demosaic,
  camera response, optional JPEG (Guo et al., CVPR 2019).
* ``unprocess`` (:class:`UnprocessNoise`, raw): shot/read noise with the log-linear level prior
  of Brooks et al. (CVPR 2019) on packed RGGB raw; ``unprocess``/``process`` convert sRGB to raw
  and back.

See docs/noise_models.md for the pipelines, options and paper/code differences.
"""

from __future__ import annotations

from collections.abc import Callable

from noiseshift.api import hookimpl

from .bayer import PATTERNS, demosaic, mosaic, pack_rggb, unpack_rggb
from .cbdnet import CBDNetNoise
from .crf import ResponseCurves, apply_crf, apply_inverse_crf, ggcm_curves, load_dorf
from .jpeg import jpeg_roundtrip
from .unprocess_noise import UnprocessNoise
from .unprocessing import process, random_metadata, unprocess

__all__ = [
    "CBDNetNoise",
    "PATTERNS",
    "ResponseCurves",
    "UnprocessNoise",
    "apply_crf",
    "apply_inverse_crf",
    "demosaic",
    "ggcm_curves",
    "jpeg_roundtrip",
    "load_dorf",
    "mosaic",
    "pack_rggb",
    "process",
    "random_metadata",
    "register_noise_models",
    "unpack_rggb",
    "unprocess",
]


@hookimpl
def register_noise_models(register: Callable[..., None]) -> None:
    """Register the two noise models of this plugin."""
    register(CBDNetNoise)
    register(UnprocessNoise)
