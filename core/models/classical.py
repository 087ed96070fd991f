"""Classical, parameter-free denoisers (BM3D and non-local means) as ``Denoiser`` modules.

They exist so that every benchmark table has the classical baselines next to the networks.
Both run per image on the CPU in NumPy ``float64`` (through the ``bm3d`` package and
scikit-image) and return a tensor on the input's device and dtype; they have no parameters,
are not differentiable and ignore ``train()`` / ``eval()``.

References:
    K. Dabov, A. Foi, V. Katkovnik and K. Egiazarian, "Image Denoising by Sparse 3-D
    Transform-Domain Collaborative Filtering", IEEE TIP 16(8), 2007 (BM3D), and "Color image
    denoising via sparse 3D collaborative filtering with grouping constraint in
    luminance-chrominance space", ICIP 2007 (CBM3D, the opponent colour transform).
    Y. Mäkinen, L. Azzari and A. Foi, "Collaborative Filtering of Correlated Noise: Exact
    Transform-Domain Variance for Improved Shrinkage and Patch Matching", IEEE TIP 29, 2020
    (the ``bm3d`` package's implementation and its ``'refilter'`` profile).
    A. Buades, B. Coll and J.-M. Morel, "A non-local algorithm for image denoising", CVPR 2005
    (non-local means); J. Darbon et al., ISBI 2008 (the fast variant used by scikit-image).

Noise level. Both methods need the standard deviation σ of additive white Gaussian noise, in
the image's ``[0, 1]`` units. It is resolved per image in this order:

1. the constructor's ``sigma``, when given;
2. ``cond["sigma"]`` — a float, a one-element tensor, an ``N``-vector, or an ``N×1×H×W`` /
   ``N×C×H×W`` map, reduced to its per-image mean (a signal-dependent map therefore becomes
   its average level: both methods model homoscedastic noise only);
3. an estimate from the noisy image itself, ``skimage.restoration.estimate_sigma`` (wavelet
   median absolute deviation, averaged over channels). That estimator assumes white noise and
   **underestimates real camera noise**, which is spatially correlated after demosaicking and
   in-camera processing; give σ explicitly whenever it is known.

A σ below ``1e-6`` (far under one 16-bit quantisation step) means there is nothing to remove:
the image is returned unchanged, which also avoids the methods' divisions by σ.
"""

from __future__ import annotations

import math
from typing import Any

import bm3d
import numpy as np
import torch
from bm3d.profiles import BM3DProfile, BM3DProfileRefilter
from skimage.restoration import denoise_nl_means, estimate_sigma
from torch import nn

from ..denoiser import Denoiser
from ..errors import InvalidInputError
from ..types import Conditions

__all__ = ["BM3D", "NLMeans"]

_NEGLIGIBLE_SIGMA = 1e-6

# The opponent colour transform bm3d_rgb(colorspace="opp") applies (rows: luminance and two
# chrominances); only used to detect images it cannot normalise.
_OPPONENT = np.array([[1 / 3, 1 / 3, 1 / 3], [0.5, 0.0, -0.5], [0.25, -0.5, 0.25]])


def _check_sigma_option(owner: str, sigma: float | None) -> None:
    """Validate a constructor ``sigma``: ``None`` or a finite number ≥ 0."""
    if sigma is None:
        return
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma < 0:
        raise InvalidInputError(
            f"{owner}: sigma must be None or a finite number >= 0 in [0, 1] image units "
            f"(e.g. 25/255), got {sigma!r}"
        )


def _sigmas_from_condition(owner: str, value: Any, batch: int) -> list[float]:
    """Reduce ``cond["sigma"]`` to one noise level per image (the mean of its map)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        sigmas = [float(value)] * batch
    elif isinstance(value, torch.Tensor) and value.numel() == 1:
        sigmas = [float(value.item())] * batch
    elif isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] in (1, batch):
        # float64 so that averaging a large constant map returns exactly its value.
        per_image = value.detach().to(device="cpu", dtype=torch.float64).reshape(value.shape[0], -1).mean(dim=1)
        sigmas = per_image.expand(batch).tolist()
    else:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise InvalidInputError(
            f"{owner}: cond['sigma'] must be a float, a one-element tensor, an N-vector or an "
            f"N×1×H×W / N×C×H×W map with N={batch}, got {shape}"
        )
    if not all(math.isfinite(s) and s >= 0 for s in sigmas):
        raise InvalidInputError(f"{owner}: cond['sigma'] must be finite and >= 0, got levels {sigmas}")
    return sigmas


def _bm3d_profile(name: str) -> BM3DProfile:
    """A single-threaded ``bm3d`` profile; ``'refilter'`` gets the white-noise thresholds."""
    profile = BM3DProfileRefilter() if name == "refilter" else BM3DProfile()
    # The package's thread pool sums overlapping block estimates in a scheduling-dependent
    # order, so multi-threaded runs differ by ~1e-6 between calls; one thread is reproducible
    # (and no slower on small images).
    profile.num_threads = 1
    if name == "refilter":
        # The values bm3d uses itself when σ is a scalar; given explicitly, the package skips
        # its PSD-based parameter estimation (which calls numpy.trapz, gone in NumPy 2).
        profile.lambda_thr3d, profile.mu2 = 3.0, 0.4
        profile.lambda_thr3d_re, profile.mu2_re = 2.5, 3.6
    return profile


class _ClassicalDenoiser(Denoiser):
    """Shared plumbing: σ resolution, tensor ↔ NumPy conversion and the per-image loop."""

    conditions = frozenset({"sigma"})
    trainable = False

    def __init__(self, channels: int = 3, sigma: float | None = None) -> None:
        super().__init__()
        owner = self.name or type(self).__name__
        if channels not in (1, 3):
            raise InvalidInputError(f"{owner}: channels must be 1 (grayscale) or 3 (colour), got {channels}")
        _check_sigma_option(owner, sigma)
        self.in_channels = channels
        self.out_channels = channels
        self.sigma = sigma

    def forward(self, noisy: torch.Tensor, cond: Conditions | None = None) -> torch.Tensor:
        """Denoise a batch, one image at a time.

        Args:
            noisy: ``N×channels×H×W`` float tensor, nominally in ``[0, 1]``. Values are passed
                on as they are (not clipped), so unclipped synthetic noise keeps its statistics.
            cond: may hold ``"sigma"`` (see the module docstring for the accepted forms); it is
                ignored when the constructor was given ``sigma``.

        Returns:
            ``N×channels×H×W`` estimate on ``noisy``'s device and dtype, not clipped.

        Raises:
            InvalidInputError: for a malformed input or ``cond["sigma"]``.
        """
        self.check_input(noisy)
        batch = noisy.shape[0]
        condition = self.select_conditions(cond).get("sigma")
        if self.sigma is not None:
            sigmas: list[float | None] = [float(self.sigma)] * batch
        elif condition is not None:
            sigmas = [*_sigmas_from_condition(self.name, condition, batch)]
        else:
            sigmas = [None] * batch

        images = noisy.detach().to(device="cpu", dtype=torch.float64).permute(0, 2, 3, 1).numpy()
        results = []
        for image, sigma in zip(images, sigmas):
            # The wrapped libraries get a C-contiguous copy, never a view of the caller's tensor.
            image = np.array(image[..., 0] if self.in_channels == 1 else image, order="C")
            if sigma is None:
                sigma = float(
                    estimate_sigma(image, channel_axis=-1 if image.ndim == 3 else None, average_sigmas=True)
                )
            denoised = image if sigma < _NEGLIGIBLE_SIGMA else self._denoise_image(image, sigma)
            results.append(np.asarray(denoised, dtype=np.float64).reshape(image.shape[0], image.shape[1], -1))
        output = torch.from_numpy(np.stack(results)).permute(0, 3, 1, 2)
        return output.to(device=noisy.device, dtype=noisy.dtype).contiguous()

    def _denoise_image(self, image: np.ndarray, sigma: float) -> np.ndarray:
        """Denoise one ``H×W`` (gray) or ``H×W×3`` float64 image with noise level ``sigma``."""
        raise NotImplementedError

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Empty lists for every role: there is nothing to train."""
        return {"first": [], "last": [], "domain": [], "all": []}


class BM3D(_ClassicalDenoiser):
    """Block-matching and 3-D filtering (Dabov et al., TIP 2007) via the ``bm3d`` package.

    Colour images use ``bm3d.bm3d_rgb`` with the opponent colour transform (``'opp'``, CBM3D):
    block matching on luminance, collaborative filtering per opponent channel. Grayscale images
    use ``bm3d.bm3d``. About 1 s for a 64×64 colour image on one CPU core, much of it a fixed
    cost of roughly 0.3 s per channel and call.

    Two corner cases are handled here rather than failing inside the package:

    * an image whose opponent chrominance is constant (an exactly gray image stored as RGB, or
      a constant image) cannot be normalised by ``bm3d_rgb`` (division by a zero range, NaN
      output); it is filtered per RGB channel with block matching shared across channels
      (``bm3d.bm3d`` on the ``H×W×3`` array) instead;
    * ``profile="refilter"`` with a scalar σ fails in ``bm3d`` 4.0.3 / ``bm4d`` 4.2.5 (the
      residual PSD is not padded), and a PSD input triggers parameter estimation that uses
      ``numpy.trapz``, removed in NumPy 2. The refilter profile is therefore called with the
      equivalent flat (white-noise) PSD and the thresholds the package itself uses for white
      noise given as a scalar (λ = 3.0, μ² = 0.4; residual λ = 2.5, μ² = 3.6).

    The package runs single-threaded: its thread pool makes results vary by ~1e-6 from call to
    call, which would break reproducibility, and on small images one thread is not slower.

    Args:
        channels: 1 (grayscale) or 3 (RGB).
        sigma: noise standard deviation in ``[0, 1]`` units (e.g. ``25/255``); ``None`` takes
            ``cond["sigma"]`` or estimates it (see the module docstring).
        profile: ``"np"`` (the package's default, normal profile) or ``"refilter"`` (adds a
            residual re-filtering pass; slower).

    Raises:
        InvalidInputError: for other channel counts or profiles, a negative σ, or (at call
            time) an image smaller than BM3D's 8×8 blocks.
    """

    name = "bm3d"

    def __init__(self, channels: int = 3, sigma: float | None = None, profile: str = "np") -> None:
        super().__init__(channels=channels, sigma=sigma)
        if profile not in ("np", "refilter"):
            raise InvalidInputError(f"bm3d: profile must be 'np' or 'refilter', got {profile!r}")
        self.profile = profile

    def _denoise_image(self, image: np.ndarray, sigma: float) -> np.ndarray:
        height, width = image.shape[:2]
        profile = _bm3d_profile(self.profile)
        noise: float | np.ndarray = sigma
        if self.profile == "refilter":
            # White noise of std σ has the flat PSD H·W·σ² (the package's normalisation).
            noise = np.full((height, width), height * width * sigma**2)
        try:
            if image.ndim == 2:
                return bm3d.bm3d(image, noise, profile=profile)
            chrominance_range = np.ptp(image.reshape(-1, 3) @ _OPPONENT.T, axis=0)
            if chrominance_range.min() <= 0:
                return bm3d.bm3d(image, noise, profile=profile)
            return bm3d.bm3d_rgb(image, noise, profile=profile, colorspace="opp")
        except ValueError as error:
            raise InvalidInputError(f"bm3d: cannot denoise a {height}×{width} image: {error}") from error


class NLMeans(_ClassicalDenoiser):
    """Non-local means (Buades et al., CVPR 2005) via ``skimage.restoration.denoise_nl_means``.

    Uses scikit-image's fast variant (Darbon et al.) by default, with 5×5 patches searched
    within a 13×13 window (``patch_distance=6``), the known noise variance subtracted from
    patch distances (``sigma=σ`` is passed on), and the filtering parameter ``h = h_factor·σ``
    with ``h_factor = 0.8``, scikit-image's recommended starting point for the fast mode
    (it suggests 0.6 for ``fast_mode=False``). Colour images share the patch weights across
    channels.

    Args:
        channels: 1 (grayscale) or 3 (RGB).
        sigma: noise standard deviation in ``[0, 1]`` units; ``None`` takes ``cond["sigma"]``
            or estimates it (see the module docstring).
        h_factor: ``h = h_factor · σ``; larger values smooth more.
        patch_size: side of the compared patches, in pixels.
        patch_distance: maximal search distance in pixels (window side ``2·d + 1``).
        fast_mode: scikit-image's fast, uniformly weighted patch distance; ``False`` uses the
            original Gaussian-weighted algorithm (much slower).

    Raises:
        InvalidInputError: for other channel counts, a negative σ, a non-positive
            ``h_factor`` or ``patch_size``, or a negative ``patch_distance``.
    """

    name = "nlmeans"

    def __init__(
        self,
        channels: int = 3,
        sigma: float | None = None,
        h_factor: float = 0.8,
        patch_size: int = 5,
        patch_distance: int = 6,
        fast_mode: bool = True,
    ) -> None:
        super().__init__(channels=channels, sigma=sigma)
        if not h_factor > 0 or patch_size < 1 or patch_distance < 0:
            raise InvalidInputError(
                f"nlmeans: need h_factor > 0, patch_size >= 1 and patch_distance >= 0, got "
                f"h_factor={h_factor}, patch_size={patch_size}, patch_distance={patch_distance}"
            )
        self.h_factor = h_factor
        self.patch_size = patch_size
        self.patch_distance = patch_distance
        self.fast_mode = fast_mode

    def _denoise_image(self, image: np.ndarray, sigma: float) -> np.ndarray:
        return denoise_nl_means(
            image,
            patch_size=self.patch_size,
            patch_distance=self.patch_distance,
            h=self.h_factor * sigma,
            fast_mode=self.fast_mode,
            sigma=sigma,
            preserve_range=True,
            channel_axis=-1 if image.ndim == 3 else None,
        )
