"""Synthetic Gaussian noise: additive white (AWGN) and heteroscedastic Poisson-Gaussian.

References:
    K. Zhang et al., "Beyond a Gaussian Denoiser", IEEE TIP 2017 — AWGN with a fixed σ or a
    σ drawn per image from a range for blind training.
    A. Foi, M. Trimeche, V. Katkovnik and K. Egiazarian, "Practical Poissonian-Gaussian Noise
    Modeling and Fitting for Single-Image Raw-Data", IEEE TIP 17(10), 2008 — the
    signal-dependent model ``var = a·x + b`` and its heteroscedastic Gaussian approximation.
    S. Guo, Z. Yan, K. Zhang, W. Zuo and L. Zhang, "Toward Convolutional Blind Denoising of Real
    Photographs" (CBDNet), CVPR 2019 — the parameterisation ``σ² = σ_s²·x + σ_c²`` and the
    ranges ``σ_s ∈ [0, 0.16]``, ``σ_c ∈ [0, 0.06]``.

Both models work in the image's ``[0, 1]`` units, draw every random number from the generator
they are given, and by default do **not** clip the result to ``[0, 1]``: clipping changes the
noise statistics (it biases the mean near 0 and 1 and shrinks the variance there), so the
returned σ map would no longer be the true standard deviation. This follows the AWGN
literature; pass ``clip=True`` to get displayable images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..errors import InvalidInputError
from ..noise_model import NoiseModel
from ..types import NoisySample

__all__ = ["Gaussian", "PoissonGaussian"]

_MODES: tuple[str, ...] = ("gaussian_approx", "poisson")


def _parse_level(owner: str, option: str, value: float | Sequence[float]) -> tuple[float, float]:
    """Turn a level option (a number or a ``[lo, hi]`` range) into a validated ``(lo, hi)``."""

    def is_number(item: Any) -> bool:
        return isinstance(item, (int, float)) and not isinstance(item, bool)

    if is_number(value):
        low = high = float(value)  # type: ignore[arg-type]
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2 and all(
        is_number(item) for item in value
    ):
        low, high = float(value[0]), float(value[1])
    else:
        raise InvalidInputError(
            f"noise model {owner!r}: {option} must be a number or a [low, high] pair of numbers, got {value!r}"
        )
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0:
        raise InvalidInputError(f"noise model {owner!r}: {option} must be finite and >= 0, got {value!r}")
    if low > high:
        raise InvalidInputError(f"noise model {owner!r}: {option} range has low > high: {value!r}")
    return low, high


def _config_value(value: float | Sequence[float]) -> float | list[float]:
    """A JSON-friendly copy of a level option (ranges become lists)."""
    if isinstance(value, (int, float)):
        return value
    return [float(item) for item in value]


def _draw_levels(
    level: tuple[float, float], clean: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """One level per image, uniform in ``[lo, hi]``; a fixed level draws nothing."""
    batch = clean.shape[0]
    low, high = level
    if low == high:
        # Drawing nothing here makes a fixed-σ sample exactly clean + σ·randn(generator).
        return torch.full((batch,), low, dtype=clean.dtype, device=clean.device)
    uniform = torch.rand(batch, generator=generator, dtype=clean.dtype, device=clean.device)
    return low + (high - low) * uniform


class Gaussian(NoiseModel):
    """Additive white Gaussian noise: ``noisy = clean + σ·n``, ``n ~ N(0, 1)`` i.i.d.

    Args:
        sigma: noise standard deviation in ``[0, 1]`` units (``25/255`` by default), or a
            ``[low, high]`` range from which one σ per image is drawn uniformly (blind
            training, e.g. ``[0, 55/255]`` as for DnCNN-B).
        clip: clip the noisy images to ``[0, 1]`` (off by default; see the module docstring).

    The returned ``NoisySample`` holds:
        noisy: ``N×C×H×W``, same dtype and device as ``clean``.
        sigma: the σ map, ``N×1×H×W`` (one level per image, constant over pixels and shared by
            the channels; it broadcasts against ``N×C×H×W``). With ``clip=True`` it is still
            the nominal, pre-clipping σ.
        meta: ``{"sigma": N-vector of the per-image σ}``.

    Raises:
        InvalidInputError: for a negative or non-finite σ, a malformed range or ``low > high``.
    """

    name = "gaussian"
    domain = "srgb"

    def __init__(self, sigma: float | Sequence[float] = 25 / 255, clip: bool = False) -> None:
        self.sigma = _parse_level(self.name, "sigma", sigma)
        self.clip = clip
        self._sigma_option = _config_value(sigma)

    def sample(self, clean: torch.Tensor, generator: torch.Generator | None) -> NoisySample:
        """Add the noise; see the class docstring for what is returned."""
        batch, _, height, width = clean.shape
        sigma = _draw_levels(self.sigma, clean, generator)
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device)
        noisy = clean + sigma.view(batch, 1, 1, 1) * noise
        if self.clip:
            noisy = noisy.clamp(0.0, 1.0)
        sigma_map = sigma.view(batch, 1, 1, 1).expand(batch, 1, height, width).contiguous()
        return NoisySample(noisy=noisy, sigma=sigma_map, meta={"sigma": sigma})

    def config(self) -> dict[str, Any]:
        """Constructor arguments (ranges as lists)."""
        return {"sigma": self._sigma_option, "clip": self.clip}


class PoissonGaussian(NoiseModel):
    """Heteroscedastic signal-dependent noise with variance ``σ_s²·x + σ_c²``.

    ``x`` is the clean intensity, ``σ_s`` scales the signal-dependent (shot) part and ``σ_c``
    is the signal-independent (read) part. Two samplers with the same mean and variance:

    * ``"gaussian_approx"`` (default; Foi et al. 2008, CBDNet):
      ``noisy = x + sqrt(σ_s²·x + σ_c²) · n``, ``n ~ N(0, 1)``.
    * ``"poisson"``: exact Poisson shot noise at ``peak = 1/σ_s²`` photo-electrons per unit
      intensity plus Gaussian read noise,
      ``noisy = Poisson(x·peak)/peak + σ_c·n``; its variance is ``x/peak + σ_c² = σ_s²·x + σ_c²``.
      It is discrete (steps of ``σ_s²``) and skewed at low counts, which matters in the dark.
      An image whose ``σ_s`` is 0 gets no shot noise.

    Both use ``max(x, 0)`` as the signal level, so slightly negative clean values (e.g. from a
    black-level subtraction) do not produce a negative variance.

    The model is physically a raw-sensor model; it is declared ``"srgb"`` because the built-in
    use is as a simple signal-dependent surrogate applied directly to sRGB images. It does not
    depend on the channel count, so it can be applied to linear raw data as well.

    Args:
        sigma_s: signal-dependent std scale, a number or a ``[low, high]`` range drawn per
            image (default CBDNet's ``[0, 0.16]``).
        sigma_c: signal-independent std, a number or a range (default ``[0, 0.06]``).
        mode: ``"gaussian_approx"`` or ``"poisson"``.
        clip: clip the noisy images to ``[0, 1]`` (off by default; see the module docstring).

    The returned ``NoisySample`` holds:
        noisy: ``N×C×H×W``, same dtype and device as ``clean``.
        sigma: the exact per-pixel standard deviation ``sqrt(σ_s²·x + σ_c²)``, ``N×C×H×W``,
            computed from the clean signal (pre-clipping when ``clip=True``).
        meta: ``{"sigma_s": N-vector, "sigma_c": N-vector, "nlf": N×2 tensor of (a, b) =
            (σ_s², σ_c²)}``, the noise level function in the ``nlf`` condition's convention.

    Raises:
        InvalidInputError: for negative or non-finite levels, malformed ranges or an unknown
            ``mode``.
    """

    name = "poisson_gaussian"
    domain = "srgb"

    def __init__(
        self,
        sigma_s: float | Sequence[float] = (0.0, 0.16),
        sigma_c: float | Sequence[float] = (0.0, 0.06),
        mode: str = "gaussian_approx",
        clip: bool = False,
    ) -> None:
        if mode not in _MODES:
            raise InvalidInputError(f"noise model {self.name!r}: mode must be one of {list(_MODES)}, got {mode!r}")
        self.sigma_s = _parse_level(self.name, "sigma_s", sigma_s)
        self.sigma_c = _parse_level(self.name, "sigma_c", sigma_c)
        self.mode = mode
        self.clip = clip
        self._options = {"sigma_s": _config_value(sigma_s), "sigma_c": _config_value(sigma_c)}

    def sample(self, clean: torch.Tensor, generator: torch.Generator | None) -> NoisySample:
        """Add the noise; see the class docstring for what is returned."""
        batch = clean.shape[0]
        sigma_s = _draw_levels(self.sigma_s, clean, generator)
        sigma_c = _draw_levels(self.sigma_c, clean, generator)
        shot_var = sigma_s.view(batch, 1, 1, 1) ** 2
        read_std = sigma_c.view(batch, 1, 1, 1)
        signal = clean.clamp(min=0.0)
        sigma_map = torch.sqrt(shot_var * signal + read_std**2)

        read = torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device)
        if self.mode == "gaussian_approx":
            noisy = clean + sigma_map * read
        else:
            has_shot = shot_var > 0
            # A dummy peak of 1 where σ_s = 0 keeps the division finite; torch.where drops it.
            peak = torch.where(has_shot, 1.0 / torch.where(has_shot, shot_var, 1.0), 1.0)
            counts = torch.poisson(signal * peak, generator=generator)
            # Without shot noise the clean value passes through, unclamped.
            shot = torch.where(has_shot, counts / peak, clean)
            noisy = shot + read_std * read
        if self.clip:
            noisy = noisy.clamp(0.0, 1.0)
        nlf = torch.stack([sigma_s**2, sigma_c**2], dim=1)
        return NoisySample(noisy=noisy, sigma=sigma_map, meta={"sigma_s": sigma_s, "sigma_c": sigma_c, "nlf": nlf})

    def config(self) -> dict[str, Any]:
        """Constructor arguments (ranges as lists)."""
        return {**self._options, "mode": self.mode, "clip": self.clip}
