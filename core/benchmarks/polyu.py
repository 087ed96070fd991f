"""PolyU real-world noisy images (Xu et al., 2018): the 100 crops, and LAN's tiled protocol.

Reference:
    J. Xu, H. Li, Z. Liang, D. Zhang and L. Zhang, "Real-world Noisy Image Denoising: A New
    Benchmark", arXiv:1804.02603, 2018 (csjunxu/PolyU-Real-World-Noisy-Images-Dataset).
    C. Kim, T. Kim and S. Ahn, "LAN: Learning to Adapt Noise for Image Denoising", CVPR 2024
    (chjinny/LAN: ``prepare/prepare_polyu.py``) for the tiled protocol.

Two protocols over one download:

* ``"cropped"`` (default; what most papers report): ``CroppedImages/`` holds 100 pairs of
  512×512 8-bit JPEGs, ``<name>_real.JPG`` (noisy) and ``<name>_mean.JPG`` (ground truth, the
  mean of ~100 shots). Files are paired by stripping the ``_real`` / ``_mean`` suffix only (one
  official name contains a double underscore, ``NikonD800_6-3_125_5000_plant__4``); the key is
  ``<name>``. Names are ``<camera>_<aperture>_<shutter>_<ISO>_<scene>_<index>``, from which
  ``cond["sensor"]`` (camera) and ``cond["iso"]`` are taken.
* ``"tiled"`` (LAN): ``OriginalImages/`` holds 40 full-size pairs ``<camera>_<scene>_Real.JPG`` /
  ``<camera>_<scene>_mean.JPG``. Each is cut into non-overlapping ``tile``×``tile`` tiles in
  raster order (remainders dropped), named ``<camera>_<scene>_<iiii>``, and the sample is the
  top-left ``crop``×``crop`` of each tile (943 samples with the defaults 512 / 256).

Scoring: RGB, data range 1, float (unrounded) outputs, Gaussian (Wang et al.) SSIM, mean over
samples — the ``×255``-float Restormer metrics LAN uses are the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ..errors import InvalidInputError
from ..image_io import read_image
from .folders import FilePairs, ImagePair, data_folder, pair_by_suffix, scoring_conventions

__all__ = ["PolyU", "image_size", "lan_tiles", "parse_polyu_name"]

CROPPED_PAIRS = 100
CROPPED_SIZE = 512
ORIGINAL_SCENES = 40
LAN_TILE, LAN_CROP, LAN_TILES = 512, 256, 943

_CROPPED_NOTES = ("PolyU CroppedImages: <name>_real (noisy) / <name>_mean (mean of ~100 shots) 8-bit JPEG pairs, "
                  "paired by stripping the suffix")

_NAME = re.compile(r"^(?P<camera>[A-Za-z0-9]+)_(?P<aperture>[0-9-]+)_(?P<shutter>[0-9]+)_(?P<iso>[0-9]+)_")


def parse_polyu_name(name: str) -> dict[str, Any]:
    """``{"sensor": camera, "iso": ISO}`` from a CroppedImages name; ``{}`` when it does not parse.

    ``"Canon5D2_5_160_3200_chair_11"`` -> ``{"sensor": "Canon5D2", "iso": 3200.0}``.
    """
    match = _NAME.match(name)
    if match is None:
        return {}
    return {"sensor": match["camera"], "iso": float(match["iso"])}


def lan_tiles(height: int, width: int, tile: int) -> list[tuple[int, int]]:
    """Top-left corners of the non-overlapping ``tile``×``tile`` tiles of an image, raster order.

    Tiles that would cross the bottom or right border are dropped (LAN's ``prepare_polyu.py``).

    Returns:
        ``[(top, left), ...]`` row by row, left to right.
    """
    return [(top, left) for top in range(0, height - tile + 1, tile) for left in range(0, width - tile + 1, tile)]


def image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image file as stored (EXIF orientation not applied, as ``read_image``).

    Reads only the header through Pillow when it is available (a full-size PolyU JPEG takes a
    fraction of a second to decode, and the tiled protocol needs all 40 sizes up front).
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        image = read_image(path)
        return int(image.shape[-2]), int(image.shape[-1])
    try:
        with Image.open(path) as handle:
            width, height = handle.size
    except Exception:  # noqa: BLE001 - let read_image produce the precise ImageReadError
        image = read_image(path)
        return int(image.shape[-2]), int(image.shape[-1])
    return int(height), int(width)


def check_lan_options(owner: str, protocol: str, protocols: tuple[str, ...], tile: Any, crop: Any) -> None:
    """Validate the options of a benchmark with LAN's tiled protocol (PolyU, Nam).

    Raises:
        InvalidInputError: an unknown protocol, a tile or crop that is not a positive integer, or a
            crop larger than the tile.
    """
    if protocol not in protocols:
        choices = " or ".join(repr(p) for p in protocols)
        raise InvalidInputError(f"benchmark {owner!r}: protocol must be {choices}, got {protocol!r}")
    for option, value in (("tile", tile), ("crop", crop)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidInputError(f"benchmark {owner!r}: {option} must be a positive integer, got {value!r}")
    if crop is not None and crop > tile:
        raise InvalidInputError(f"benchmark {owner!r}: crop={crop} is larger than tile={tile}")


class PolyU(FilePairs):
    """The PolyU real-noise benchmark (see the module docstring for the two protocols).

    Args:
        root: the PolyU folder (holding ``CroppedImages/`` and/or ``OriginalImages/``), or the
            protocol's folder itself.
        protocol: ``"cropped"`` (100 crops) or ``"tiled"`` (LAN's protocol over the originals).
        tile: tile side of the tiled protocol (LAN: 512).
        crop: side of the top-left crop of each tile that is scored (LAN: 256); ``None`` keeps
            the whole tile.
        strict: also check the official counts and sizes (100 pairs of 512×512 crops; 40 scenes,
            943 tiles with tile 512 / crop 256). Off by default so that subsets and small test
            fixtures load.
        quantize: ``"float"`` (default) or ``"uint8"`` scoring.
        ssim: ``"gaussian"`` (default) or ``"uniform"``.

    Raises:
        InvalidInputError: missing folder, no pairs, unpaired files, invalid options, or (with
            ``strict``) counts or sizes that differ from the official set.
    """

    name = "polyu"
    domain = "srgb"
    conventions = scoring_conventions("polyu", notes=_CROPPED_NOTES)  # the default protocol's

    def __init__(
        self,
        root: str | Path,
        protocol: Literal["cropped", "tiled"] = "cropped",
        *,
        tile: int = LAN_TILE,
        crop: int | None = LAN_CROP,
        strict: bool = False,
        quantize: Literal["float", "uint8"] = "float",
        ssim: Literal["gaussian", "uniform"] = "gaussian",
    ) -> None:
        check_lan_options(self.name, protocol, ("cropped", "tiled"), tile, crop)
        self.root = Path(root).expanduser()
        self.protocol, self.tile, self.crop, self.strict = protocol, tile, crop, bool(strict)
        if protocol == "cropped":
            self.folder = data_folder(self.name, self.root, "CroppedImages")
            pairs = [
                ImagePair(name, noisy, clean, parse_polyu_name(name))
                for name, noisy, clean in pair_by_suffix(self.name, self.folder, "real", "mean", hint="CroppedImages/")
            ]
            if strict:
                self._check_cropped(pairs)
            notes = _CROPPED_NOTES
            averaging = "image"
        else:
            self.folder = data_folder(self.name, self.root, "OriginalImages")
            pairs = self._tiles(pair_by_suffix(self.name, self.folder, "real", "mean", hint="OriginalImages/"))
            side = tile if crop is None else crop
            notes = (f"LAN protocol: PolyU OriginalImages cut into non-overlapping {tile}x{tile} tiles in raster "
                     f"order (remainders dropped), top-left {side}x{side} of each tile scored")
            averaging = "crop"
        self.conventions = scoring_conventions(self.name, quantize=quantize, ssim=ssim, averaging=averaging,
                                               notes=notes)
        self._scoring = {"quantize": quantize, "ssim": ssim}
        super().__init__(pairs)

    def _check_cropped(self, pairs: list[ImagePair]) -> None:
        if len(pairs) != CROPPED_PAIRS:
            raise InvalidInputError(
                f"benchmark {self.name!r} (strict): expected {CROPPED_PAIRS} CroppedImages pairs in {self.folder}, "
                f"found {len(pairs)}"
            )
        wrong = [
            f"{file.name} ({height}×{width})"
            for pair in pairs
            for file in (pair.noisy, pair.clean)
            for height, width in [image_size(file)]
            if (height, width) != (CROPPED_SIZE, CROPPED_SIZE)
        ]
        if wrong:
            raise InvalidInputError(
                f"benchmark {self.name!r} (strict): CroppedImages must be {CROPPED_SIZE}×{CROPPED_SIZE}; "
                f"not so: {', '.join(wrong[:8])}"
            )

    def _tiles(self, scenes: list[tuple[str, Path, Path]]) -> list[ImagePair]:
        side = self.tile if self.crop is None else self.crop
        if self.strict:
            if len(scenes) != ORIGINAL_SCENES:
                raise InvalidInputError(
                    f"benchmark {self.name!r} (strict): expected {ORIGINAL_SCENES} OriginalImages scenes in "
                    f"{self.folder}, found {len(scenes)}"
                )
            if (self.tile, self.crop) != (LAN_TILE, LAN_CROP):
                raise InvalidInputError(
                    f"benchmark {self.name!r} (strict): LAN's protocol uses tile={LAN_TILE}, crop={LAN_CROP}; "
                    f"got tile={self.tile}, crop={self.crop}"
                )
        pairs: list[ImagePair] = []
        for scene, noisy, clean in scenes:
            size, clean_size = image_size(noisy), image_size(clean)
            if size != clean_size:
                raise InvalidInputError(
                    f"benchmark {self.name!r}: {noisy.name} is {size[0]}×{size[1]} but {clean.name} is "
                    f"{clean_size[0]}×{clean_size[1]} (H×W)"
                )
            cond: Mapping[str, Any] = {"sensor": scene.split("_", 1)[0]}
            for index, (top, left) in enumerate(lan_tiles(size[0], size[1], self.tile)):
                pairs.append(ImagePair(f"{scene}_{index:04d}", noisy, clean, cond, (top, left, side, side)))
        if not pairs:
            raise InvalidInputError(
                f"benchmark {self.name!r}: no image in {self.folder} is at least {self.tile}×{self.tile}, so "
                "there are no tiles; lower tile"
            )
        if self.strict and len(pairs) != LAN_TILES:
            raise InvalidInputError(
                f"benchmark {self.name!r} (strict): expected {LAN_TILES} tiles, found {len(pairs)}"
            )
        return pairs

    def config(self) -> dict[str, Any]:
        return {"root": str(self.root), "protocol": self.protocol, "tile": self.tile, "crop": self.crop,
                "strict": self.strict, **self._scoring}


BENCHMARKS = [PolyU]
