"""Bayer mosaic / demosaic: exactness on constant and linear images, cross-checks, errors."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from noiseshift.api import InvalidInputError
from noiseshift_cbdnet_noise.bayer import (
    PATTERNS,
    cfa_masks,
    demosaic,
    mosaic,
    pack_rggb,
    pattern_indices,
    unpack_rggb,
)

CPU = torch.device("cpu")


def _index(name: str, batch: int = 1) -> torch.Tensor:
    return pattern_indices(name, batch, CPU)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("method", ["malvar", "bilinear"])
@pytest.mark.parametrize("size", [(8, 8), (9, 13)])
def test_constant_image_demosaics_to_itself(pattern: str, method: str, size: tuple[int, int]) -> None:
    colour = torch.tensor([0.21, 0.55, 0.87]).view(1, 3, 1, 1)
    image = colour.expand(1, 3, *size).contiguous()
    index = _index(pattern)
    rebuilt = demosaic(mosaic(image, index), index, method)
    assert torch.allclose(rebuilt, image, atol=1e-6)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_malvar_is_exact_on_linear_ramps_away_from_the_border(pattern: str) -> None:
    # Bilinear interpolation is exact on linear functions and the gradient corrections vanish
    # on them, so MHC must reproduce per-channel ramps exactly in the interior.
    height, width = 16, 20
    ys = torch.arange(height, dtype=torch.float64).view(1, 1, height, 1)
    xs = torch.arange(width, dtype=torch.float64).view(1, 1, 1, width)
    slopes = torch.tensor([[0.010, 0.020], [-0.015, 0.005], [0.002, -0.012]], dtype=torch.float64)
    image = 0.5 + slopes[:, 0].view(1, 3, 1, 1) * ys + slopes[:, 1].view(1, 3, 1, 1) * xs
    index = _index(pattern)
    rebuilt = demosaic(mosaic(image, index), index, "malvar")
    assert torch.allclose(rebuilt[..., 2:-2, 2:-2], image[..., 2:-2, 2:-2], atol=1e-12)


def _gradient_corrected_reference(raw: np.ndarray, pattern: str) -> np.ndarray:
    """Malvar et al.'s formulation, written independently of the 5×5 kernels.

    Bilinear estimate plus a gain times a Laplacian-like correction of the site's own colour:
    α = 1/2 (green at red/blue), β = 5/8 (red/blue at green), γ = 3/4 (red at blue and blue at
    red), with the neighbourhoods of the paper.
    """
    height, width = raw.shape
    p = np.pad(raw, 2, mode="reflect")

    def at(dy: int, dx: int) -> np.ndarray:
        return p[2 + dy : 2 + dy + height, 2 + dx : 2 + dx + width]

    centre = at(0, 0)
    cross1 = (at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1)) / 4
    cross2 = (at(-2, 0) + at(2, 0) + at(0, -2) + at(0, 2)) / 4
    diag1 = (at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1)) / 4
    horizontal = (at(0, -1) + at(0, 1)) / 2
    vertical = (at(-1, 0) + at(1, 0)) / 2
    # Correction for red/blue at green: the centre minus the green ring the paper weights
    # (−1 at the four diagonals and at ±2 along the interpolation axis, +1/2 at ±2 across it).
    ring_h = (-(at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1)) - (at(0, -2) + at(0, 2))
              + 0.5 * (at(-2, 0) + at(2, 0)))
    ring_v = (-(at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1)) - (at(-2, 0) + at(2, 0))
              + 0.5 * (at(0, -2) + at(0, 2)))
    green_at_rb = cross1 + 0.5 * (centre - cross2)
    rb_along_row = horizontal + (5 / 8) * (centre + ring_h / 5)
    rb_along_col = vertical + (5 / 8) * (centre + ring_v / 5)
    rb_diagonal = diag1 + 0.75 * (centre - cross2)

    red_row, red_col = divmod(PATTERNS.index(pattern), 2)
    rows = (np.arange(height) % 2 == red_row)[:, None]
    cols = (np.arange(width) % 2 == red_col)[None, :]
    is_red, is_blue = rows & cols, ~rows & ~cols
    is_green = ~(is_red | is_blue)
    out = np.empty((3, height, width))
    out[1] = np.where(is_green, centre, green_at_rb)
    out[0] = np.where(is_red, centre, np.where(is_blue, rb_diagonal, np.where(rows, rb_along_row, rb_along_col)))
    out[2] = np.where(is_blue, centre, np.where(is_red, rb_diagonal, np.where(rows, rb_along_col, rb_along_row)))
    return out


@pytest.mark.parametrize("pattern", PATTERNS)
def test_malvar_matches_the_gradient_corrected_formulation(pattern: str) -> None:
    raw = torch.rand(1, 1, 11, 14, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    mine = demosaic(raw, _index(pattern), "malvar")[0].numpy()
    reference = _gradient_corrected_reference(raw[0, 0].numpy(), pattern)
    np.testing.assert_allclose(mine, reference, atol=1e-12)


@pytest.mark.parametrize(
    ("pattern", "code"),
    [
        # OpenCV names a pattern by the second row's second and third pixels.
        ("rggb", cv2.COLOR_BayerBG2RGB),
        ("grbg", cv2.COLOR_BayerGB2RGB),
        ("gbrg", cv2.COLOR_BayerGR2RGB),
        ("bggr", cv2.COLOR_BayerRG2RGB),
    ],
)
def test_bilinear_matches_opencv_in_the_interior(pattern: str, code: int) -> None:
    levels = torch.randint(0, 256, (1, 1, 18, 22), generator=torch.Generator().manual_seed(5))
    raw = levels.float() / 255
    mine = demosaic(raw, _index(pattern), "bilinear")[0].permute(1, 2, 0).numpy()
    reference = cv2.cvtColor(levels[0, 0].numpy().astype(np.uint8), code).astype(np.float32) / 255
    # OpenCV rounds its 8-bit output, hence half a level of tolerance.
    np.testing.assert_allclose(mine[2:-2, 2:-2], reference[2:-2, 2:-2], atol=0.5 / 255 + 1e-6)


def _smooth(height: int, width: int) -> torch.Tensor:
    ys = torch.linspace(0, 1, height).view(1, 1, height, 1)
    xs = torch.linspace(0, 1, width).view(1, 1, 1, width)
    phases = torch.tensor([0.0, 1.0, 2.0]).view(1, 3, 1, 1)
    return 0.5 + 0.3 * torch.sin(2 * math.pi * (0.8 * xs + 0.6 * ys) + phases)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_malvar_reconstructs_a_smooth_image_closely(pattern: str) -> None:
    image = _smooth(48, 64)
    index = _index(pattern)
    rebuilt = demosaic(mosaic(image, index), index, "malvar")
    assert (rebuilt - image).abs()[..., 2:-2, 2:-2].max() < 0.01
    # At the mirrored border a sloped image becomes a tent, which the corrections misread.
    assert (rebuilt - image).abs().mean() < 0.005


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(float((a - b)[..., 2:-2, 2:-2].pow(2).mean()))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_malvar_beats_bilinear_on_a_natural_image(pattern: str) -> None:
    # Its gradient correction assumes correlated colour channels, as in natural images
    # (Malvar et al. report about 5.5 dB over bilinear on Kodak).
    from skimage.data import astronaut

    crop = astronaut()[100:228, 150:278].astype(np.float32) / 255
    image = torch.from_numpy(crop).permute(2, 0, 1).unsqueeze(0)
    index = _index(pattern)
    raw = mosaic(image, index)
    malvar, bilinear = demosaic(raw, index, "malvar"), demosaic(raw, index, "bilinear")
    assert _psnr(malvar, image) > _psnr(bilinear, image) + 3.0
    assert _psnr(malvar, image) > 33.0


def test_each_image_of_a_batch_uses_its_own_pattern() -> None:
    image = torch.rand(4, 3, 10, 12, generator=torch.Generator().manual_seed(1))
    index = torch.arange(4)
    together = demosaic(mosaic(image, index), index)
    for n in range(4):
        alone = demosaic(mosaic(image[n : n + 1], index[n : n + 1]), index[n : n + 1])
        assert torch.equal(together[n : n + 1], alone)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_mosaic_keeps_one_channel_per_site_and_demosaic_keeps_the_samples(pattern: str) -> None:
    image = torch.rand(1, 3, 6, 8, generator=torch.Generator().manual_seed(2))
    index = _index(pattern)
    raw = mosaic(image, index)
    top_left = pattern.upper()
    channel = {"R": 0, "G": 1, "B": 2}
    for dy in range(2):
        for dx in range(2):
            expected = image[:, channel[top_left[2 * dy + dx]], dy::2, dx::2]
            assert torch.equal(raw[:, 0, dy::2, dx::2], expected)
    rebuilt = demosaic(raw, index)
    assert torch.allclose(mosaic(rebuilt, index), raw)
    masks = cfa_masks(index, 6, 8)
    assert int(masks["green"].sum()) == 24 and int(masks["red"].sum()) == 12


def test_pack_and_unpack_rggb() -> None:
    raw = torch.arange(2 * 1 * 4 * 6, dtype=torch.float32).view(2, 1, 4, 6)
    packed = pack_rggb(raw)
    assert packed.shape == (2, 4, 2, 3)
    assert torch.equal(packed[:, 0], raw[:, 0, 0::2, 0::2])
    assert torch.equal(packed[:, 1], raw[:, 0, 0::2, 1::2])
    assert torch.equal(packed[:, 2], raw[:, 0, 1::2, 0::2])
    assert torch.equal(packed[:, 3], raw[:, 0, 1::2, 1::2])
    assert torch.equal(unpack_rggb(packed), raw)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="at least 3×3"):
        demosaic(torch.zeros(1, 1, 2, 8), _index("rggb"))
    with pytest.raises(InvalidInputError, match="method"):
        demosaic(torch.zeros(1, 1, 8, 8), _index("rggb"), "nearest")
    with pytest.raises(InvalidInputError, match="N×1×H×W"):
        demosaic(torch.zeros(1, 3, 8, 8), _index("rggb"))
    with pytest.raises(InvalidInputError, match="N×3×H×W"):
        mosaic(torch.zeros(1, 4, 8, 8), _index("rggb"))
    with pytest.raises(InvalidInputError, match="pattern names"):
        pattern_indices("rgbg", 1, CPU)
    with pytest.raises(InvalidInputError, match="pattern indices"):
        pattern_indices(torch.tensor([4]), 1, CPU)
    with pytest.raises(InvalidInputError, match="even"):
        pack_rggb(torch.zeros(1, 1, 5, 6))
