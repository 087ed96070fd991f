"""Unprocessing: sRGB images to realistic packed RGGB raw data, and the forward ISP back.

Reference:
    T. Brooks, B. Mildenhall, T. Xue, J. Chen, D. Sharlet and J. T. Barron, "Unprocessing
    Images for Learned Raw Denoising", CVPR 2019 (code: google-research ``unprocessing/``).

``unprocess`` inverts a simple camera pipeline with random metadata, per image of a batch::

    sRGB ─ inverse smoothstep tone map ─ inverse gamma (x^2.2) ─ RGB→camera colour matrix
         ─ inverse white balance and brightening (highlight-protected) ─ clip ─ RGGB mosaic
         = N×4×H/2×W/2 packed raw in [0, 1]

* colour matrix: a random convex combination of four XYZ→camera matrices (the paper's), times
  the sRGB→XYZ (D65) matrix, rows normalised to sum 1; its inverse is kept as ``cam2rgb``;
* gains: brightening ``rgb_gain = 1 / N(0.8, 0.1)``, white balance ``red_gain ~ U[1.9, 2.4]``,
  ``blue_gain ~ U[1.5, 1.9]``; they are divided out, blended towards 1 for pixels whose
  channel mean exceeds 0.9 so that highlights stay white instead of turning coloured.

``process`` is the forward pipeline for looking at raw results as sRGB: white balance (and,
by default, brightening) gains, clip, demosaic, camera→RGB matrix, clip, gamma ``1/2.2`` and
(by default) the smoothstep tone curve, so that ``process(unprocess(x)) ≈ x`` away from clipped
highlights. ``brighten=False, tone_map=False, demosaic_method="bilinear"`` follows the released
``process()`` of the unprocessing code, which applies neither the brightening gain nor the
tone curve (its bilinear demosaic, built from image resizing, differs slightly at borders).
"""

from __future__ import annotations

from typing import Any

import torch

from noiseshift.api import InvalidInputError

from .bayer import DEMOSAIC_METHODS, demosaic, mosaic, pack_rggb, unpack_rggb

__all__ = [
    "METADATA_KEYS",
    "RGB2XYZ",
    "XYZ2CAMS",
    "apply_ccm",
    "gamma_compression",
    "gamma_expansion",
    "inverse_smoothstep",
    "process",
    "random_metadata",
    "smoothstep",
    "unprocess",
]

XYZ2CAMS: tuple[tuple[tuple[float, ...], ...], ...] = (
    ((1.0234, -0.2969, -0.2266), (-0.5625, 1.6328, -0.0469), (-0.0703, 0.2188, 0.6406)),
    ((0.4913, -0.0541, -0.0202), (-0.6130, 1.3513, 0.2906), (-0.1564, 0.2151, 0.7183)),
    ((0.8380, -0.2630, -0.0639), (-0.2887, 1.0725, 0.2496), (-0.0627, 0.1427, 0.5438)),
    ((0.6596, -0.2079, -0.0562), (-0.4782, 1.3016, 0.1933), (-0.0970, 0.1581, 0.5181)),
)
"""The four XYZ→camera colour matrices of the unprocessing paper's cameras."""

RGB2XYZ: tuple[tuple[float, ...], ...] = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
"""Linear sRGB → CIE XYZ, D65 white."""

METADATA_KEYS: tuple[str, ...] = ("rgb2cam", "cam2rgb", "rgb_gain", "red_gain", "blue_gain")

_HIGHLIGHT_START = 0.9


def random_metadata(
    batch: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """Draw the camera metadata of ``batch`` images.

    Args:
        batch: ``N``.
        generator: source of randomness on ``device``.
        device: where the tensors live.

    Returns:
        ``rgb2cam`` and ``cam2rgb`` (``N×3×3`` float32), ``rgb_gain``, ``red_gain``,
        ``blue_gain`` (``(N,)`` float32).
    """
    device = torch.device(device)
    cams = torch.tensor(XYZ2CAMS, dtype=torch.float32, device=device)
    # The reference draws weights in U(1e-8, 1e8) and normalises; U(0, 1) normalised is the
    # same distribution of convex weights.
    weights = torch.rand(batch, len(XYZ2CAMS), generator=generator, device=device) + 1e-16
    weights = weights / weights.sum(dim=1, keepdim=True)
    xyz2cam = torch.einsum("nk,kij->nij", weights, cams)
    rgb2cam = xyz2cam @ torch.tensor(RGB2XYZ, dtype=torch.float32, device=device)
    rgb2cam = rgb2cam / rgb2cam.sum(dim=2, keepdim=True)
    rgb_gain = 1.0 / (0.8 + 0.1 * torch.randn(batch, generator=generator, device=device))
    red_gain = 1.9 + 0.5 * torch.rand(batch, generator=generator, device=device)
    blue_gain = 1.5 + 0.4 * torch.rand(batch, generator=generator, device=device)
    return {
        "rgb2cam": rgb2cam,
        "cam2rgb": torch.linalg.inv(rgb2cam),
        "rgb_gain": rgb_gain,
        "red_gain": red_gain,
        "blue_gain": blue_gain,
    }


def smoothstep(image: torch.Tensor) -> torch.Tensor:
    """Global tone curve ``3x² − 2x³`` on ``[0, 1]`` (input clipped)."""
    image = image.clamp(0.0, 1.0)
    return image * image * (3.0 - 2.0 * image)


def inverse_smoothstep(image: torch.Tensor) -> torch.Tensor:
    """Inverse of ``smoothstep``: ``0.5 − sin(asin(1 − 2x) / 3)`` (input clipped to ``[0, 1]``)."""
    image = image.clamp(0.0, 1.0)
    return 0.5 - torch.sin(torch.asin(1.0 - 2.0 * image) / 3.0)


def gamma_expansion(image: torch.Tensor, gamma: float = 2.2) -> torch.Tensor:
    """Display to linear: ``max(x, 1e-8)^gamma`` (the floor keeps gradients finite at 0)."""
    return image.clamp(min=1e-8) ** gamma


def gamma_compression(image: torch.Tensor, gamma: float = 2.2) -> torch.Tensor:
    """Linear to display: ``max(x, 1e-8)^(1/gamma)``."""
    return image.clamp(min=1e-8) ** (1.0 / gamma)


def apply_ccm(image: torch.Tensor, ccm: torch.Tensor) -> torch.Tensor:
    """Apply one 3×3 colour matrix per image: ``out[:, i] = Σ_j ccm[:, i, j] · image[:, j]``.

    Args:
        image: ``N×3×H×W``.
        ccm: ``N×3×3``.
    """
    return torch.einsum("nij,njhw->nihw", ccm.to(image.dtype), image)


def _check_metadata(metadata: dict[str, Any], batch: int) -> None:
    missing = [key for key in METADATA_KEYS if key not in metadata]
    if missing:
        raise InvalidInputError(f"unprocess metadata: missing {missing}; expected {list(METADATA_KEYS)}")
    for key in METADATA_KEYS:
        value = metadata[key]
        expected = (batch, 3, 3) if key in ("rgb2cam", "cam2rgb") else (batch,)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != expected:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise InvalidInputError(f"unprocess metadata: {key!r} must be a tensor of shape {expected}, got {shape}")


def _gains(metadata: dict[str, torch.Tensor], brighten: bool, like: torch.Tensor) -> torch.Tensor:
    """``N×3×1×1`` forward gains (red·g, g, blue·g) with ``g = rgb_gain`` or 1."""
    red, blue = metadata["red_gain"], metadata["blue_gain"]
    overall = metadata["rgb_gain"] if brighten else torch.ones_like(red)
    gains = torch.stack([red * overall, overall, blue * overall], dim=1)
    return gains.to(device=like.device, dtype=like.dtype).view(-1, 3, 1, 1)


def unprocess(
    srgb: torch.Tensor,
    generator: torch.Generator | None = None,
    metadata: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Turn sRGB images into packed RGGB raw images with random camera metadata.

    Args:
        srgb: ``N×3×H×W`` in ``[0, 1]``, ``H`` and ``W`` even.
        generator: source of randomness on ``srgb``'s device (for the metadata).
        metadata: use these parameters instead of drawing them (as returned by
            ``random_metadata``).

    Returns:
        ``(raw, metadata)``: ``raw`` is ``N×4×H/2×W/2`` in ``[0, 1]`` (planes R, G, G, B);
        ``metadata`` holds ``rgb2cam``, ``cam2rgb``, ``rgb_gain``, ``red_gain``, ``blue_gain``.

    Raises:
        InvalidInputError: for a malformed batch, odd sizes or malformed metadata.
    """
    if not isinstance(srgb, torch.Tensor) or srgb.dim() != 4 or srgb.shape[1] != 3 or not srgb.is_floating_point():
        shape = tuple(srgb.shape) if isinstance(srgb, torch.Tensor) else type(srgb).__name__
        raise InvalidInputError(f"unprocess: expected a float N×3×H×W sRGB batch, got {shape}")
    batch, _, height, width = srgb.shape
    if height % 2 or width % 2:
        raise InvalidInputError(f"unprocess: height and width must be even for an RGGB mosaic, got {height}×{width}")
    if metadata is None:
        metadata = random_metadata(batch, generator, srgb.device)
    _check_metadata(metadata, batch)
    linear = gamma_expansion(inverse_smoothstep(srgb))
    camera = apply_ccm(linear, metadata["rgb2cam"].to(srgb.device))
    inverse_gains = 1.0 / _gains(metadata, True, camera)
    # Near white the inverse gains fade to 1 so saturated pixels stay saturated after the
    # forward white balance instead of turning magenta.
    gray = camera.mean(dim=1, keepdim=True)
    highlight = ((gray - _HIGHLIGHT_START).clamp(min=0.0) / (1.0 - _HIGHLIGHT_START)) ** 2
    safe_gains = torch.maximum(highlight + (1.0 - highlight) * inverse_gains, inverse_gains)
    camera = (camera * safe_gains).clamp(0.0, 1.0)
    rggb = torch.zeros(batch, dtype=torch.int64, device=srgb.device)
    return pack_rggb(mosaic(camera, rggb)), metadata


def process(
    raw: torch.Tensor,
    metadata: dict[str, torch.Tensor],
    *,
    brighten: bool = True,
    tone_map: bool = True,
    demosaic_method: str = "malvar",
) -> torch.Tensor:
    """Render packed RGGB raw images to sRGB with their metadata (the forward pipeline).

    Args:
        raw: ``N×4×h×w`` packed RGGB in ``[0, 1]`` (clean, noisy or denoised).
        metadata: as returned by ``unprocess`` / ``random_metadata``.
        brighten: re-apply ``rgb_gain`` (undone by ``unprocess``).
        tone_map: apply the smoothstep tone curve (undone by ``unprocess``).
        demosaic_method: ``"malvar"`` (default) or ``"bilinear"`` (as the reference).

    Returns:
        ``N×3×2h×2w`` sRGB in ``[0, 1]``.

    Raises:
        InvalidInputError: for a malformed batch, metadata or demosaic method.
    """
    if not isinstance(raw, torch.Tensor) or raw.dim() != 4 or raw.shape[1] != 4 or not raw.is_floating_point():
        shape = tuple(raw.shape) if isinstance(raw, torch.Tensor) else type(raw).__name__
        raise InvalidInputError(f"process: expected a float N×4×h×w packed RGGB batch, got {shape}")
    if demosaic_method not in DEMOSAIC_METHODS:
        raise InvalidInputError(
            f"process: demosaic_method must be one of {list(DEMOSAIC_METHODS)}, got {demosaic_method!r}"
        )
    batch = raw.shape[0]
    _check_metadata(metadata, batch)
    gains = _gains(metadata, brighten, raw)
    planes = raw * torch.cat([gains[:, :2], gains[:, 1:]], dim=1)  # R, G, G, B gains
    bayer = unpack_rggb(planes.clamp(0.0, 1.0))
    rggb = torch.zeros(batch, dtype=torch.int64, device=raw.device)
    rgb = apply_ccm(demosaic(bayer, rggb, demosaic_method), metadata["cam2rgb"].to(raw.device))
    srgb = gamma_compression(rgb.clamp(0.0, 1.0))
    return smoothstep(srgb) if tone_map else srgb
