"""Full-reference image quality metrics: PSNR and SSIM.

Both metrics follow the conventions of the published benchmark scripts so that numbers
computed here can be put next to numbers in papers:

* ``data_range`` is always explicit. It is never inferred from ``max()``, because a dark test
  image would then be scored against the wrong peak.
* ``quantize=True`` reproduces the common ``uint8`` evaluation: values are clipped to
  ``[0, data_range]``, mapped to the 8-bit levels ``round(x / data_range * 255)`` (ties to even,
  as ``numpy.round``) and scored with peak ``255``.
* ``crop_border`` removes that many pixels from every side before scoring (super-resolution and
  some denoising benchmarks ignore the border).
* Everything is computed in ``float64``; the result is a ``float64`` tensor on the input's
  device (on Apple ``mps``, which has no ``float64``, the computation runs on the CPU and the
  result is returned there).

Inputs are ``N×C×H×W``; ``C×H×W`` and ``H×W`` are promoted to a batch of one. Each image is
scored on its own (``reduction="none"`` gives the ``N`` per-image values); ``reduction="mean"``
averages the per-image values, the way benchmark tables report them.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import InvalidInputError

__all__ = ["psnr", "ssim"]

Reduction = Literal["mean", "none"]
SSIMWindow = Literal["gaussian", "uniform"]

_QUANT_PEAK = 255.0

# Wang et al. 2004 / MATLAB ssim_index constants.
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_GAUSSIAN_SIGMA = 1.5
_GAUSSIAN_SIZE = 11  # = 2 * int(3.5 * 1.5 + 0.5) + 1, skimage's truncation of the same Gaussian
_UNIFORM_SIZE = 7  # skimage's default window


def psnr(
    output: Tensor,
    target: Tensor,
    data_range: float,
    *,
    quantize: bool = False,
    crop_border: int = 0,
    reduction: Reduction = "mean",
) -> Tensor:
    """Peak signal-to-noise ratio in dB, ``10·log10(peak² / MSE)``, per image.

    The MSE of an image is averaged over all its channels and pixels (``C×H×W``), so a colour
    image gets one PSNR, not one per channel. Identical images (``MSE = 0``) give ``inf``, and
    then ``reduction="mean"`` is ``inf`` as well; filter with ``torch.isfinite`` when a table
    must stay finite.

    Args:
        output: estimate, ``N×C×H×W`` (or ``C×H×W`` / ``H×W``), float or integer, finite, with
            values in ``[0, data_range]``.
        target: reference, same shape and device as ``output``.
        data_range: the span of valid values (``1.0`` for ``[0, 1]`` images, ``255.0`` for
            8-bit scaled ones); the PSNR peak. Must be finite and ``> 0``.
        quantize: score the 8-bit levels ``round(clip(x, 0, data_range) / data_range · 255)``
            with peak ``255`` instead of the raw values.
        crop_border: pixels removed from each of the four sides before scoring; ``>= 0``.
        reduction: ``"mean"`` for the mean of the per-image PSNRs, ``"none"`` for all of them.

    Returns:
        ``float64`` tensor in dB, in ``(-inf, inf]``: a scalar for ``"mean"``, shape ``N`` for
        ``"none"``.

    Raises:
        InvalidInputError: the shapes or devices differ, a value is NaN/inf, ``data_range`` is
            not a positive finite number, ``crop_border`` leaves no pixels, or an option is
            unknown.
    """
    x, y, peak = _prepare("psnr", output, target, data_range, quantize, crop_border, reduction)
    mse = (x - y).square().mean(dim=(1, 2, 3))
    # Division by an exact zero MSE yields +inf, which is the documented result.
    values = 10.0 * torch.log10(peak**2 / mse)
    return _reduce(values, reduction)


def ssim(
    output: Tensor,
    target: Tensor,
    data_range: float,
    *,
    window: SSIMWindow = "gaussian",
    quantize: bool = False,
    crop_border: int = 0,
    reduction: Reduction = "mean",
) -> Tensor:
    """Structural similarity index (Wang et al., 2004), per image.

    The SSIM map is computed per channel with ``valid`` filtering (no padding, so only
    positions where the whole window fits in the image count), averaged over each channel and
    then over the channels.

    Windows:
        ``"gaussian"``: 11×11 Gaussian, σ = 1.5, population covariance; the convention of the
            authors' MATLAB ``ssim_index`` and of ``skimage.metrics.structural_similarity(...,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
        ``"uniform"``: 7×7 box, sample covariance (``N/(N-1)`` correction); the default of
            ``skimage.metrics.structural_similarity``.

    Both use ``K1 = 0.01``, ``K2 = 0.03`` and ``L = data_range`` (``255`` when quantizing).

    Args:
        output: estimate, ``N×C×H×W`` (or ``C×H×W`` / ``H×W``), float or integer, finite, with
            values in ``[0, data_range]``.
        target: reference, same shape and device as ``output``.
        data_range: the span of valid values (``1.0`` or ``255.0`` typically); sets the
            stabilising constants. Must be finite and ``> 0``.
        window: ``"gaussian"`` or ``"uniform"``, see above.
        quantize: score the 8-bit levels ``round(clip(x, 0, data_range) / data_range · 255)``
            with ``L = 255`` instead of the raw values.
        crop_border: pixels removed from each of the four sides before scoring; ``>= 0``.
        reduction: ``"mean"`` for the mean of the per-image values, ``"none"`` for all of them.

    Returns:
        ``float64`` tensor in ``[-1, 1]`` (``1`` for identical images): a scalar for
        ``"mean"``, shape ``N`` for ``"none"``.

    Raises:
        InvalidInputError: as for ``psnr``; also when the (cropped) image is smaller than the
            window (11×11 Gaussian, 7×7 uniform) or ``window`` is unknown.
    """
    if window not in ("gaussian", "uniform"):
        raise InvalidInputError(f"ssim: window must be 'gaussian' or 'uniform', got {window!r}")
    x, y, peak = _prepare("ssim", output, target, data_range, quantize, crop_border, reduction)

    size = _GAUSSIAN_SIZE if window == "gaussian" else _UNIFORM_SIZE
    height, width = x.shape[-2:]
    if height < size or width < size:
        raise InvalidInputError(
            f"ssim: the {window} window is {size}×{size} but the image is {height}×{width}"
            f"{' after crop_border=' + str(crop_border) if crop_border else ''}; "
            f"SSIM needs images at least as large as the window"
        )

    kernel = _window_1d(window, x.device)
    # skimage's uniform window uses the unbiased (sample) covariance; the Gaussian one of
    # Wang et al. the population covariance.
    cov_norm = size * size / (size * size - 1) if window == "uniform" else 1.0

    channels = x.shape[1]
    # One grouped convolution filters all five moment images at once.
    moments = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    mu_x, mu_y, e_xx, e_yy, e_xy = _separable_filter(moments, kernel).split(channels, dim=1)

    var_x = cov_norm * (e_xx - mu_x * mu_x)
    var_y = cov_norm * (e_yy - mu_y * mu_y)
    cov_xy = cov_norm * (e_xy - mu_x * mu_y)

    c1 = (_SSIM_K1 * peak) ** 2
    c2 = (_SSIM_K2 * peak) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    # Every channel's map has the same size, so the mean over C×H×W equals the mean over
    # channels of the per-channel means.
    values = ssim_map.mean(dim=(1, 2, 3))
    return _reduce(values, reduction)


def _prepare(
    metric: str,
    output: Tensor,
    target: Tensor,
    data_range: float,
    quantize: bool,
    crop_border: int,
    reduction: str,
) -> tuple[Tensor, Tensor, float]:
    """Validate the arguments shared by all metrics and bring the images into scoring form.

    Returns:
        ``(x, y, peak)``: ``float64`` ``N×C×H×W`` tensors, cropped and (if asked) quantized,
        and the peak value to score against (``data_range``, or ``255`` when quantizing).
    """
    if reduction not in ("mean", "none"):
        raise InvalidInputError(f"{metric}: reduction must be 'mean' or 'none', got {reduction!r}")
    if isinstance(data_range, bool) or not isinstance(data_range, Real):
        raise InvalidInputError(
            f"{metric}: data_range must be a positive number (1.0 for [0, 1] images, 255.0 for "
            f"8-bit scaled ones), got {data_range!r}"
        )
    if not math.isfinite(data_range) or data_range <= 0:
        raise InvalidInputError(
            f"{metric}: data_range must be finite and > 0 (1.0 for [0, 1] images, 255.0 for "
            f"8-bit scaled ones), got {data_range!r}"
        )
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise InvalidInputError(f"{metric}: crop_border must be an integer >= 0, got {crop_border!r}")

    x = _as_batch(metric, "output", output)
    y = _as_batch(metric, "target", target)
    if x.shape != y.shape:
        raise InvalidInputError(
            f"{metric}: output and target shapes differ: {tuple(output.shape)} vs "
            f"{tuple(target.shape)}"
        )
    if x.device != y.device:
        raise InvalidInputError(
            f"{metric}: output is on {x.device} but target is on {y.device}; move both to one device"
        )

    # The full images are checked, not the cropped ones: a NaN in the discarded border still
    # means the pipeline that produced the image is broken.
    for name, tensor in (("output", x), ("target", y)):
        if tensor.is_floating_point():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise InvalidInputError(
                    f"{metric}: {name} holds {bad} non-finite value(s) (NaN or inf) of "
                    f"{tensor.numel()}"
                )

    height, width = x.shape[-2:]
    if 2 * crop_border >= min(height, width):
        raise InvalidInputError(
            f"{metric}: crop_border={crop_border} removes every pixel of a {height}×{width} image"
        )
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]

    # MPS has no float64; accuracy matters more here than staying on the accelerator.
    if x.device.type == "mps":
        x, y = x.cpu(), y.cpu()
    x = x.to(torch.float64)
    y = y.to(torch.float64)

    peak = float(data_range)
    if quantize:
        x = _quantize(x, peak)
        y = _quantize(y, peak)
        peak = _QUANT_PEAK
    return x, y, peak


def _as_batch(metric: str, name: str, image: Tensor) -> Tensor:
    """Check that ``image`` is a non-empty real tensor and promote it to ``N×C×H×W``."""
    if not isinstance(image, Tensor):
        raise InvalidInputError(
            f"{metric}: {name} must be a torch.Tensor (N×C×H×W, C×H×W or H×W), got "
            f"{type(image).__name__}; convert H×W×C numpy arrays with "
            f"noiseshift.image_io.from_numpy_image"
        )
    if image.dtype == torch.bool or image.is_complex():
        raise InvalidInputError(f"{metric}: {name} must be a real float or integer tensor, got {image.dtype}")
    if image.dim() not in (2, 3, 4):
        raise InvalidInputError(
            f"{metric}: {name} must be N×C×H×W, C×H×W or H×W, got shape {tuple(image.shape)}"
        )
    if image.numel() == 0:
        raise InvalidInputError(f"{metric}: {name} is empty (shape {tuple(image.shape)})")
    while image.dim() < 4:
        image = image.unsqueeze(0)
    return image


def _quantize(image: Tensor, data_range: float) -> Tensor:
    """Map ``[0, data_range]`` values to the 8-bit levels ``0..255`` (as ``float64``)."""
    return torch.round(image.clamp(0.0, data_range) / data_range * _QUANT_PEAK)


def _window_1d(window: SSIMWindow, device: torch.device) -> Tensor:
    """The normalised 1-D factor of the separable SSIM window, ``float64``, shape ``K``."""
    if window == "gaussian":
        radius = _GAUSSIAN_SIZE // 2
        coords = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
        kernel = torch.exp(-(coords**2) / (2.0 * _GAUSSIAN_SIGMA**2))
    else:
        kernel = torch.ones(_UNIFORM_SIZE, dtype=torch.float64, device=device)
    return kernel / kernel.sum()


def _separable_filter(images: Tensor, kernel: Tensor) -> Tensor:
    """Filter each channel of ``images`` (``N×C×H×W``) with ``kernel ⊗ kernel``, 'valid' mode.

    Returns:
        ``N×C×(H-K+1)×(W-K+1)``.
    """
    channels = images.shape[1]
    size = kernel.numel()
    vertical = kernel.view(1, 1, size, 1).expand(channels, 1, size, 1)
    horizontal = kernel.view(1, 1, 1, size).expand(channels, 1, 1, size)
    filtered = F.conv2d(images, vertical, groups=channels)
    return F.conv2d(filtered, horizontal, groups=channels)


def _reduce(values: Tensor, reduction: Reduction) -> Tensor:
    """Apply the ``reduction`` to the per-image values (shape ``N``)."""
    return values.mean() if reduction == "mean" else values
