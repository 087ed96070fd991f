"""Tests of ``noiseshift.metrics``: PSNR and SSIM against scikit-image and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from noiseshift.errors import InvalidInputError
from noiseshift.metrics import psnr, ssim

TOL = 1e-4


def _noisy_pair(
    clean: np.ndarray, sigma: float, data_range: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy, clean)`` float64 H×W(×C) arrays in ``[0, data_range]``."""
    rng = np.random.default_rng(seed)
    noisy = np.clip(clean + rng.normal(0.0, sigma * data_range, clean.shape), 0.0, data_range)
    return noisy, clean


def _natural(gray: bool, data_range: float) -> np.ndarray:
    """A 128×96 crop of skimage's astronaut in ``[0, data_range]``, H×W×3 or H×W."""
    image = skimage.data.astronaut()[100:228, 150:246].astype(np.float64) / 255.0
    if gray:
        image = image @ np.array([0.299, 0.587, 0.114])
    return image * data_range


def _random(gray: bool, data_range: float, seed: int = 1) -> np.ndarray:
    shape = (40, 52) if gray else (40, 52, 3)
    return np.random.default_rng(seed).uniform(0.0, data_range, shape)


def _t(array: np.ndarray) -> torch.Tensor:
    """H×W×C or H×W array to a 1×C×H×W tensor."""
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def _sk_ssim(a: np.ndarray, b: np.ndarray, data_range: float, window: str) -> float:
    channel_axis = -1 if a.ndim == 3 else None
    if window == "gaussian":
        return float(
            structural_similarity(
                a, b, data_range=data_range, channel_axis=channel_axis,
                gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            )
        )
    return float(structural_similarity(a, b, data_range=data_range, channel_axis=channel_axis))


IMAGES = [
    pytest.param(kind, gray, data_range, id=f"{kind}-{'gray' if gray else 'rgb'}-{data_range:g}")
    for kind in ("random", "natural")
    for gray in (False, True)
    for data_range in (1.0, 255.0)
]


def _pair(kind: str, gray: bool, data_range: float) -> tuple[np.ndarray, np.ndarray]:
    clean = _natural(gray, data_range) if kind == "natural" else _random(gray, data_range)
    return _noisy_pair(clean, 0.08, data_range, seed=3)


@pytest.mark.parametrize(("kind", "gray", "data_range"), IMAGES)
def test_psnr_matches_skimage(kind: str, gray: bool, data_range: float) -> None:
    noisy, clean = _pair(kind, gray, data_range)
    expected = peak_signal_noise_ratio(clean, noisy, data_range=data_range)
    got = psnr(_t(noisy), _t(clean), data_range)
    assert got.dtype == torch.float64 and got.dim() == 0
    assert float(got) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
@pytest.mark.parametrize(("kind", "gray", "data_range"), IMAGES)
def test_ssim_matches_skimage(kind: str, gray: bool, data_range: float, window: str) -> None:
    noisy, clean = _pair(kind, gray, data_range)
    expected = _sk_ssim(noisy, clean, data_range, window)
    got = ssim(_t(noisy), _t(clean), data_range, window=window)
    assert got.dtype == torch.float64 and got.dim() == 0
    assert float(got) == pytest.approx(expected, abs=TOL)


def test_windows_differ() -> None:
    # Guards against both options silently computing the same thing.
    noisy, clean = _pair("natural", False, 1.0)
    gaussian = float(ssim(_t(noisy), _t(clean), 1.0))
    uniform = float(ssim(_t(noisy), _t(clean), 1.0, window="uniform"))
    assert abs(gaussian - uniform) > 1e-3


def test_float32_input_and_promoted_shapes() -> None:
    noisy, clean = _pair("natural", True, 1.0)
    expected_p = peak_signal_noise_ratio(clean, noisy, data_range=1.0)
    expected_s = _sk_ssim(noisy, clean, 1.0, "gaussian")
    hw_out, hw_ref = torch.from_numpy(noisy), torch.from_numpy(clean)
    layouts = ((hw_out, hw_ref), (hw_out[None], hw_ref[None]), (hw_out[None, None], hw_ref[None, None]))
    for out, ref in layouts:
        assert float(psnr(out, ref, 1.0)) == pytest.approx(expected_p, abs=TOL)
        assert float(ssim(out, ref, 1.0)) == pytest.approx(expected_s, abs=TOL)
    # float32 inputs are scored in float64, so they only differ by the input rounding.
    assert float(psnr(hw_out.float(), hw_ref.float(), 1.0)) == pytest.approx(expected_p, abs=1e-3)


def test_batch_reduction_none_and_mean() -> None:
    pairs = [_noisy_pair(_natural(False, 1.0), s, 1.0, seed=i) for i, s in enumerate((0.02, 0.05, 0.1))]
    out = torch.cat([_t(n) for n, _ in pairs])
    ref = torch.cat([_t(c) for _, c in pairs])
    assert out.shape == (3, 3, 128, 96)

    per_image_p = psnr(out, ref, 1.0, reduction="none")
    per_image_s = ssim(out, ref, 1.0, reduction="none")
    assert per_image_p.shape == (3,) and per_image_s.shape == (3,)
    for i, (n, c) in enumerate(pairs):
        assert float(per_image_p[i]) == pytest.approx(peak_signal_noise_ratio(c, n, data_range=1.0), abs=TOL)
        assert float(per_image_s[i]) == pytest.approx(_sk_ssim(n, c, 1.0, "gaussian"), abs=TOL)
    # Mean of per-image PSNRs, not the PSNR of the pooled MSE.
    assert float(psnr(out, ref, 1.0)) == pytest.approx(float(per_image_p.mean()), abs=1e-12)
    pooled = 10 * math.log10(1.0 / float((out - ref).square().mean()))
    assert abs(float(psnr(out, ref, 1.0)) - pooled) > 0.1
    assert float(ssim(out, ref, 1.0)) == pytest.approx(float(per_image_s.mean()), abs=1e-12)
    # Stronger noise must score lower.
    assert per_image_p[0] > per_image_p[1] > per_image_p[2]
    assert per_image_s[0] > per_image_s[1] > per_image_s[2]


def test_psnr_uses_explicit_data_range_not_max() -> None:
    clean = np.full((16, 16), 0.2)
    noisy = clean + 0.01
    # Peak is data_range (1.0) although the image max is ~0.2.
    assert float(psnr(_t(noisy), _t(clean), 1.0)) == pytest.approx(40.0, abs=1e-9)
    assert float(psnr(_t(noisy * 255), _t(clean * 255), 255.0)) == pytest.approx(40.0, abs=1e-9)


def test_quantize_matches_uint8_convention() -> None:
    noisy, clean = _pair("natural", False, 1.0)
    # Values outside [0, 1] must be clipped before quantisation.
    noisy = noisy.copy()
    noisy[0, 0, 0], noisy[1, 1, 1] = 1.3, -0.2
    noisy_u8 = np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8)
    clean_u8 = np.round(np.clip(clean, 0, 1) * 255).astype(np.uint8)
    mse = np.mean((noisy_u8.astype(np.float64) - clean_u8.astype(np.float64)) ** 2)
    expected_p = 10 * np.log10(255.0**2 / mse)
    got_p = float(psnr(_t(noisy), _t(clean), 1.0, quantize=True))
    assert got_p == pytest.approx(expected_p, abs=1e-9)
    assert abs(got_p - float(psnr(_t(noisy), _t(clean), 1.0))) > 1e-4

    expected_s = _sk_ssim(noisy_u8.astype(np.float64), clean_u8.astype(np.float64), 255.0, "gaussian")
    assert float(ssim(_t(noisy), _t(clean), 1.0, quantize=True)) == pytest.approx(expected_s, abs=TOL)

    # The same images scaled to [0, 255] quantise to the same levels.
    got_255 = float(psnr(_t(noisy * 255), _t(clean * 255), 255.0, quantize=True))
    assert got_255 == pytest.approx(expected_p, abs=1e-9)


def test_crop_border() -> None:
    noisy, clean = _pair("natural", False, 1.0)
    border = 4
    inner = (slice(border, -border), slice(border, -border))
    expected_p = 10 * np.log10(1.0 / np.mean((noisy[inner] - clean[inner]) ** 2))
    got_p = float(psnr(_t(noisy), _t(clean), 1.0, crop_border=border))
    assert got_p == pytest.approx(expected_p, abs=1e-9)
    assert float(ssim(_t(noisy), _t(clean), 1.0, crop_border=border)) == pytest.approx(
        _sk_ssim(noisy[inner], clean[inner], 1.0, "gaussian"), abs=TOL
    )
    # Corrupting only the border must leave the cropped score unchanged.
    spoiled = noisy.copy()
    spoiled[:border] = 0.0
    spoiled[:, -border:] = 1.0
    assert float(psnr(_t(spoiled), _t(clean), 1.0, crop_border=border)) == pytest.approx(got_p, abs=1e-12)
    assert float(psnr(_t(spoiled), _t(clean), 1.0)) < got_p - 1.0


def test_identical_images() -> None:
    image = torch.from_numpy(_random(False, 1.0)).permute(2, 0, 1)[None]
    assert math.isinf(float(psnr(image, image, 1.0))) and float(psnr(image, image, 1.0)) > 0
    assert float(ssim(image, image, 1.0)) == pytest.approx(1.0, abs=1e-12)
    batch = torch.cat([image, image])
    other = torch.cat([image, image.flip(-1)])
    values = psnr(batch, other, 1.0, reduction="none")
    assert math.isinf(float(values[0])) and math.isfinite(float(values[1]))


def test_device_and_integer_inputs() -> None:
    noisy, clean = _pair("natural", False, 255.0)
    noisy_u8 = torch.from_numpy(np.round(noisy).astype(np.uint8)).permute(2, 0, 1)
    clean_u8 = torch.from_numpy(np.round(clean).astype(np.uint8)).permute(2, 0, 1)
    expected = peak_signal_noise_ratio(clean_u8.numpy(), noisy_u8.numpy(), data_range=255)
    got = psnr(noisy_u8, clean_u8, 255.0)
    assert float(got) == pytest.approx(expected, abs=TOL)
    assert got.device == noisy_u8.device


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_errors(metric) -> None:  # type: ignore[no-untyped-def]
    a = torch.rand(1, 3, 32, 32)
    with pytest.raises(InvalidInputError, match="shapes differ"):
        metric(a, torch.rand(1, 3, 32, 31), 1.0)
    with pytest.raises(InvalidInputError, match="shapes differ"):
        metric(a, torch.rand(1, 1, 32, 32), 1.0)
    bad = a.clone()
    bad[0, 0, 3, 3] = float("nan")
    bad[0, 1, 3, 3] = float("inf")
    with pytest.raises(InvalidInputError, match="target holds 2 non-finite"):
        metric(a, bad, 1.0)
    with pytest.raises(InvalidInputError, match="output holds 2 non-finite"):
        metric(bad, a, 1.0, quantize=True)
    for data_range in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidInputError, match="data_range"):
            metric(a, a, data_range)
    with pytest.raises(InvalidInputError, match="data_range"):
        metric(a, a, None)
    with pytest.raises(InvalidInputError, match="reduction"):
        metric(a, a, 1.0, reduction="sum")
    with pytest.raises(InvalidInputError, match="crop_border"):
        metric(a, a, 1.0, crop_border=-1)
    with pytest.raises(InvalidInputError, match="crop_border=16"):
        metric(a, a, 1.0, crop_border=16)
    with pytest.raises(InvalidInputError, match="torch.Tensor"):
        metric(a.numpy(), a, 1.0)
    with pytest.raises(InvalidInputError, match="N×C×H×W"):
        metric(a[None], a[None], 1.0)


def test_ssim_too_small() -> None:
    small = torch.rand(1, 3, 10, 32)
    with pytest.raises(InvalidInputError, match="11×11"):
        ssim(small, small, 1.0)
    # 10 rows fit the 7×7 uniform window.
    assert float(ssim(small, small, 1.0, window="uniform")) == pytest.approx(1.0)
    six = torch.rand(1, 1, 6, 32)
    with pytest.raises(InvalidInputError, match="7×7"):
        ssim(six, six, 1.0, window="uniform")
    # Cropping can make an image too small.
    with pytest.raises(InvalidInputError, match="crop_border=6"):
        ssim(torch.rand(1, 1, 20, 20), torch.rand(1, 1, 20, 20), 1.0, crop_border=6)
    with pytest.raises(InvalidInputError, match="window"):
        ssim(small, small, 1.0, window="box")  # type: ignore[arg-type]
