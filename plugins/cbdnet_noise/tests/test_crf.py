"""Camera response curves: the DoRF loader (real and synthetic files) and the GGCM family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import savemat

from noiseshift.api import InvalidInputError
from noiseshift_cbdnet_noise.crf import (
    GGCM_MONOTONE_FACTOR,
    apply_crf,
    apply_inverse_crf,
    ggcm_curves,
    load_dorf,
    lookup_table,
)

REAL_CRF_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "crf"
needs_real_crfs = pytest.mark.skipif(
    not (REAL_CRF_DIR / "201_CRF_data.mat").is_file() or not (REAL_CRF_DIR / "dorfCurvesInv.mat").is_file(),
    reason=f"the DoRF curves (201_CRF_data.mat, dorfCurvesInv.mat) are not in {REAL_CRF_DIR}",
)


def _round_trip_errors(curves, mode: str, points: int = 2049) -> torch.Tensor:
    """Per curve, max |f(f⁻¹(x)) − x| over a fine brightness grid."""
    x = torch.linspace(0, 1, points).expand(len(curves), points).contiguous()
    return (apply_crf(apply_inverse_crf(x, curves, mode), curves, mode) - x).abs().max(dim=1).values


# -- the real DoRF files ---------------------------------------------------------------------


@needs_real_crfs
def test_real_dorf_curves_load_with_the_documented_layout() -> None:
    curves = load_dorf(REAL_CRF_DIR)
    assert curves.forward.shape == curves.inverse.shape == (201, 1024)
    assert curves.forward.dtype == torch.float32


@needs_real_crfs
@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_real_dorf_round_trip_within_the_documented_tolerance(mode: str) -> None:
    # methods.md §2.5: median max-error 0.0055; worst curve #159 (0-based), 0.124 at the dark end.
    errors = _round_trip_errors(load_dorf(REAL_CRF_DIR), mode)
    assert float(errors.median()) < 0.0065
    assert int(errors.argmax()) == 159
    assert float(errors.max()) < 0.126
    assert float(torch.cat([errors[:159], errors[160:]]).max()) < 0.1


@needs_real_crfs
def test_real_dorf_curves_are_monotone_with_fixed_endpoints() -> None:
    curves = load_dorf(REAL_CRF_DIR)
    for table in (curves.forward, curves.inverse):
        assert (table.diff(dim=1) >= 0).all()
        assert torch.allclose(table[:, 0], torch.zeros(201), atol=1e-6)
        assert torch.allclose(table[:, -1], torch.ones(201), atol=1e-6)
    # And through the lookups, on values between the grid points (up to float32 rounding).
    x = torch.rand(201, 5000, generator=torch.Generator().manual_seed(0)).sort(dim=1).values
    assert (apply_crf(x, curves).diff(dim=1) >= -1e-6).all()
    assert (apply_inverse_crf(x, curves).diff(dim=1) >= -1e-6).all()


# -- the loader on files written here in the official layout --------------------------------


def _write_official(folder: Path, curves: int = 201, grid: int = 1024, **overrides) -> None:
    """Write 201_CRF_data.mat (I, B) and dorfCurvesInv.mat (invI, invB) as CBDNet ships them."""
    folder.mkdir(parents=True, exist_ok=True)
    irradiance = np.linspace(0, 1, grid, dtype=np.float32)
    gammas = np.linspace(0.3, 1.0, curves, dtype=np.float32)[:, None]
    data = {
        "I": np.tile(irradiance, (curves, 1)),
        "B": irradiance[None, :] ** gammas,
        "invI": irradiance[None, :] ** (1 / gammas),
        "invB": np.tile(irradiance, (curves, 1)),
    }
    data.update(overrides)
    savemat(folder / "201_CRF_data.mat", {k: v for k, v in data.items() if k in ("I", "B") and v is not None})
    savemat(folder / "dorfCurvesInv.mat", {k: v for k, v in data.items() if k in ("invI", "invB") and v is not None})


def test_loader_reads_files_in_the_official_layout(tmp_path: Path) -> None:
    _write_official(tmp_path)
    curves = load_dorf(tmp_path)
    assert curves.forward.shape == (201, 1024)
    grid = torch.linspace(0, 1, 1024)
    # Row k is r^gamma_k: check one curve through the lookups.
    gamma = 0.3 + 0.7 * 17 / 200
    x = torch.tensor([[0.1, 0.5, 0.9]])
    index = torch.tensor([17])
    chosen = curves.select(index)
    assert torch.allclose(apply_crf(x, chosen), x**gamma, atol=2e-3)
    assert torch.allclose(apply_inverse_crf(x, chosen), x ** (1 / gamma), atol=2e-3)
    assert torch.allclose(chosen.forward[0], grid**gamma, atol=1e-6)


def test_loader_accepts_a_smaller_set_of_curves(tmp_path: Path) -> None:
    _write_official(tmp_path, curves=3, grid=256)
    assert load_dorf(tmp_path).forward.shape == (3, 256)


def test_loader_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is not a folder"):
        load_dorf(tmp_path / "nowhere")

    missing_file = tmp_path / "only_one"
    _write_official(missing_file)
    (missing_file / "dorfCurvesInv.mat").unlink()
    with pytest.raises(InvalidInputError, match="missing file .*dorfCurvesInv.mat"):
        load_dorf(missing_file)

    missing_key = tmp_path / "no_invB"
    _write_official(missing_key, invB=None)
    with pytest.raises(InvalidInputError, match=r"lacks variable\(s\) \['invB'\]"):
        load_dorf(missing_key)

    three_dimensional = tmp_path / "cube"
    _write_official(three_dimensional, B=np.zeros((201, 1024, 2), dtype=np.float32))
    with pytest.raises(InvalidInputError, match=r"'B' must be a numeric K×G array .* got shape \(201, 1024, 2\)"):
        load_dorf(three_dimensional)

    text = tmp_path / "text"
    _write_official(text, invI="not numbers")
    with pytest.raises(InvalidInputError, match="'invI' must be a numeric K×G array"):
        load_dorf(text)

    mismatched = tmp_path / "mismatched"
    _write_official(mismatched, B=np.tile(np.linspace(0, 1, 1000, dtype=np.float32), (201, 1)))
    with pytest.raises(InvalidInputError, match="same K×G shape"):
        load_dorf(mismatched)

    swapped = tmp_path / "swapped"
    _write_official(swapped, curves=4, grid=64)
    content = {"I": np.tile(np.linspace(0, 1, 64) ** 2, (4, 1)), "B": np.tile(np.linspace(0, 1, 64), (4, 1))}
    savemat(swapped / "201_CRF_data.mat", content)
    with pytest.raises(InvalidInputError, match="uniform grid"):
        load_dorf(swapped)

    decreasing = tmp_path / "decreasing"
    _write_official(decreasing, curves=4, grid=64, B=np.tile(np.linspace(1, 0, 64), (4, 1)))
    with pytest.raises(InvalidInputError, match="non-decreasing"):
        load_dorf(decreasing)

    corrupt = tmp_path / "corrupt"
    _write_official(corrupt, curves=4, grid=64)
    (corrupt / "201_CRF_data.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_dorf(corrupt)


# -- the built-in GGCM family ---------------------------------------------------------------


def _ggcm_box() -> tuple[torch.Tensor, torch.Tensor]:
    exponent = torch.tensor([0.35, 0.35, 1.2, 1.2, 0.7, 0.45])
    end_slope = torch.tensor([0.02, 1.0, 0.02, 1.0, 0.3, 0.45])
    return exponent, end_slope


def test_ggcm_curves_are_monotone_with_fixed_endpoints() -> None:
    curves = ggcm_curves(*_ggcm_box())
    x = torch.linspace(0, 1, 4001).expand(len(curves), 4001).contiguous()
    forward, inverse = apply_crf(x, curves), apply_inverse_crf(x, curves)
    assert (forward.diff(dim=1) > 0).all()
    assert (inverse.diff(dim=1) >= -1e-6).all()
    assert torch.equal(forward[:, 0], torch.zeros(len(curves)))
    assert torch.allclose(forward[:, -1], torch.ones(len(curves)))
    assert torch.equal(inverse[:, 0], torch.zeros(len(curves))) and torch.equal(inverse[:, -1], torch.ones(len(curves)))


def test_ggcm_round_trips() -> None:
    curves = ggcm_curves(*_ggcm_box())
    assert float(_round_trip_errors(curves, "linear").max()) < 1e-3
    # Irradiance → brightness → irradiance loses precision only on flat shoulders (small s).
    x = torch.linspace(0, 1, 2049).expand(len(curves), 2049).contiguous()
    back = apply_inverse_crf(apply_crf(x, curves), curves)
    assert float((back - x).abs().max()) < 5e-3


def test_ggcm_select_keeps_the_closed_form() -> None:
    curves = ggcm_curves(*_ggcm_box())
    picked = curves.select(torch.tensor([4, 1]))
    x = torch.rand(2, 100, generator=torch.Generator().manual_seed(2))
    assert torch.equal(apply_crf(x, picked), torch.cat([apply_crf(x[:1], curves.select(torch.tensor([4]))),
                                                         apply_crf(x[1:], curves.select(torch.tensor([1])))]))
    a, s = 0.7, 0.3  # curve 4 of the box
    assert torch.allclose(apply_crf(x[:1], picked.select(torch.tensor([0]))), x[:1] ** (a + (s - a) * x[:1]))


def test_ggcm_contains_plain_gamma_and_matches_its_formula() -> None:
    gamma = 2.2
    curves = ggcm_curves(torch.tensor([1 / gamma]), torch.tensor([1 / gamma]))
    x = torch.rand(1, 1000, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(apply_crf(x, curves), x ** (1 / gamma), atol=1e-6)
    assert torch.allclose(apply_inverse_crf(x, curves), x**gamma, atol=1e-3)


def test_ggcm_rejects_non_monotone_parameters() -> None:
    with pytest.raises(InvalidInputError, match="monotone"):
        ggcm_curves(torch.tensor([0.1]), torch.tensor([GGCM_MONOTONE_FACTOR * 0.1 + 0.01]))
    with pytest.raises(InvalidInputError, match="monotone"):
        ggcm_curves(torch.tensor([0.5]), torch.tensor([0.0]))
    # Just inside the bound the curve is still increasing.
    curves = ggcm_curves(torch.tensor([0.1]), torch.tensor([GGCM_MONOTONE_FACTOR * 0.1 * 0.98]))
    assert (curves.forward.diff(dim=1) > 0).all()


def test_lookup_modes() -> None:
    table = torch.linspace(0, 1, 5).pow(2).unsqueeze(0)  # x² on a 5-point grid
    x = torch.tensor([[0.1, 0.3, 0.625]])
    assert torch.allclose(lookup_table(table, x, "nearest"), torch.tensor([[0.0, 0.0625, 0.25]]))
    assert torch.allclose(lookup_table(table, x, "linear"), torch.tensor([[0.025, 0.1, 0.40625]]))
    with pytest.raises(InvalidInputError, match="mode"):
        lookup_table(table, x, "cubic")
