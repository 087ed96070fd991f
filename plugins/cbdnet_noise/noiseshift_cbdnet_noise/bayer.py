"""Bayer colour filter arrays: mosaicing, packing and demosaicing, batched in torch.

Four 2×2 patterns are supported, named by their top-left block read row by row:
``rggb``, ``grbg``, ``gbrg``, ``bggr``. A pattern is stored as an integer index into
``PATTERNS``; the index is ``2·row + col`` of the red site inside the 2×2 block, so the blue
site is the diagonally opposite one and the other two are green. Every image of a batch may
have its own pattern.

Demosaicing is the gradient-corrected linear interpolation of

    H. S. Malvar, L.-W. He and R. Cutler, "High-quality linear interpolation for demosaicing of
    Bayer-patterned color images", ICASSP 2004

(what MATLAB's ``demosaic`` implements and what CBDNet's pipelines use), or plain bilinear
interpolation. Both are four 5×5 linear filters applied to the mosaic with one ``conv2d``;
each output pixel picks the filter its CFA site calls for. The image is padded by mirror
reflection without repeating the edge pixel (``reflect``), which keeps the CFA phase at the
border, so a mosaic of a per-channel constant image demosaics exactly to that constant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from noiseshift.api import InvalidInputError

__all__ = [
    "DEMOSAIC_METHODS",
    "PATTERNS",
    "cfa_masks",
    "demosaic",
    "mosaic",
    "pack_rggb",
    "pattern_indices",
    "unpack_rggb",
]

PATTERNS: tuple[str, ...] = ("rggb", "grbg", "gbrg", "bggr")
"""Bayer patterns; a pattern's index is ``2·row + col`` of its red site."""

DEMOSAIC_METHODS: tuple[str, ...] = ("malvar", "bilinear")

# Filter order in the stacks below:
#   0  green at a red or blue site
#   1  red/blue at a green site whose row holds that colour ("horizontal" neighbours)
#   2  red/blue at a green site whose column holds that colour ("vertical" neighbours)
#   3  red at a blue site / blue at a red site (diagonal neighbours)
# Malvar-He-Cutler coefficients (Malvar et al. 2004, Fig. 2), in units of 1/8.
_MALVAR_EIGHTHS: tuple[tuple[tuple[float, ...], ...], ...] = (
    (
        (0, 0, -1, 0, 0),
        (0, 0, 2, 0, 0),
        (-1, 2, 4, 2, -1),
        (0, 0, 2, 0, 0),
        (0, 0, -1, 0, 0),
    ),
    (
        (0, 0, 0.5, 0, 0),
        (0, -1, 0, -1, 0),
        (-1, 4, 5, 4, -1),
        (0, -1, 0, -1, 0),
        (0, 0, 0.5, 0, 0),
    ),
    (
        (0, 0, -1, 0, 0),
        (0, -1, 4, -1, 0),
        (0.5, 0, 5, 0, 0.5),
        (0, -1, 4, -1, 0),
        (0, 0, -1, 0, 0),
    ),
    (
        (0, 0, -1.5, 0, 0),
        (0, 2, 0, 2, 0),
        (-1.5, 0, 6, 0, -1.5),
        (0, 2, 0, 2, 0),
        (0, 0, -1.5, 0, 0),
    ),
)

# Bilinear interpolation on the same 5×5 support, in units of 1/4.
_BILINEAR_QUARTERS: tuple[tuple[tuple[float, ...], ...], ...] = (
    ((0, 0, 0, 0, 0), (0, 0, 1, 0, 0), (0, 1, 0, 1, 0), (0, 0, 1, 0, 0), (0, 0, 0, 0, 0)),
    ((0, 0, 0, 0, 0), (0, 0, 0, 0, 0), (0, 2, 0, 2, 0), (0, 0, 0, 0, 0), (0, 0, 0, 0, 0)),
    ((0, 0, 0, 0, 0), (0, 0, 2, 0, 0), (0, 0, 0, 0, 0), (0, 0, 2, 0, 0), (0, 0, 0, 0, 0)),
    ((0, 0, 0, 0, 0), (0, 1, 0, 1, 0), (0, 0, 0, 0, 0), (0, 1, 0, 1, 0), (0, 0, 0, 0, 0)),
)


def _kernels(method: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The four demosaicing filters as a ``4×1×5×5`` conv2d weight."""
    if method == "malvar":
        table, scale = _MALVAR_EIGHTHS, 8.0
    elif method == "bilinear":
        table, scale = _BILINEAR_QUARTERS, 4.0
    else:
        raise InvalidInputError(f"demosaic: method must be one of {list(DEMOSAIC_METHODS)}, got {method!r}")
    return (torch.tensor(table, dtype=dtype, device=device) / scale).unsqueeze(1)


def pattern_indices(patterns: str | list[str] | tuple[str, ...] | torch.Tensor, batch: int,
                    device: torch.device) -> torch.Tensor:
    """Normalise a pattern argument to an ``N``-vector of indices into ``PATTERNS``.

    Args:
        patterns: one pattern name for the whole batch, ``N`` names, or an integer tensor of
            ``N`` indices.
        batch: ``N``.
        device: where the result lives.

    Returns:
        ``int64`` tensor of shape ``(N,)``.

    Raises:
        InvalidInputError: for an unknown name, an index out of range or a length other than N.
    """
    if isinstance(patterns, torch.Tensor):
        index = patterns.to(device=device, dtype=torch.int64).reshape(-1)
        if index.numel() == 1:
            index = index.expand(batch)
        if index.numel() != batch or (index < 0).any() or (index >= len(PATTERNS)).any():
            raise InvalidInputError(
                f"bayer: expected {batch} pattern indices in 0..{len(PATTERNS) - 1}, got {patterns.tolist()}"
            )
        return index.contiguous()
    names = [patterns] * batch if isinstance(patterns, str) else list(patterns)
    unknown = [name for name in names if name not in PATTERNS]
    if unknown or len(names) != batch:
        raise InvalidInputError(
            f"bayer: expected {batch} pattern names from {list(PATTERNS)}, got {patterns!r}"
        )
    return torch.tensor([PATTERNS.index(name) for name in names], dtype=torch.int64, device=device)


def cfa_masks(pattern: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
    """Boolean site masks of each image's colour filter array.

    Args:
        pattern: ``(N,)`` int64 indices into ``PATTERNS``.
        height: ``H``.
        width: ``W``.

    Returns:
        ``N×1×H×W`` boolean masks: ``red``, ``blue``, ``green`` (the three sites) and
        ``red_row`` (rows that hold red sites; green sites there have red neighbours to their
        left and right and blue ones above and below).
    """
    device = pattern.device
    red_row_parity = (pattern // 2).view(-1, 1, 1, 1)
    red_col_parity = (pattern % 2).view(-1, 1, 1, 1)
    rows = (torch.arange(height, device=device) % 2).view(1, 1, height, 1)
    cols = (torch.arange(width, device=device) % 2).view(1, 1, 1, width)
    red_row = rows == red_row_parity
    red_col = cols == red_col_parity
    red = red_row & red_col
    blue = ~red_row & ~red_col
    return {"red": red, "blue": blue, "green": ~(red | blue), "red_row": red_row.expand_as(red)}


def mosaic(image: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """Sample an RGB image through a Bayer colour filter array.

    Args:
        image: ``N×3×H×W`` RGB.
        pattern: ``(N,)`` int64 indices into ``PATTERNS``.

    Returns:
        ``N×1×H×W`` mosaic: each pixel keeps the one channel its CFA site records.
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise InvalidInputError(f"mosaic: expected an N×3×H×W image, got {tuple(image.shape)}")
    masks = cfa_masks(pattern, image.shape[2], image.shape[3])
    red, green, blue = image[:, 0:1], image[:, 1:2], image[:, 2:3]
    return torch.where(masks["red"], red, torch.where(masks["blue"], blue, green))


def demosaic(raw: torch.Tensor, pattern: torch.Tensor, method: str = "malvar") -> torch.Tensor:
    """Interpolate the two missing colours at every site of a Bayer mosaic.

    Args:
        raw: ``N×1×H×W`` mosaic, ``H, W >= 3``.
        pattern: ``(N,)`` int64 indices into ``PATTERNS``.
        method: ``"malvar"`` (Malvar-He-Cutler 2004, default) or ``"bilinear"``.

    Returns:
        ``N×3×H×W`` RGB, not clipped (the Malvar filters can overshoot at edges).

    Raises:
        InvalidInputError: for a malformed mosaic, an image smaller than 3×3 or an unknown
            method.
    """
    if raw.dim() != 4 or raw.shape[1] != 1:
        raise InvalidInputError(f"demosaic: expected an N×1×H×W mosaic, got {tuple(raw.shape)}")
    height, width = raw.shape[2], raw.shape[3]
    if height < 3 or width < 3:
        raise InvalidInputError(f"demosaic: the mosaic must be at least 3×3, got {height}×{width}")
    weight = _kernels(method, raw.dtype, raw.device)
    estimates = F.conv2d(F.pad(raw, (2, 2, 2, 2), mode="reflect"), weight)
    green_at_rb, along_row, along_col, diagonal = estimates.split(1, dim=1)
    masks = cfa_masks(pattern, height, width)
    red_site, blue_site, green_site, red_row = masks["red"], masks["blue"], masks["green"], masks["red_row"]
    # At a green site, the colour that shares its row comes from the horizontal filter.
    red = torch.where(red_site, raw, torch.where(blue_site, diagonal, torch.where(red_row, along_row, along_col)))
    blue = torch.where(blue_site, raw, torch.where(red_site, diagonal, torch.where(red_row, along_col, along_row)))
    green = torch.where(green_site, raw, green_at_rb)
    return torch.cat([red, green, blue], dim=1)


def pack_rggb(raw: torch.Tensor) -> torch.Tensor:
    """Pack an RGGB mosaic into four half-resolution planes.

    Args:
        raw: ``N×1×H×W`` RGGB mosaic, ``H`` and ``W`` even.

    Returns:
        ``N×4×H/2×W/2`` planes in the order R (0,0), G (0,1), G (1,0), B (1,1).
    """
    if raw.dim() != 4 or raw.shape[1] != 1 or raw.shape[2] % 2 or raw.shape[3] % 2:
        raise InvalidInputError(f"pack_rggb: expected an N×1×H×W mosaic with even H, W, got {tuple(raw.shape)}")
    return F.pixel_unshuffle(raw, 2)


def unpack_rggb(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of ``pack_rggb``: ``N×4×h×w`` planes to an ``N×1×2h×2w`` RGGB mosaic."""
    if packed.dim() != 4 or packed.shape[1] != 4:
        raise InvalidInputError(f"unpack_rggb: expected N×4×h×w planes, got {tuple(packed.shape)}")
    return F.pixel_shuffle(packed, 2)
