"""Nam et al.'s cross-channel (CC) real-noise crops, the second target domain of LAN.

Reference:
    S. Nam, Y. Hwang, Y. Matsushita and S. J. Kim, "A Holistic Approach to Cross-Channel Image
    Noise Modeling and its Application to Image Denoising", CVPR 2016. The 15 crops are the
    ones distributed with MCWNNM (csjunxu/MCWNNM-ICCV2017 ``Real_ccnoise_denoised_part/``),
    which the PolyU Readme points to.

Layout: one folder (``Real_ccnoise_denoised_part/``) of 512×512 8-bit RGB PNGs named
``<camera>_iso<ISO>_<k>_real.png`` (noisy), ``..._mean.png`` (ground truth, a mean of many
shots) and ``..._ours.png`` (the CC method's output, ignored). The 15 crops are 3 each of
``5dmark3_iso3200``, ``d600_iso3200``, ``d800_iso1600``, ``d800_iso3200`` and ``d800_iso6400``.
The key is ``<camera>_iso<ISO>_<k>``; ``cond`` gets ``sensor`` (camera) and ``iso``.

Protocols:

* ``"crops"`` (default): every crop whole.
* ``"tiled"``: LAN's PolyU pipeline applied to the crops (non-overlapping ``tile`` tiles, the
  top-left ``crop`` of each: one 256×256 sample per 512×512 crop with the defaults). LAN's own
  Nam preprocessing is not published; this is the documented assumption until it is.

Scoring: RGB, data range 1, float outputs, Gaussian SSIM, mean over crops.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from ..errors import InvalidInputError
from .folders import FilePairs, ImagePair, data_folder, pair_by_suffix, scoring_conventions
from .polyu import LAN_CROP, LAN_TILE, check_lan_options, image_size, lan_tiles

__all__ = ["Nam", "parse_nam_name"]

NAM_CROPS = 15
NAM_SIZE = 512
FOLDER = "Real_ccnoise_denoised_part"

_CROPS_NOTES = "Nam/CC: <camera>_iso<ISO>_<k>_real (noisy) / _mean (ground truth) 8-bit PNG crops, whole"

_NAME = re.compile(r"^(?P<camera>.+)_iso(?P<iso>[0-9]+)_(?P<index>[0-9]+)$", re.IGNORECASE)


def parse_nam_name(name: str) -> dict[str, Any]:
    """``{"sensor": camera, "iso": ISO}`` from a crop name; ``{}`` when it does not parse.

    ``"d800_iso1600_1"`` -> ``{"sensor": "d800", "iso": 1600.0}``.
    """
    match = _NAME.match(name)
    if match is None:
        return {}
    return {"sensor": match["camera"], "iso": float(match["iso"])}


class Nam(FilePairs):
    """The 15 Nam / CC crops (see the module docstring).

    Args:
        root: ``Real_ccnoise_denoised_part/`` or a folder that contains it.
        protocol: ``"crops"`` (whole crops, default) or ``"tiled"`` (LAN-style tile + top-left crop).
        tile: tile side for ``"tiled"``.
        crop: side of the scored top-left part of each tile for ``"tiled"``; ``None`` for the
            whole tile.
        strict: check the official set (15 pairs of 512×512 crops).
        quantize: ``"float"`` (default) or ``"uint8"`` scoring.
        ssim: ``"gaussian"`` (default) or ``"uniform"``.

    Raises:
        InvalidInputError: missing folder, no pairs, unpaired files, invalid options, or (with
            ``strict``) a set that differs from the official one.
    """

    name = "nam"
    domain = "srgb"
    conventions = scoring_conventions("nam", averaging="crop", notes=_CROPS_NOTES)  # the default protocol's

    def __init__(
        self,
        root: str | Path,
        protocol: Literal["crops", "tiled"] = "crops",
        *,
        tile: int = LAN_TILE,
        crop: int | None = LAN_CROP,
        strict: bool = False,
        quantize: Literal["float", "uint8"] = "float",
        ssim: Literal["gaussian", "uniform"] = "gaussian",
    ) -> None:
        check_lan_options(self.name, protocol, ("crops", "tiled"), tile, crop)
        self.root = Path(root).expanduser()
        self.protocol, self.tile, self.crop, self.strict = protocol, tile, crop, bool(strict)
        self.folder = data_folder(self.name, self.root, FOLDER)
        found = pair_by_suffix(self.name, self.folder, "real", "mean", hint=f"{FOLDER}/")
        if strict:
            self._check_official(found)
        if protocol == "crops":
            pairs = [ImagePair(name, noisy, clean, parse_nam_name(name)) for name, noisy, clean in found]
            notes = _CROPS_NOTES
        else:
            pairs = self._tiles(found)
            side = tile if crop is None else crop
            notes = (f"Nam/CC crops, LAN-style: non-overlapping {tile}x{tile} tiles in raster order, top-left "
                     f"{side}x{side} of each scored (LAN's own Nam preprocessing is unpublished)")
        self.conventions = scoring_conventions(self.name, quantize=quantize, ssim=ssim, averaging="crop", notes=notes)
        self._scoring = {"quantize": quantize, "ssim": ssim}
        super().__init__(pairs)

    def _check_official(self, found: list[tuple[str, Path, Path]]) -> None:
        if len(found) != NAM_CROPS:
            raise InvalidInputError(
                f"benchmark {self.name!r} (strict): expected {NAM_CROPS} crop pairs in {self.folder}, found {len(found)}"
            )
        wrong = [f"{name} ({h}×{w})" for name, noisy, _ in found for h, w in [image_size(noisy)] if (h, w) != (NAM_SIZE,) * 2]
        if wrong:
            raise InvalidInputError(
                f"benchmark {self.name!r} (strict): crops must be {NAM_SIZE}×{NAM_SIZE}; not so: {', '.join(wrong)}"
            )

    def _tiles(self, found: list[tuple[str, Path, Path]]) -> list[ImagePair]:
        side = self.tile if self.crop is None else self.crop
        pairs: list[ImagePair] = []
        for name, noisy, clean in found:
            height, width = image_size(noisy)
            cond = parse_nam_name(name)
            for index, (top, left) in enumerate(lan_tiles(height, width, self.tile)):
                pairs.append(ImagePair(f"{name}_{index:04d}", noisy, clean, cond, (top, left, side, side)))
        if not pairs:
            raise InvalidInputError(
                f"benchmark {self.name!r}: no crop in {self.folder} is at least {self.tile}×{self.tile}; lower tile"
            )
        return pairs

    def config(self) -> dict[str, Any]:
        return {"root": str(self.root), "protocol": self.protocol, "tile": self.tile, "crop": self.crop,
                "strict": self.strict, **self._scoring}


BENCHMARKS = [Nam]
