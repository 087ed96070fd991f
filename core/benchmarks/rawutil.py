"""Camera raw helpers shared by the raw benchmarks: Bayer packing, levels, CFA re-alignment, reading.

Conventions (the core's, see ``docs/conventions.md``):

* A **mosaic** is a Bayer image ``...×H×W`` (``H`` and ``W`` even) whose 2×2 colour filter
  pattern is named by its row-major letters: ``"rggb"``, ``"grbg"``, ``"gbrg"`` or ``"bggr"``.
  The two greens are told apart by their row: ``Gr`` shares a row with red, ``Gb`` with blue.
* A **packed** raw image is ``...×4×(H/2)×(W/2)``. The core's channel order is ``"rggb"``:
  ``(R, Gr, Gb, B)``, whatever the sensor's pattern, because packing takes each channel from
  the sensor's own site of that colour (no pixel is moved or dropped). ``"rgbg"``, i.e.
  ``(R, Gr, B, Gb)``, is the order of the ELD / SID code (``pack_raw_bayer``: channels ordered
  by rawpy's colour codes 0 R, 1 G, 2 B, 3 G2, where code 1 is the green on the red row);
  ``reorder_channels`` converts between the two.
* Levels: ``(value - black) / (white - black)`` per channel, clipped to ``[0, 1]``.

Mosaic re-alignment (``realign_to_rggb``) flips a non-RGGB mosaic so that red sits at ``(0, 0)``
(left-right for GRBG, up-down for GBRG, both for BGGR), the way the DND raw scripts align
their inputs; the flips are their own inverse, so ``realign_from_rggb`` undoes them.

Reading (``read_raw``, ``read_exposure``) uses rawpy for pixels and levels and tifffile for the
EXIF exposure time and ISO (both are TIFF-based for ARW, NEF, CR2 and DNG); rawpy's own
``other`` metadata is the fallback for files tifffile cannot parse.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ImageReadError, InvalidInputError

__all__ = [
    "BAYER_PATTERNS",
    "CHANNEL_ORDERS",
    "RawFrame",
    "bayer_pattern",
    "center_crop",
    "channel_offsets",
    "is_raw_file",
    "normalize_levels",
    "pack_bayer",
    "pack_frame",
    "pattern_from_rawpy",
    "read_exposure",
    "read_raw",
    "realign_from_rggb",
    "realign_to_rggb",
    "reorder_channels",
    "unpack_bayer",
]

BAYER_PATTERNS: tuple[str, ...] = ("rggb", "grbg", "gbrg", "bggr")
"""The four 2×2 Bayer patterns, by their row-major letters."""

CHANNEL_ORDERS: tuple[str, ...] = ("rggb", "rgbg")
"""Packed channel orders: the core's ``(R, Gr, Gb, B)`` and ELD/SID's ``(R, Gr, B, Gb)``."""

ChannelOrder = Literal["rggb", "rgbg"]

# Channel names of each packed order; "gr" is the green on the red row.
_ORDER_CHANNELS: dict[str, tuple[str, ...]] = {
    "rggb": ("r", "gr", "gb", "b"),
    "rgbg": ("r", "gr", "b", "gb"),
}

# The flips (dims counted from the end) that bring each pattern's red to (0, 0).
_REALIGN_FLIPS: dict[str, tuple[int, ...]] = {
    "rggb": (),
    "grbg": (-1,),
    "gbrg": (-2,),
    "bggr": (-2, -1),
}

# EXIF tag codes, read by number so tag-name spellings of different libraries do not matter.
_TAG_EXPOSURE_TIME = 33434
_TAG_ISO = 34855  # ISOSpeedRatings, called PhotographicSensitivity since EXIF 2.3
_TAG_EXIF_IFD = 34665
_EXIF_EXPOSURE_NAMES = ("ExposureTime",)
_EXIF_ISO_NAMES = ("ISOSpeedRatings", "PhotographicSensitivity")

_RAW_EXTENSIONS = (".arw", ".cr2", ".nef", ".dng", ".raf", ".orf", ".rw2", ".pef", ".srw")


def bayer_pattern(pattern: str) -> str:
    """Validate a Bayer pattern name and return it in lower case.

    Args:
        pattern: ``"rggb"``, ``"grbg"``, ``"gbrg"`` or ``"bggr"`` (any case).

    Returns:
        The lower-case pattern.

    Raises:
        InvalidInputError: not one of the four Bayer patterns.
    """
    if not isinstance(pattern, str) or pattern.lower() not in BAYER_PATTERNS:
        raise InvalidInputError(
            f"Bayer pattern must be one of {', '.join(BAYER_PATTERNS)}, got {pattern!r}"
        )
    return pattern.lower()


def _channel_order(order: str) -> str:
    if not isinstance(order, str) or order.lower() not in CHANNEL_ORDERS:
        raise InvalidInputError(
            f"packed channel order must be one of {', '.join(CHANNEL_ORDERS)}, got {order!r}"
        )
    return order.lower()


def pattern_from_rawpy(raw_pattern: Any, color_desc: bytes | str, *, source: str = "raw file") -> str:
    """The Bayer pattern name of a rawpy image.

    rawpy's ``raw_pattern`` is a 2×2 array of indices into ``color_desc`` (usually ``b"RGBG"``:
    0 R, 1 G on the red row, 2 B, 3 G on the blue row). Only the letters are used, so files
    whose two greens share one index are read correctly too.

    Args:
        raw_pattern: rawpy's ``raw_pattern`` (2×2 integer array).
        color_desc: rawpy's ``color_desc``.
        source: the file name, for error messages.

    Returns:
        One of ``BAYER_PATTERNS``.

    Raises:
        InvalidInputError: the file is not a 2×2 RGB Bayer raw (X-Trans, Foveon, CMYG, ...).
    """
    codes = None if raw_pattern is None else np.asarray(raw_pattern)
    desc = color_desc.decode("ascii", "replace") if isinstance(color_desc, bytes) else str(color_desc)
    if codes is None or codes.shape != (2, 2):
        shape = None if codes is None else tuple(codes.shape)
        raise InvalidInputError(
            f"{source}: not a 2×2 Bayer raw (rawpy raw_pattern has shape {shape}); X-Trans and "
            "other colour filter arrays are not supported"
        )
    try:
        letters = "".join(desc[int(code)] for code in codes.reshape(-1)).lower()
    except IndexError:
        raise InvalidInputError(
            f"{source}: raw_pattern {codes.tolist()} indexes outside color_desc {desc!r}"
        ) from None
    if letters not in BAYER_PATTERNS:
        raise InvalidInputError(
            f"{source}: colour filter pattern {letters.upper()!r} (raw_pattern {codes.tolist()}, "
            f"color_desc {desc!r}) is not an RGB Bayer pattern"
        )
    return letters


def _site_offsets(pattern: str) -> dict[str, tuple[int, int]]:
    """``{"r"|"gr"|"gb"|"b": (row, col)}`` of each colour site within the 2×2 tile."""
    offsets: dict[str, tuple[int, int]] = {}
    red_row = pattern.index("r") // 2
    for index, letter in enumerate(pattern):
        row, col = divmod(index, 2)
        name = letter if letter != "g" else ("gr" if row == red_row else "gb")
        offsets[name] = (row, col)
    return offsets


def channel_offsets(pattern: str, order: ChannelOrder = "rggb") -> list[tuple[int, int]]:
    """The ``(row, col)`` site within the 2×2 tile that each packed channel is taken from.

    Args:
        pattern: the mosaic's Bayer pattern.
        order: packed channel order, ``"rggb"`` (core) or ``"rgbg"`` (ELD/SID).

    Returns:
        Four ``(row, col)`` pairs, in channel order; e.g. ``"grbg"``/``"rggb"`` gives
        ``[(0, 1), (0, 0), (1, 1), (1, 0)]``.
    """
    offsets = _site_offsets(bayer_pattern(pattern))
    return [offsets[name] for name in _ORDER_CHANNELS[_channel_order(order)]]


def _check_mosaic(mosaic: torch.Tensor, what: str) -> None:
    if not isinstance(mosaic, torch.Tensor):
        raise InvalidInputError(f"{what} must be a torch.Tensor, got {type(mosaic).__name__}")
    if mosaic.dim() < 2:
        raise InvalidInputError(f"{what} must be ...×H×W, got shape {tuple(mosaic.shape)}")
    height, width = mosaic.shape[-2:]
    if height < 2 or width < 2 or height % 2 or width % 2:
        raise InvalidInputError(
            f"{what} must have even height and width >= 2 (whole 2×2 Bayer tiles), got {height}×{width}"
        )


def pack_bayer(mosaic: torch.Tensor, pattern: str, order: ChannelOrder = "rggb") -> torch.Tensor:
    """Pack a Bayer mosaic into four half-resolution colour planes.

    Args:
        mosaic: ``...×H×W`` tensor, ``H`` and ``W`` even, any dtype.
        pattern: its Bayer pattern (``"rggb"``, ``"grbg"``, ``"gbrg"``, ``"bggr"``).
        order: output channel order: ``"rggb"`` = ``(R, Gr, Gb, B)`` (core convention) or
            ``"rgbg"`` = ``(R, Gr, B, Gb)`` (ELD/SID code).

    Returns:
        ``...×4×(H/2)×(W/2)``, same dtype and device; channel ``k`` holds the sites of colour
        ``order[k]`` of the sensor's own pattern.

    Raises:
        InvalidInputError: odd or too small sizes, unknown pattern or order.
    """
    _check_mosaic(mosaic, "pack_bayer: mosaic")
    offsets = channel_offsets(pattern, order)
    return torch.stack([mosaic[..., row::2, col::2] for row, col in offsets], dim=-3)


def unpack_bayer(packed: torch.Tensor, pattern: str, order: ChannelOrder = "rggb") -> torch.Tensor:
    """Inverse of ``pack_bayer``: put four colour planes back into a Bayer mosaic.

    Args:
        packed: ``...×4×h×w`` tensor.
        pattern: the Bayer pattern of the mosaic to build.
        order: channel order of ``packed`` (``"rggb"`` or ``"rgbg"``).

    Returns:
        ``...×(2h)×(2w)`` mosaic, same dtype and device.

    Raises:
        InvalidInputError: ``packed`` does not have 4 channels; unknown pattern or order.
    """
    if not isinstance(packed, torch.Tensor) or packed.dim() < 3 or packed.shape[-3] != 4:
        shape = tuple(packed.shape) if isinstance(packed, torch.Tensor) else type(packed).__name__
        raise InvalidInputError(f"unpack_bayer: packed must be ...×4×h×w, got {shape}")
    offsets = channel_offsets(pattern, order)
    height, width = packed.shape[-2:]
    mosaic = packed.new_empty((*packed.shape[:-3], 2 * height, 2 * width))
    for channel, (row, col) in enumerate(offsets):
        mosaic[..., row::2, col::2] = packed[..., channel, :, :]
    return mosaic


def reorder_channels(packed: torch.Tensor, source: ChannelOrder, target: ChannelOrder) -> torch.Tensor:
    """Convert packed raw between channel orders (``"rggb"`` ⇄ ``"rgbg"``).

    Args:
        packed: ``...×4×h×w``.
        source: the order of ``packed``.
        target: the order wanted.

    Returns:
        ``...×4×h×w`` in ``target`` order (the input itself when the orders agree).
    """
    if not isinstance(packed, torch.Tensor) or packed.dim() < 3 or packed.shape[-3] != 4:
        shape = tuple(packed.shape) if isinstance(packed, torch.Tensor) else type(packed).__name__
        raise InvalidInputError(f"reorder_channels: packed must be ...×4×h×w, got {shape}")
    src, dst = _ORDER_CHANNELS[_channel_order(source)], _ORDER_CHANNELS[_channel_order(target)]
    if src == dst:
        return packed
    index = torch.tensor([src.index(name) for name in dst], device=packed.device)
    return packed.index_select(-3, index)


def realign_to_rggb(mosaic: torch.Tensor, pattern: str) -> torch.Tensor:
    """Flip a Bayer mosaic so that its pattern becomes RGGB (red at ``(0, 0)``).

    GRBG is flipped left-right, GBRG up-down and BGGR both ways; sizes are kept, and
    ``realign_from_rggb`` with the same pattern undoes it exactly.

    Args:
        mosaic: ``...×H×W``, ``H`` and ``W`` even.
        pattern: its Bayer pattern.

    Returns:
        ``...×H×W`` RGGB mosaic (the input itself for RGGB).
    """
    _check_mosaic(mosaic, "realign_to_rggb: mosaic")
    dims = _REALIGN_FLIPS[bayer_pattern(pattern)]
    return mosaic.flip(dims) if dims else mosaic


def realign_from_rggb(mosaic: torch.Tensor, pattern: str) -> torch.Tensor:
    """Undo ``realign_to_rggb``: flip an RGGB mosaic back to the sensor's ``pattern``.

    Args:
        mosaic: ``...×H×W`` RGGB mosaic, ``H`` and ``W`` even.
        pattern: the sensor's Bayer pattern.

    Returns:
        ``...×H×W`` mosaic in ``pattern``.
    """
    # Each flip is its own inverse and flips along different dims commute.
    return realign_to_rggb(mosaic, pattern)


def normalize_levels(
    packed: torch.Tensor,
    black: Sequence[float] | torch.Tensor,
    white: float | Sequence[float] | torch.Tensor,
    *,
    clip: bool = True,
) -> torch.Tensor:
    """Map packed raw values to ``[0, 1]``: ``(x - black) / (white - black)`` per channel.

    Args:
        packed: ``...×4×h×w`` raw values (any real dtype; computed in ``float32``).
        black: four black levels, in the channel order of ``packed``.
        white: the white level (one number, or four per channel).
        clip: clip the result to ``[0, 1]``.

    Returns:
        ``float32`` tensor of ``packed``'s shape.

    Raises:
        InvalidInputError: wrong number of levels, non-finite levels, or ``white <= black``.
    """
    if not isinstance(packed, torch.Tensor) or packed.dim() < 3 or packed.shape[-3] != 4:
        shape = tuple(packed.shape) if isinstance(packed, torch.Tensor) else type(packed).__name__
        raise InvalidInputError(f"normalize_levels: packed must be ...×4×h×w, got {shape}")
    black_t = torch.as_tensor(black, dtype=torch.float32, device=packed.device).reshape(-1)
    white_t = torch.as_tensor(white, dtype=torch.float32, device=packed.device).reshape(-1)
    if black_t.numel() != 4 or white_t.numel() not in (1, 4):
        raise InvalidInputError(
            f"normalize_levels: need 4 black levels and 1 or 4 white levels, got "
            f"{black_t.tolist()} and {white_t.tolist()}"
        )
    white_t = white_t.expand(4)
    if not bool(torch.isfinite(black_t).all() and torch.isfinite(white_t).all()) or bool(
        (white_t <= black_t).any()
    ):
        raise InvalidInputError(
            f"normalize_levels: white level {white_t.tolist()} must exceed black level "
            f"{black_t.tolist()} in every channel"
        )
    black_t = black_t.view(4, 1, 1)
    scale = (white_t.view(4, 1, 1) - black_t)
    out = (packed.to(torch.float32) - black_t) / scale
    return out.clamp(0.0, 1.0) if clip else out


def center_crop(image: torch.Tensor, size: int, *, source: str = "image") -> torch.Tensor:
    """The centred ``size×size`` window of ``...×H×W``, starting at ``(H//2 - size//2, W//2 - size//2)``.

    This is the crop rule of ELD's SID evaluation (``crop_center`` on the packed image).

    Raises:
        InvalidInputError: ``size`` is not a positive integer or exceeds ``H`` or ``W``.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InvalidInputError(f"center crop size must be a positive integer, got {size!r}")
    height, width = image.shape[-2:]
    if size > height or size > width:
        raise InvalidInputError(
            f"{source}: centre crop {size}×{size} is larger than the packed image {height}×{width}; "
            "pass a smaller crop (or crop=None for the full image)"
        )
    top, left = height // 2 - size // 2, width // 2 - size // 2
    return image[..., top : top + size, left : left + size]


@dataclass
class RawFrame:
    """One Bayer raw file as read by ``read_raw``.

    Attributes:
        path: the file.
        mosaic: ``H×W`` ``uint16`` (or the file's integer type) visible sensor area, cropped to
            even sizes.
        pattern: Bayer pattern of ``mosaic`` (``"rggb"``, ...).
        black_per_site: ``2×2`` black levels of the four sites of the 2×2 tile (row-major),
            from rawpy's ``black_level_per_channel``.
        white_level: the file's white level (rawpy ``white_level``).
    """

    path: Path
    mosaic: np.ndarray
    pattern: str
    black_per_site: np.ndarray
    white_level: float


def _rawpy_errors() -> tuple[type[BaseException], ...]:
    import rawpy

    errors: list[type[BaseException]] = [OSError, ValueError]
    base = getattr(rawpy, "LibRawError", None)
    if isinstance(base, type):
        errors.append(base)
    return tuple(errors)


def read_raw(path: str | Path) -> RawFrame:
    """Read a Bayer camera raw file (ARW, CR2, NEF, DNG, ...) with rawpy.

    The visible area is cropped to even height and width (whole 2×2 tiles), keeping the
    top-left phase, so the pattern is unchanged.

    Args:
        path: the raw file.

    Returns:
        A ``RawFrame``.

    Raises:
        ImageReadError: the file is missing, empty or LibRaw cannot decode it.
        InvalidInputError: it is not a 2×2 RGB Bayer raw.
    """
    import rawpy

    file = Path(path)
    if not file.is_file():
        raise ImageReadError(f"{file}: raw file not found")
    if file.stat().st_size == 0:
        raise ImageReadError(f"{file}: raw file is empty")
    try:
        with rawpy.imread(str(file)) as raw:
            visible = np.array(raw.raw_image_visible, copy=True)
            pattern = pattern_from_rawpy(raw.raw_pattern, raw.color_desc, source=str(file))
            codes = np.asarray(raw.raw_pattern)
            per_channel = np.asarray(raw.black_level_per_channel, dtype=np.float64)
            white = float(raw.white_level)
    except InvalidInputError:
        raise
    except _rawpy_errors() as exc:
        raise ImageReadError(f"{file}: cannot read raw file ({type(exc).__name__}: {exc})") from exc
    if visible.ndim != 2 or min(visible.shape) < 2:
        raise InvalidInputError(f"{file}: raw image has shape {visible.shape}, expected an H×W mosaic")
    height, width = visible.shape[0] // 2 * 2, visible.shape[1] // 2 * 2
    black = per_channel[codes]
    return RawFrame(file, visible[:height, :width], pattern, black, white)


def pack_frame(
    frame: RawFrame,
    *,
    order: ChannelOrder = "rggb",
    black: float | None = None,
    white: float | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """Pack and normalise a raw frame: ``(x - black_c) / (white - black_c)`` per channel.

    Args:
        frame: from ``read_raw``.
        order: packed channel order (``"rggb"`` core, ``"rgbg"`` ELD/SID).
        black: one black level for every channel (SID's fixed 512), or ``None`` for the file's
            per-channel levels.
        white: the white level (ELD/SID hard-code 16383), or ``None`` for the file's.
        clip: clip to ``[0, 1]``.

    Returns:
        ``4×(H/2)×(W/2)`` ``float32``.
    """
    mosaic = torch.from_numpy(frame.mosaic.astype(np.float32))
    packed = pack_bayer(mosaic, frame.pattern, order)
    if black is None:
        site_black = torch.from_numpy(frame.black_per_site.astype(np.float32))
        channel_black = pack_bayer(site_black, frame.pattern, order).reshape(4)
    else:
        channel_black = torch.full((4,), float(black))
    level = frame.white_level if white is None else float(white)
    try:
        return normalize_levels(packed, channel_black, level, clip=clip)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{frame.path}: {exc}") from None


def _positive(number: float) -> float | None:
    return number if math.isfinite(number) and number > 0 else None


def _rational(value: Any) -> float | None:
    """An EXIF RATIONAL as tifffile returns it (``(num, den)``, flat pairs, or a number)."""
    if isinstance(value, (list, tuple)):
        if len(value) >= 2 and all(isinstance(v, (int, np.integer)) for v in value[:2]):
            return _positive(float(Fraction(int(value[0]), int(value[1])))) if value[1] else None
        return _rational(value[0]) if value else None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return _positive(float(value))
    return None


def _integer(value: Any) -> float | None:
    """An EXIF SHORT/LONG (a number, or a sequence whose first entry counts)."""
    if isinstance(value, (list, tuple)):
        return _integer(value[0]) if value else None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return _positive(float(value))
    return None


def _exposure_from_tiff(file: Path) -> tuple[float | None, float | None]:
    import tifffile

    # tifffile logs warnings for vendor quirks (maker notes, odd offsets) that do not matter here.
    logger = logging.getLogger("tifffile")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with tifffile.TiffFile(str(file)) as tif:
            tags = tif.pages[0].tags
            exposure = _rational(tags[_TAG_EXPOSURE_TIME].value) if _TAG_EXPOSURE_TIME in tags else None
            iso = _integer(tags[_TAG_ISO].value) if _TAG_ISO in tags else None
            if (exposure is None or iso is None) and _TAG_EXIF_IFD in tags:
                exif = tags[_TAG_EXIF_IFD].value
                if isinstance(exif, dict):
                    if exposure is None:
                        exposure = next((_rational(exif[k]) for k in _EXIF_EXPOSURE_NAMES if k in exif), None)
                    if iso is None:
                        iso = next((_integer(exif[k]) for k in _EXIF_ISO_NAMES if k in exif), None)
            return iso, exposure
    finally:
        logger.setLevel(previous)


def read_exposure(path: str | Path) -> tuple[float, float]:
    """The ISO speed and exposure time (seconds) of a raw file, from its EXIF.

    DNG files carry them in IFD0 (exifread's ``Image ...`` keys), vendor raws in the EXIF
    sub-IFD (``EXIF ...``); both are tried, as ELD's reader does, then rawpy's metadata.

    Args:
        path: the raw file.

    Returns:
        ``(iso, exposure_seconds)``, both positive.

    Raises:
        ImageReadError: the file is missing, or neither reader finds both values.
    """
    file = Path(path)
    if not file.is_file():
        raise ImageReadError(f"{file}: raw file not found")
    iso: float | None = None
    exposure: float | None = None
    with contextlib.suppress(Exception):
        iso, exposure = _exposure_from_tiff(file)
    if iso is None or exposure is None:
        import rawpy

        with contextlib.suppress(*_rawpy_errors()), rawpy.imread(str(file)) as raw:
            other = getattr(raw, "other", None)
            if other is not None:
                iso = iso or _positive(float(getattr(other, "iso_speed", 0.0)))
                exposure = exposure or _positive(float(getattr(other, "shutter_speed", 0.0)))
    if iso is None or exposure is None:
        missing = " and ".join(n for n, v in (("ExposureTime", exposure), ("ISOSpeedRatings", iso)) if v is None)
        raise ImageReadError(f"{file}: no EXIF {missing} found (needed for the exposure ratio)")
    return iso, exposure


def is_raw_file(path: Path) -> bool:
    """Whether ``path`` has a camera raw extension (case-insensitive; JPEG sidecars are not)."""
    return path.suffix.lower() in _RAW_EXTENSIONS
