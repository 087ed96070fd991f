"""CBDNet's realistic sRGB noise model: camera pipeline with CRF, mosaic, demosaic and JPEG.

Reference:
    S. Guo, Z. Yan, K. Zhang, W. Zuo and L. Zhang, "Toward Convolutional Blind Denoising of Real
    Photographs", CVPR 2019 (CBDNet), and the authors' code GuoShi28/CBDNet (MATLAB
    ``utils/AddNoiseMosai.m``, Python ``SomeISP_operator_python/ISP_implement.py``).

For a clean sRGB image ``x`` the model synthesises (per image of the batch)::

    L = f⁻¹(x)                                 inverse camera response (irradiance)
    n ~ N(0, σ²(L)),  σ²(L) = σ_s²·L + σ_c²     heteroscedastic Poisson-Gaussian noise
    y = f( DM( M(L + n) ) )                    Bayer mosaic M, demosaic DM, camera response f
    y ← JPEG(y)                                optional, quality drawn per image

Noise is drawn per pixel and channel on the irradiance image and the noisy irradiance is then
mosaiced: mosaicing only samples pixels, so this has the distribution of the paper's "mosaic,
then add noise" (the author says the same of the two orders, GuoShi28/CBDNet#33), and it keeps
the random stream independent of the drawn Bayer pattern. The noisy irradiance is clipped to
``[0, 1]`` before demosaicing and again after it (MATLAB's uint16 ``demosaic`` saturates the
same way), so ``y`` is always in ``[0, 1]``. Quantisation to 8 bits is ignored as in the paper,
except inside the JPEG step.

Differences between the paper and the released code, and how they are exposed:

* ``std_form="paper"`` (default): shot std ``σ_s·√L`` as in the paper.
  ``std_form="matlab_linear"``: shot std ``σ_s·L``, the acknowledged bug of the released MATLAB
  code with which the released CBDNet models were trained (GuoShi28/CBDNet#30); the total std is
  then ``sqrt(σ_s²·L² + σ_c²)``.
* ``sample_space="uniform"`` (default): ``σ_s ~ U[0, 0.16]``, ``σ_c ~ U[0, 0.06]`` (paper and
  MATLAB). ``"log_uniform"``: logarithms uniform in ``[1e-4, 0.16]`` and ``[1e-4, 0.06]``, the
  ranges of the author's Python ISP (which, unlike here, also uses σ_s, σ_c as variance
  coefficients and adds colour-matrix and white-balance steps; not reproduced).
* ``per_channel=True`` draws ``σ_s``, ``σ_c`` per colour channel as the MATLAB code does; the
  paper and the Python ISP draw one pair per image (default).
* ``patterns`` may include ``"none"`` (no mosaic, no demosaic), MATLAB's fifth choice.
* The σ map (``sigma_map``): ``"std"`` (default) is the exact standard deviation of the
  irradiance-domain noise evaluated on the clean irradiance, ``sqrt(σ_s²·L + σ_c²)`` (or
  ``sqrt(σ_s²·L² + σ_c²)`` for ``matlab_linear``); ``"author_sum"`` is the map CBDNet's author
  describes and uses as supervision (GuoShi28/CBDNet#2, #5): the sum of the two std maps,
  ``σ_s·√L + σ_c`` (``σ_s·L + σ_c`` for ``matlab_linear``). Both follow the author in ignoring
  the camera pipeline: they are irradiance-domain levels at full resolution, 3 channels, and
  unchanged by JPEG (GuoShi28/CBDNet#13) — after demosaicing, the CRF and JPEG they describe
  the noise only approximately (see docs/noise_models.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from noiseshift.api import InvalidInputError, NoiseModel, NoisySample

from .bayer import DEMOSAIC_METHODS, PATTERNS, mosaic
from .bayer import demosaic as demosaic_mosaic
from .crf import (
    GGCM_MONOTONE_FACTOR,
    LOOKUPS,
    ResponseCurves,
    apply_crf,
    apply_inverse_crf,
    ggcm_curves,
    load_dorf,
)
from .jpeg import jpeg_roundtrip
from .options import SAMPLE_SPACES, draw_levels, parse_choice, parse_range, range_config

__all__ = ["CBDNetNoise", "CRF_CHOICES", "MOSAIC_CHOICES", "SIGMA_MAPS", "STD_FORMS"]

STD_FORMS: tuple[str, ...] = ("paper", "matlab_linear")
SIGMA_MAPS: tuple[str, ...] = ("std", "author_sum")
CRF_CHOICES: tuple[str, ...] = ("ggcm", "dorf", "linear")
MOSAIC_CHOICES: tuple[str, ...] = (*PATTERNS, "none")

_DEFAULT_LEVELS: dict[str, dict[str, tuple[float, float]]] = {
    "uniform": {"sigma_s": (0.0, 0.16), "sigma_c": (0.0, 0.06)},
    "log_uniform": {"sigma_s": (1e-4, 0.16), "sigma_c": (1e-4, 0.06)},
}


class CBDNetNoise(NoiseModel):
    """CBDNet's in-camera noise model (Guo et al., CVPR 2019) on sRGB images.

    Args:
        sigma_s: signal-dependent noise scale: a number or a ``[low, high]`` range drawn per
            image (default by ``sample_space``: ``[0, 0.16]`` or ``[1e-4, 0.16]``).
        sigma_c: signal-independent noise std, likewise (``[0, 0.06]`` or ``[1e-4, 0.06]``).
        std_form: ``"paper"`` (std ``sqrt(σ_s²·L + σ_c²)``) or ``"matlab_linear"``
            (``sqrt(σ_s²·L² + σ_c²)``, the released code's form).
        sample_space: ``"uniform"`` or ``"log_uniform"`` draws of ``σ_s`` and ``σ_c``.
        per_channel: draw ``σ_s``, ``σ_c`` per colour channel (MATLAB) instead of per image.
        crf: camera response: ``"ggcm"`` (built-in generalised gamma family, see
            ``noiseshift_cbdnet_noise.crf``), ``"dorf"`` (the 201 DoRF curves from
            ``crf_dir``) or ``"linear"`` (identity). ``None`` means ``"dorf"`` when ``crf_dir``
            is given, else ``"ggcm"``.
        crf_dir: folder with ``201_CRF_data.mat`` and ``dorfCurvesInv.mat`` (CBDNet's
            ``utils/``); only with ``crf="dorf"``.
        crf_index: use this DoRF curve (0-based) for every image instead of a uniform draw.
        crf_exponent: GGCM dark-end exponent ``a``, number or range (default ``[0.35, 1.2]``).
        crf_end_slope: GGCM highlight slope ``s``, number or range (default ``[0.02, 1.0]``).
        crf_lookup: ``"linear"`` interpolation in the CRF tables (default) or ``"nearest"``
            grid point (CBDNet's MATLAB lookup).
        patterns: Bayer patterns drawn uniformly per image, from ``rggb``, ``grbg``,
            ``gbrg``, ``bggr`` and ``none`` (no mosaic/demosaic). Default: the four patterns.
        demosaic: ``"malvar"`` (Malvar-He-Cutler 2004, as MATLAB's ``demosaic``) or
            ``"bilinear"``.
        jpeg_quality: ``None`` (no JPEG, default), a quality in ``1..100`` or a ``[low, high]``
            range drawn per image (the paper's compressed variant uses ``[60, 100]``).
        jpeg_prob: probability that an image is JPEG-compressed when ``jpeg_quality`` is set.
        sigma_map: ``"std"`` (exact irradiance-domain std, default) or ``"author_sum"``
            (``σ_s·√L + σ_c``, the CBDNet author's supervision map); see the module docstring.

    The returned ``NoisySample`` holds:
        noisy: ``N×3×H×W`` in ``[0, 1]``, ``clean``'s dtype and device.
        sigma: ``N×3×H×W`` σ map (irradiance-domain noise level at the clean irradiance).
        meta: ``sigma_s``, ``sigma_c`` (``(N,)``, or ``N×3`` with ``per_channel``), ``crf``
            (the family name), ``crf_index`` (``(N,)`` int64, DoRF) or ``crf_exponent`` and
            ``crf_end_slope`` (``(N,)``, GGCM), ``pattern`` (``N`` names, ``"none"`` when not
            mosaiced), ``jpeg_quality`` (``(N,)`` int64, ``0`` = not compressed).

    Raises:
        InvalidInputError: for unknown choices, malformed or out-of-range levels, a missing or
            malformed ``crf_dir``, or conflicting CRF options.
    """

    name: ClassVar[str] = "cbdnet"
    domain: ClassVar[str] = "srgb"
    in_channels: ClassVar[int | None] = 3

    DEFAULT_CRF_EXPONENT: ClassVar[tuple[float, float]] = (0.35, 1.2)
    DEFAULT_CRF_END_SLOPE: ClassVar[tuple[float, float]] = (0.02, 1.0)

    def __init__(
        self,
        sigma_s: float | Sequence[float] | None = None,
        sigma_c: float | Sequence[float] | None = None,
        std_form: str = "paper",
        sample_space: str = "uniform",
        per_channel: bool = False,
        crf: str | None = None,
        crf_dir: str | None = None,
        crf_index: int | None = None,
        crf_exponent: float | Sequence[float] = DEFAULT_CRF_EXPONENT,
        crf_end_slope: float | Sequence[float] = DEFAULT_CRF_END_SLOPE,
        crf_lookup: str = "linear",
        patterns: Sequence[str] = PATTERNS,
        demosaic: str = "malvar",
        jpeg_quality: int | Sequence[int] | None = None,
        jpeg_prob: float = 1.0,
        sigma_map: str = "std",
    ) -> None:
        owner = self.name
        self.std_form = parse_choice(owner, "std_form", std_form, STD_FORMS)
        self.sample_space = parse_choice(owner, "sample_space", sample_space, SAMPLE_SPACES)
        self.sigma_map = parse_choice(owner, "sigma_map", sigma_map, SIGMA_MAPS)
        self.crf_lookup = parse_choice(owner, "crf_lookup", crf_lookup, LOOKUPS)
        self.demosaic = parse_choice(owner, "demosaic", demosaic, DEMOSAIC_METHODS)
        self.per_channel = bool(per_channel)
        log = self.sample_space == "log_uniform"
        defaults = _DEFAULT_LEVELS[self.sample_space]
        self.sigma_s = parse_range(owner, "sigma_s", defaults["sigma_s"] if sigma_s is None else sigma_s,
                                   strictly_positive=log)
        self.sigma_c = parse_range(owner, "sigma_c", defaults["sigma_c"] if sigma_c is None else sigma_c,
                                   strictly_positive=log)

        self.patterns = self._parse_patterns(patterns)
        self.jpeg_quality = self._parse_jpeg(jpeg_quality)
        if isinstance(jpeg_prob, bool) or not isinstance(jpeg_prob, (int, float)) or not 0.0 <= jpeg_prob <= 1.0:
            raise InvalidInputError(f"noise model {owner!r}: jpeg_prob must be in [0, 1], got {jpeg_prob!r}")
        self.jpeg_prob = float(jpeg_prob)

        self.crf = crf if crf is not None else ("dorf" if crf_dir is not None else "ggcm")
        parse_choice(owner, "crf", self.crf, CRF_CHOICES)
        self.crf_dir = None if crf_dir is None else str(crf_dir)
        self.crf_index = crf_index
        self.crf_exponent = parse_range(owner, "crf_exponent", crf_exponent, strictly_positive=True)
        self.crf_end_slope = parse_range(owner, "crf_end_slope", crf_end_slope, strictly_positive=True)
        self._dorf: ResponseCurves | None = None
        self._dorf_on: dict[torch.device, ResponseCurves] = {}
        self._check_crf_options()

    # -- option parsing -------------------------------------------------------------------

    def _parse_patterns(self, patterns: Sequence[str]) -> tuple[str, ...]:
        names = (patterns,) if isinstance(patterns, str) else tuple(patterns)
        unknown = [name for name in names if name not in MOSAIC_CHOICES]
        if not names or unknown:
            raise InvalidInputError(
                f"noise model {self.name!r}: patterns must be a non-empty list from {list(MOSAIC_CHOICES)}, "
                f"got {patterns!r}"
            )
        return names

    def _parse_jpeg(self, quality: int | Sequence[int] | None) -> tuple[int, int] | None:
        if quality is None:
            return None
        low, high = parse_range(self.name, "jpeg_quality", quality, minimum=1)
        if high > 100 or low != int(low) or high != int(high):
            raise InvalidInputError(
                f"noise model {self.name!r}: jpeg_quality must be integers in 1..100, got {quality!r}"
            )
        return int(low), int(high)

    def _check_crf_options(self) -> None:
        owner = self.name
        if self.crf == "dorf":
            if self.crf_dir is None:
                raise InvalidInputError(
                    f"noise model {owner!r}: crf='dorf' needs crf_dir, the folder holding 201_CRF_data.mat "
                    "and dorfCurvesInv.mat"
                )
            self._dorf = load_dorf(Path(self.crf_dir))
            if self.crf_index is not None and (
                isinstance(self.crf_index, bool)
                or not isinstance(self.crf_index, int)
                or not 0 <= self.crf_index < len(self._dorf)
            ):
                raise InvalidInputError(
                    f"noise model {owner!r}: crf_index must be an integer in 0..{len(self._dorf) - 1}, "
                    f"got {self.crf_index!r}"
                )
            return
        if self.crf_dir is not None:
            raise InvalidInputError(
                f"noise model {owner!r}: crf_dir is only used with crf='dorf' (got crf={self.crf!r})"
            )
        if self.crf_index is not None:
            raise InvalidInputError(f"noise model {owner!r}: crf_index is only used with crf='dorf'")
        if self.crf == "ggcm":
            low_exponent = self.crf_exponent[0]
            high_slope = self.crf_end_slope[1]
            if high_slope >= GGCM_MONOTONE_FACTOR * low_exponent:
                raise InvalidInputError(
                    f"noise model {owner!r}: crf_end_slope up to {high_slope} with crf_exponent down to "
                    f"{low_exponent} gives non-monotone curves; need end_slope < "
                    f"{GGCM_MONOTONE_FACTOR:.3f}·exponent"
                )

    def config(self) -> dict[str, Any]:
        """Constructor arguments (ranges as lists), JSON-serialisable."""
        return {
            "sigma_s": range_config(self.sigma_s),
            "sigma_c": range_config(self.sigma_c),
            "std_form": self.std_form,
            "sample_space": self.sample_space,
            "per_channel": self.per_channel,
            "crf": self.crf,
            "crf_dir": self.crf_dir,
            "crf_index": self.crf_index,
            "crf_exponent": range_config(self.crf_exponent),
            "crf_end_slope": range_config(self.crf_end_slope),
            "crf_lookup": self.crf_lookup,
            "patterns": list(self.patterns),
            "demosaic": self.demosaic,
            "jpeg_quality": None if self.jpeg_quality is None else (
                self.jpeg_quality[0] if self.jpeg_quality[0] == self.jpeg_quality[1] else list(self.jpeg_quality)
            ),
            "jpeg_prob": self.jpeg_prob,
            "sigma_map": self.sigma_map,
        }

    # -- sampling ---------------------------------------------------------------------------

    def _draw_curves(
        self, batch: int, generator: torch.Generator | None, device: torch.device
    ) -> tuple[ResponseCurves | None, dict[str, Any]]:
        """One camera response per image (``None`` for the linear CRF) and its meta entries."""
        if self.crf == "linear":
            return None, {"crf": "linear"}
        if self.crf == "dorf":
            assert self._dorf is not None
            if self.crf_index is not None:
                index = torch.full((batch,), self.crf_index, dtype=torch.int64, device=device)
            else:
                index = torch.randint(len(self._dorf), (batch,), generator=generator, device=device)
            if device not in self._dorf_on:
                self._dorf_on[device] = ResponseCurves(self._dorf.forward.to(device), self._dorf.inverse.to(device))
            curves = self._dorf_on[device]
            return ResponseCurves(curves.forward[index], curves.inverse[index]), {"crf": "dorf", "crf_index": index}
        draw = {"space": "uniform", "generator": generator, "device": device}
        exponent = draw_levels(self.crf_exponent, (batch,), **draw)
        end_slope = draw_levels(self.crf_end_slope, (batch,), **draw)
        meta = {"crf": "ggcm", "crf_exponent": exponent, "crf_end_slope": end_slope}
        return ggcm_curves(exponent, end_slope), meta

    def _draw_patterns(self, batch: int, generator: torch.Generator | None, device: torch.device) -> list[str]:
        if len(self.patterns) == 1:
            return [self.patterns[0]] * batch
        choice = torch.randint(len(self.patterns), (batch,), generator=generator, device=device)
        return [self.patterns[i] for i in choice.tolist()]

    def _draw_jpeg(self, batch: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        if self.jpeg_quality is None or self.jpeg_prob == 0.0:
            return torch.zeros(batch, dtype=torch.int64, device=device)
        low, high = self.jpeg_quality
        quality = torch.randint(low, high + 1, (batch,), generator=generator, device=device)
        if self.jpeg_prob < 1.0:
            chosen = torch.rand(batch, generator=generator, device=device) < self.jpeg_prob
            quality = torch.where(chosen, quality, torch.zeros_like(quality))
        return quality

    def noise_std(self, irradiance: torch.Tensor, sigma_s: torch.Tensor, sigma_c: torch.Tensor) -> torch.Tensor:
        """Standard deviation of the irradiance-domain noise.

        Args:
            irradiance: ``N×C×H×W`` clean irradiance ``L`` in ``[0, 1]``.
            sigma_s: ``N×1×1×1`` or ``N×C×1×1`` shot-noise scales.
            sigma_c: same shape, read-noise stds.

        Returns:
            ``N×C×H×W``: ``sqrt(σ_s²·L + σ_c²)`` (paper) or ``sqrt(σ_s²·L² + σ_c²)``
            (``matlab_linear``).
        """
        signal = irradiance.clamp(min=0.0)
        shot_var = sigma_s**2 * (signal if self.std_form == "paper" else signal**2)
        return torch.sqrt(shot_var + sigma_c**2)

    def _sigma_map(self, irradiance: torch.Tensor, sigma_s: torch.Tensor, sigma_c: torch.Tensor,
                   std: torch.Tensor) -> torch.Tensor:
        if self.sigma_map == "std":
            return std
        signal = irradiance.clamp(min=0.0)
        shot_std = sigma_s * (signal.sqrt() if self.std_form == "paper" else signal)
        return shot_std + sigma_c

    def sample(self, clean: torch.Tensor, generator: torch.Generator | None) -> NoisySample:
        """Run the noisy camera pipeline; see the class docstring for what is returned."""
        batch, channels, height, width = clean.shape
        device, dtype = clean.device, clean.dtype
        # Every parameter is drawn before any noise, in a fixed order, so that a fixed option
        # (which draws nothing) never changes what the others get from the same seed.
        curves, meta = self._draw_curves(batch, generator, device)
        pattern_names = self._draw_patterns(batch, generator, device)
        level_shape = (batch, channels) if self.per_channel else (batch, 1)
        draw = {"space": self.sample_space, "generator": generator, "device": device, "dtype": dtype}
        sigma_s = draw_levels(self.sigma_s, level_shape, **draw)
        sigma_c = draw_levels(self.sigma_c, level_shape, **draw)
        quality = self._draw_jpeg(batch, generator, device)

        if curves is None:
            irradiance = clean.clamp(0.0, 1.0)
        else:
            irradiance = apply_inverse_crf(clean, curves, self.crf_lookup)
        s, c = sigma_s.view(*level_shape, 1, 1), sigma_c.view(*level_shape, 1, 1)
        std = self.noise_std(irradiance, s, c)
        noise = torch.randn(clean.shape, generator=generator, dtype=dtype, device=device)
        noisy = torch.addcmul(irradiance, std, noise).clamp_(0.0, 1.0)

        mosaiced = torch.tensor([name != "none" for name in pattern_names], device=device)
        if bool(mosaiced.any()):
            index = torch.tensor(
                [PATTERNS.index(name) if name != "none" else 0 for name in pattern_names], device=device
            )
            rebuilt = demosaic_mosaic(mosaic(noisy, index), index, self.demosaic).clamp_(0.0, 1.0)
            noisy = torch.where(mosaiced.view(-1, 1, 1, 1), rebuilt, noisy)

        if curves is not None:
            noisy = apply_crf(noisy, curves, self.crf_lookup)
        noisy = jpeg_roundtrip(noisy, quality)

        meta.update(
            sigma_s=sigma_s if self.per_channel else sigma_s.view(batch),
            sigma_c=sigma_c if self.per_channel else sigma_c.view(batch),
            pattern=pattern_names,
            jpeg_quality=quality,
        )
        return NoisySample(noisy=noisy, sigma=self._sigma_map(irradiance, s, c, std), meta=meta)
