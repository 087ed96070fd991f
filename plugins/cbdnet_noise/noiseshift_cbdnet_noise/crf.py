"""Camera response functions (CRFs): a built-in parametric family and the 201 DoRF curves.

A CRF ``f`` maps scene irradiance ``L ∈ [0, 1]`` to image brightness ``x = f(L) ∈ [0, 1]``;
its inverse ``f⁻¹`` maps brightness back to irradiance. A set of ``K`` curves is held as two
tables on a uniform grid of ``G`` points (``G = 1024``, as in the DoRF files):

* ``forward[k, i]  = f_k(i / (G − 1))``   (brightness at a uniform irradiance grid),
* ``inverse[k, j] = f_k⁻¹(j / (G − 1))`` (irradiance at a uniform brightness grid),

applied to a batch (one curve per image) with one ``gather`` per lookup, either by linear
interpolation between grid points (default) or by taking the nearest grid point (what CBDNet's
MATLAB ``CRF_Map`` / ``ICRF_Map`` do). Inputs are clipped to ``[0, 1]`` first, as in
``CRF_Map``. The parametric family below evaluates its forward curve in closed form instead.

**Generalised gamma curves (GGCM), the built-in family.** Ng, Chang and Tsui ("Using geometry
invariants for camera response function estimation", CVPR 2007) model a CRF as
``f(r) = r^P(r)`` with a polynomial ``P``. The first-order member used here is

    f(r) = r^(a + (s − a)·r),      a > 0,   0 < s < (1 + exp(2))·a

with two readable parameters: ``a`` (``exponent``) is the exponent at the dark end
(``f(r) ≈ r^a`` near 0; ``a < 1`` lifts the shadows as a gamma curve does) and ``s``
(``end_slope``) is the slope ``f'(1)`` at the highlight end (a small ``s`` is a shoulder that
compresses highlights, as many film-like DoRF curves have). Every member has ``f(0) = 0`` and
``f(1) = 1`` and, under the stated bounds, is strictly increasing: ``f'(r) = f(r)·(a + (s − a)·
r·(1 + ln r)) / r`` and ``r·(1 + ln r) ≥ −exp(−2)``. A plain gamma curve ``r^(1/γ)`` is the
member ``a = s = 1/γ``. No data file is needed; the inverse is tabulated by bisection.

Why it is a reasonable stand-in for DoRF (measured by ``tools/fit_crf_family.py`` of this
plugin on the 201 curves): a least-squares fit of this two-parameter family to each DoRF curve
leaves a median RMSE of 0.013 (90th percentile 0.060), against 0.030 (0.112) for the best plain
gamma curve. The default sampling box ``a ∈ [0.35, 1.2]``, ``s ∈ [0.02, 1.0]`` holds 88 % of
the fitted parameter pairs (fitted ``a``, 5–95 %: 0.34–1.19; fitted ``s`` sits at its 0.02 floor
for 31 % of the curves, whose shoulders saturate, and is below 0.99 for 95 %), and every DoRF
curve has a member of the box within a median RMSE of 0.014 (90th percentile 0.066). Drawing
``(a, s)`` uniformly from the box gives a continuum of plausible responses, from near-linear to
strongly compressive, which is the role the 201 discrete DoRF curves play in CBDNet's training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from noiseshift.api import InvalidInputError

__all__ = [
    "DORF_FILES",
    "GGCMCurves",
    "GGCM_MONOTONE_FACTOR",
    "LOOKUPS",
    "ResponseCurves",
    "apply_crf",
    "apply_inverse_crf",
    "ggcm_curves",
    "load_dorf",
    "lookup_table",
]

LOOKUPS: tuple[str, ...] = ("linear", "nearest")

GGCM_MONOTONE_FACTOR: float = 1.0 + math.exp(2.0)
"""A GGCM curve is strictly increasing iff ``0 < end_slope < GGCM_MONOTONE_FACTOR · exponent``."""

DORF_FILES: dict[str, tuple[str, str]] = {
    "201_CRF_data.mat": ("I", "B"),
    "dorfCurvesInv.mat": ("invI", "invB"),
}
"""The official DoRF files of CBDNet (GuoShi28/CBDNet ``utils/``) and the variables each holds."""

_GRID_TOLERANCE = 1e-4
_BISECTION_STEPS = 32  # 2^-32 of the unit interval: below float32 resolution near 1
_VALUE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class ResponseCurves:
    """A set of ``K`` camera response curves as uniform-grid tables.

    Attributes:
        forward: ``K×G`` float32, ``f_k`` sampled at irradiance ``linspace(0, 1, G)``.
        inverse: ``K×G`` float32, ``f_k⁻¹`` sampled at brightness ``linspace(0, 1, G)``.
    """

    forward: torch.Tensor
    inverse: torch.Tensor

    def __len__(self) -> int:
        return int(self.forward.shape[0])

    def select(self, index: torch.Tensor) -> ResponseCurves:
        """The curves ``index`` (an int64 vector), moved to ``index``'s device."""
        device = index.device
        return ResponseCurves(self.forward.to(device)[index], self.inverse.to(device)[index])

    def apply(self, irradiance: torch.Tensor, mode: str = "linear") -> torch.Tensor:
        """``x = f(L)`` for ``N×...`` irradiance, curve ``n`` on image ``n`` (table lookup)."""
        return lookup_table(self.forward, irradiance, mode)

    def apply_inverse(self, brightness: torch.Tensor, mode: str = "linear") -> torch.Tensor:
        """``L = f⁻¹(x)`` for ``N×...`` brightness, curve ``n`` on image ``n`` (table lookup)."""
        return lookup_table(self.inverse, brightness, mode)


@dataclass(frozen=True)
class GGCMCurves(ResponseCurves):
    """Generalised gamma curves: tables as in ``ResponseCurves`` plus the exact parameters.

    The forward curve is evaluated in closed form (a table would be coarse at the steep dark
    end of small exponents: linear interpolation over the first grid step misses ``r^0.35`` by
    up to 0.03); the inverse, which has no closed form, uses the table.

    Attributes:
        exponent: ``(N,)`` dark-end exponents ``a``.
        end_slope: ``(N,)`` highlight slopes ``s``.
    """

    exponent: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    end_slope: torch.Tensor = field(default_factory=lambda: torch.empty(0))

    def select(self, index: torch.Tensor) -> GGCMCurves:
        """The curves ``index`` (an int64 vector), moved to ``index``'s device."""
        device = index.device
        tables = super().select(index)
        return GGCMCurves(tables.forward, tables.inverse, self.exponent.to(device)[index],
                          self.end_slope.to(device)[index])

    def apply(self, irradiance: torch.Tensor, mode: str = "linear") -> torch.Tensor:
        """``x = r^(a + (s − a)·r)`` with ``r = clip(L, 0, 1)``; ``mode`` is not used."""
        shape = (-1,) + (1,) * (irradiance.dim() - 1)
        a = self.exponent.to(irradiance.dtype).view(shape)
        s = self.end_slope.to(irradiance.dtype).view(shape)
        r = irradiance.clamp(0.0, 1.0)
        return r.pow(a + (s - a) * r)


def lookup_table(table: torch.Tensor, values: torch.Tensor, mode: str = "linear") -> torch.Tensor:
    """Evaluate per-image uniform-grid tables at ``values``.

    The table of image ``n`` is read as a ``1×G`` image and sampled with ``grid_sample`` (one
    fused, vectorised kernel on every device) at the positions ``values[n]``.

    Args:
        table: ``N×G`` table of a function sampled at ``linspace(0, 1, G)``, one row per image.
        values: ``N×...`` inputs; clipped to ``[0, 1]``.
        mode: ``"linear"`` (interpolate between grid points) or ``"nearest"`` (nearest grid
            point, CBDNet's MATLAB lookup).

    Returns:
        Tensor of ``values``' shape and dtype.
    """
    batch, size = table.shape
    if values.shape[0] != batch:
        raise InvalidInputError(f"CRF lookup: {batch} curves for {values.shape[0]} images")
    if mode not in LOOKUPS:
        raise InvalidInputError(f"CRF lookup: mode must be one of {list(LOOKUPS)}, got {mode!r}")
    flat = values.reshape(batch, 1, -1)
    # x ∈ [−1, 1] spans the table's first to last sample (align_corners=True); y = 0 is its row.
    grid = torch.stack([flat.clamp(0.0, 1.0) * 2.0 - 1.0, torch.zeros_like(flat)], dim=-1)
    image = table.to(values.dtype).view(batch, 1, 1, size)
    sampled = F.grid_sample(image, grid, mode="bilinear" if mode == "linear" else "nearest",
                            padding_mode="border", align_corners=True)
    return sampled.view_as(values)


def apply_crf(irradiance: torch.Tensor, curves: ResponseCurves, mode: str = "linear") -> torch.Tensor:
    """``x = f(L)``: irradiance ``N×C×H×W`` to brightness with one curve per image."""
    return curves.apply(irradiance, mode)


def apply_inverse_crf(brightness: torch.Tensor, curves: ResponseCurves, mode: str = "linear") -> torch.Tensor:
    """``L = f⁻¹(x)``: brightness ``N×C×H×W`` to irradiance with one curve per image."""
    return curves.apply_inverse(brightness, mode)


def ggcm_curves(exponent: torch.Tensor, end_slope: torch.Tensor, grid: int = 1024) -> GGCMCurves:
    """First-order generalised gamma curves ``f(r) = r^(a + (s − a)·r)``.

    Args:
        exponent: ``(N,)`` dark-end exponents ``a > 0``.
        end_slope: ``(N,)`` highlight slopes ``s = f'(1)``, ``0 < s < (1 + exp(2))·a``.
        grid: table size ``G``.

    Returns:
        ``GGCMCurves`` with ``N`` curves on ``exponent``'s device (closed-form forward curve,
        tabulated inverse).
    """
    if (exponent <= 0).any() or (end_slope <= 0).any() or (end_slope >= GGCM_MONOTONE_FACTOR * exponent).any():
        raise InvalidInputError(
            "GGCM curve: need exponent > 0 and 0 < end_slope < (1 + exp(2))·exponent for a monotone curve"
        )
    # float32 throughout: float64 is not available on every accelerator (e.g. Apple MPS).
    a = exponent.float().view(-1, 1)
    s = end_slope.float().view(-1, 1)

    def curve(r: torch.Tensor) -> torch.Tensor:
        return r.pow(a + (s - a) * r)

    grid_values = torch.linspace(0.0, 1.0, grid, dtype=torch.float32, device=exponent.device)
    forward = curve(grid_values.expand(a.shape[0], grid))
    # The inverse is solved by bisection at each grid brightness rather than by inverting the
    # piecewise-linear forward table, which is far off where the curve is steep (r^0.35 at 0).
    low = torch.zeros_like(forward)
    high = torch.ones_like(forward)
    target = grid_values.expand_as(forward)
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        below = curve(middle) < target
        low = torch.where(below, middle, low)
        high = torch.where(below, high, middle)
    inverse = 0.5 * (low + high)
    inverse[:, 0], inverse[:, -1] = 0.0, 1.0
    return GGCMCurves(forward, inverse, exponent.float(), end_slope.float())


def _load_mat(path: Path, keys: tuple[str, str]) -> dict[str, np.ndarray]:
    from scipy.io import loadmat

    if not path.is_file():
        raise InvalidInputError(
            f"CRF data: missing file {path} (the DoRF curves of CBDNet, GuoShi28/CBDNet utils/{path.name})"
        )
    try:
        content = loadmat(str(path))
    except Exception as error:  # scipy raises many types (MatReadError, IndexError, ...) for bad files
        raise InvalidInputError(
            f"CRF data: cannot read {path} as a MATLAB v5 .mat file ({error}); re-save it with "
            "scipy.io.savemat or MATLAB save -v7"
        ) from error
    found = sorted(key for key in content if not key.startswith("__"))
    missing = [key for key in keys if key not in content]
    if missing:
        raise InvalidInputError(f"CRF data: {path} lacks variable(s) {missing}; it holds {found}")
    arrays = {}
    for key in keys:
        array = np.asarray(content[key])
        if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 2 or not np.issubdtype(array.dtype, np.number):
            raise InvalidInputError(
                f"CRF data: {path}: variable {key!r} must be a numeric K×G array (201×1024 in the "
                f"official files), got shape {array.shape} of {array.dtype}"
            )
        arrays[key] = array.astype(np.float64)
    return arrays


def _check_grid(path: Path, key: str, array: np.ndarray) -> None:
    grid = np.linspace(0.0, 1.0, array.shape[1])
    if np.abs(array - grid).max() > _GRID_TOLERANCE:
        raise InvalidInputError(
            f"CRF data: {path}: every row of {key!r} must be the uniform grid linspace(0, 1, {array.shape[1]})"
        )


def _check_curve(path: Path, key: str, array: np.ndarray) -> None:
    if not np.isfinite(array).all():
        raise InvalidInputError(f"CRF data: {path}: {key!r} holds NaN or inf")
    if array.min() < -_VALUE_TOLERANCE or array.max() > 1 + _VALUE_TOLERANCE:
        raise InvalidInputError(f"CRF data: {path}: {key!r} values must lie in [0, 1]")
    if (np.diff(array, axis=1) < -_VALUE_TOLERANCE).any():
        raise InvalidInputError(f"CRF data: {path}: every row of {key!r} must be non-decreasing")


def load_dorf(crf_dir: str | Path) -> ResponseCurves:
    """Load the DoRF response curves from CBDNet's official ``.mat`` files.

    Expects, in ``crf_dir``: ``201_CRF_data.mat`` with ``I`` (irradiance grid, every row
    ``linspace(0, 1, G)``) and ``B`` (brightness ``f_k(I)``), and ``dorfCurvesInv.mat`` with
    ``invB`` (brightness grid) and ``invI`` (irradiance ``f_k⁻¹(invB)``); all ``K×G``
    (``201×1024``), MATLAB v5. The shipped ``invI`` is used as is (it was built by a nearest-
    neighbour search, so ``f(f⁻¹(x))`` is within about one grid step of ``x`` except at the dark
    end of the steepest curves).

    Args:
        crf_dir: folder holding the two files.

    Returns:
        ``ResponseCurves`` with ``K`` curves (float32, CPU).

    Raises:
        InvalidInputError: when the folder or a file is missing or unreadable, a variable is
            missing, shapes are not 2-D or disagree, the grids are not uniform, or a curve
            leaves ``[0, 1]`` or decreases.
    """
    folder = Path(crf_dir).expanduser()
    if not folder.is_dir():
        raise InvalidInputError(f"CRF data: crf_dir {str(folder)!r} is not a folder")
    (data_name, (i_key, b_key)), (inv_name, (inv_i_key, inv_b_key)) = DORF_FILES.items()
    data = _load_mat(folder / data_name, (i_key, b_key))
    inverse = _load_mat(folder / inv_name, (inv_i_key, inv_b_key))
    shapes = {
        f"{data_name}:{i_key}": data[i_key].shape,
        f"{data_name}:{b_key}": data[b_key].shape,
        f"{inv_name}:{inv_i_key}": inverse[inv_i_key].shape,
        f"{inv_name}:{inv_b_key}": inverse[inv_b_key].shape,
    }
    if len(set(shapes.values())) != 1:
        raise InvalidInputError(f"CRF data: all four tables must have the same K×G shape, got {shapes}")
    _check_grid(folder / data_name, i_key, data[i_key])
    _check_grid(folder / inv_name, inv_b_key, inverse[inv_b_key])
    _check_curve(folder / data_name, b_key, data[b_key])
    _check_curve(folder / inv_name, inv_i_key, inverse[inv_i_key])
    forward = torch.from_numpy(np.clip(data[b_key], 0.0, 1.0)).float()
    backward = torch.from_numpy(np.clip(inverse[inv_i_key], 0.0, 1.0)).float()
    return ResponseCurves(forward, backward)
