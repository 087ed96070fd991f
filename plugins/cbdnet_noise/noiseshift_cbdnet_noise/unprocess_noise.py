"""Shot and read noise on packed raw images, with the unprocessing paper's noise-level prior.

Reference:
    T. Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019.

The noise model of the paper is heteroscedastic Gaussian on linear raw values ``x``::

    y ~ N(x, λ_shot·x + λ_read)

with the levels drawn per image from a prior fitted to real camera data::

    log λ_shot ~ U[log 1e-4, log 0.012]
    log λ_read = 2.18·log λ_shot + 1.20 + N(0, 0.26²)

Why a raw model takes raw input: the ``NoiseModel`` contract returns a noisy image of the same
shape and domain as the clean one, while unprocessing turns ``N×3×H×W`` sRGB into
``N×4×H/2×W/2`` raw. So ``UnprocessNoise`` (registry name ``unprocess``, domain ``raw``) adds
noise to clean packed raw images, and the sRGB→raw and raw→sRGB steps are the public functions
``unprocess`` and ``process`` of ``noiseshift_cbdnet_noise.unprocessing``::

    raw, metadata = unprocess(srgb, generator)   # N×4×H/2×W/2 clean raw + camera metadata
    sample = UnprocessNoise()(raw, generator)    # noisy raw, σ map, noise levels
    preview = process(sample.noisy, metadata)    # back to sRGB for viewing
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from noiseshift.api import InvalidInputError, NoiseModel, NoisySample

from .options import draw_levels, parse_range, range_config

__all__ = ["UnprocessNoise"]


class UnprocessNoise(NoiseModel):
    """Heteroscedastic shot + read noise on packed RGGB raw (Brooks et al., CVPR 2019).

    Args:
        shot_noise: shot-noise variance factor ``λ_shot``: a number or a ``[low, high]`` range
            whose logarithm is drawn uniformly per image (default ``[1e-4, 0.012]``).
        read_noise: read-noise variance ``λ_read``: ``None`` (default) for the paper's
            log-linear relation to ``λ_shot``, else a number or a log-uniform ``[low, high]``.
        read_slope: slope of ``log λ_read`` against ``log λ_shot`` (2.18).
        read_intercept: intercept of that line (1.20).
        read_log_std: std of the Gaussian scatter of ``log λ_read`` around the line (0.26).
        clip: clip the noisy raw to ``[0, 1]`` (off by default, as in the paper: clipping would
            bias the noise near black and make the σ map wrong there).

    The returned ``NoisySample`` holds:
        noisy: ``N×4×h×w``, ``clean``'s dtype and device.
        sigma: ``N×4×h×w`` exact std ``sqrt(λ_shot·max(x, 0) + λ_read)`` of the clean raw ``x``.
        meta: ``shot_noise`` and ``read_noise`` (``(N,)``) and ``nlf`` (``N×2`` rows
            ``(λ_shot, λ_read)``: ``σ² = a·x + b`` in the ``nlf`` condition's convention).

    Raises:
        InvalidInputError: for malformed or non-positive levels.
    """

    name: ClassVar[str] = "unprocess"
    domain: ClassVar[str] = "raw"
    in_channels: ClassVar[int | None] = 4

    def __init__(
        self,
        shot_noise: float | Sequence[float] = (1e-4, 0.012),
        read_noise: float | Sequence[float] | None = None,
        read_slope: float = 2.18,
        read_intercept: float = 1.20,
        read_log_std: float = 0.26,
        clip: bool = False,
    ) -> None:
        self.shot_noise = parse_range(self.name, "shot_noise", shot_noise, strictly_positive=True)
        self.read_noise = None if read_noise is None else parse_range(
            self.name, "read_noise", read_noise, strictly_positive=True
        )
        for option, value in (("read_slope", read_slope), ("read_intercept", read_intercept),
                              ("read_log_std", read_log_std)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise InvalidInputError(f"noise model {self.name!r}: {option} must be a number, got {value!r}")
        if read_log_std < 0:
            raise InvalidInputError(f"noise model {self.name!r}: read_log_std must be >= 0, got {read_log_std!r}")
        self.read_slope = float(read_slope)
        self.read_intercept = float(read_intercept)
        self.read_log_std = float(read_log_std)
        self.clip = bool(clip)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (ranges as lists), JSON-serialisable."""
        return {
            "shot_noise": range_config(self.shot_noise),
            "read_noise": None if self.read_noise is None else range_config(self.read_noise),
            "read_slope": self.read_slope,
            "read_intercept": self.read_intercept,
            "read_log_std": self.read_log_std,
            "clip": self.clip,
        }

    def draw_noise_levels(self, batch: int, generator: torch.Generator | None,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``(λ_shot, λ_read)`` for ``batch`` images, ``(N,)`` each, float32."""
        draw = {"space": "log_uniform", "generator": generator, "device": device}
        shot = draw_levels(self.shot_noise, (batch,), **draw)
        if self.read_noise is not None:
            return shot, draw_levels(self.read_noise, (batch,), **draw)
        scatter = torch.randn(batch, generator=generator, device=device) * self.read_log_std
        read = torch.exp(self.read_slope * torch.log(shot) + self.read_intercept + scatter)
        return shot, read

    def sample(self, clean: torch.Tensor, generator: torch.Generator | None) -> NoisySample:
        """Add the noise; see the class docstring for what is returned."""
        batch = clean.shape[0]
        shot, read = self.draw_noise_levels(batch, generator, clean.device)
        variance = shot.to(clean.dtype).view(batch, 1, 1, 1) * clean.clamp(min=0.0) + read.to(clean.dtype).view(
            batch, 1, 1, 1
        )
        sigma = torch.sqrt(variance)
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device)
        noisy = clean + sigma * noise
        if self.clip:
            noisy = noisy.clamp(0.0, 1.0)
        nlf = torch.stack([shot, read], dim=1)
        return NoisySample(noisy=noisy, sigma=sigma, meta={"shot_noise": shot, "read_noise": read, "nlf": nlf})
