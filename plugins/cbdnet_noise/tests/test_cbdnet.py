"""CBDNet noise model: conformance, noise statistics, σ map, options, reproducibility."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import noiseshift_cbdnet_noise
from noiseshift.api import NOISE_MODELS, InvalidInputError
from noiseshift.testing import check_noise_model, temporary_plugin
from noiseshift_cbdnet_noise import CBDNetNoise
from noiseshift_cbdnet_noise.crf import apply_inverse_crf, ggcm_curves, load_dorf

REAL_CRF_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "crf"
needs_real_crfs = pytest.mark.skipif(
    not (REAL_CRF_DIR / "201_CRF_data.mat").is_file() or not (REAL_CRF_DIR / "dorfCurvesInv.mat").is_file(),
    reason=f"the DoRF curves (201_CRF_data.mat, dorfCurvesInv.mat) are not in {REAL_CRF_DIR}",
)

LEVELS = (0.15, 0.3, 0.5, 0.7)


def _bands(height_per_level: int = 48, width: int = 256) -> torch.Tensor:
    """``1×3×(4·h)×W``: horizontal bands of constant grey levels ``LEVELS``."""
    rows = torch.tensor(LEVELS).repeat_interleave(height_per_level)
    return rows.view(1, 1, -1, 1).expand(1, 3, -1, width).contiguous()


def _seed(value: int) -> torch.Generator:
    return torch.Generator().manual_seed(value)


# -- conformance and registration ----------------------------------------------------------


def test_conforms_with_defaults() -> None:
    check_noise_model(CBDNetNoise)


def test_conforms_with_jpeg_per_channel_levels_and_mixed_patterns() -> None:
    check_noise_model(
        CBDNetNoise,
        config={"jpeg_quality": [60, 100], "jpeg_prob": 0.5, "per_channel": True, "patterns": ["gbrg", "none"],
                "std_form": "matlab_linear", "sample_space": "log_uniform", "sigma_map": "author_sum"},
    )


@needs_real_crfs
def test_conforms_with_the_real_dorf_curves() -> None:
    model = check_noise_model(CBDNetNoise, config={"crf_dir": str(REAL_CRF_DIR), "crf_lookup": "nearest"})
    assert model.crf == "dorf"


def test_registered_under_its_names() -> None:
    assert NOISE_MODELS.lookup("cbdnet") is CBDNetNoise
    with temporary_plugin(noiseshift_cbdnet_noise, name="cbdnet_noise_under_test"):
        assert NOISE_MODELS.lookup("cbdnet_noise_under_test.cbdnet") is CBDNetNoise
    built = NOISE_MODELS.build({"type": "cbdnet", "sigma_s": 0.05, "jpeg_quality": 80})
    assert isinstance(built, CBDNetNoise) and built.config()["jpeg_quality"] == 80


# -- noise statistics ------------------------------------------------------------------------


@pytest.mark.parametrize("std_form", ["paper", "matlab_linear"])
def test_empirical_variance_matches_the_noise_law(std_form: str) -> None:
    sigma_s, sigma_c = 0.08, 0.02
    model = CBDNetNoise(sigma_s=sigma_s, sigma_c=sigma_c, std_form=std_form, crf="linear", patterns=["none"])
    clean = _bands()
    sample = model(clean, _seed(0))
    residual = (sample.noisy - clean).view(3, len(LEVELS), -1, clean.shape[-1])
    for band, level in enumerate(LEVELS):
        signal = level if std_form == "paper" else level**2
        expected = sigma_s**2 * signal + sigma_c**2
        values = residual[:, band]
        # 3·48·256 ≈ 37k samples: the variance's relative standard error is ≈ 0.7 %.
        assert abs(float(values.var()) / expected - 1) < 0.04, (level, float(values.var()), expected)
        assert abs(float(values.mean())) < 4 * math.sqrt(expected / values.numel())
    band_sigma = sample.sigma.view(3, len(LEVELS), -1, clean.shape[-1])
    for band, level in enumerate(LEVELS):
        signal = level if std_form == "paper" else level**2
        assert torch.allclose(band_sigma[:, band], torch.tensor(math.sqrt(sigma_s**2 * signal + sigma_c**2)))


def test_noise_is_added_in_the_irradiance_domain() -> None:
    # With a non-linear camera response, undoing the response on the output must give back
    # irradiance-domain noise with the paper's variance (so the CRF sits after the noise).
    sigma_s, sigma_c = 0.06, 0.01
    model = CBDNetNoise(sigma_s=sigma_s, sigma_c=sigma_c, crf_exponent=0.6, crf_end_slope=0.3, patterns=["none"])
    clean = _bands(height_per_level=32)
    sample = model(clean, _seed(1))
    curves = ggcm_curves(sample.meta["crf_exponent"], sample.meta["crf_end_slope"])
    irradiance = apply_inverse_crf(clean, curves)
    noisy_irradiance = apply_inverse_crf(sample.noisy, curves)
    residual = (noisy_irradiance - irradiance).view(3, len(LEVELS), -1, clean.shape[-1])
    levels = irradiance.view(3, len(LEVELS), -1, clean.shape[-1])[0, :, 0, 0]
    checked = 0
    for band, level in enumerate(levels.tolist()):
        expected = sigma_s**2 * level + sigma_c**2
        if level < 4 * math.sqrt(expected):
            continue  # clipping at 0 would shrink the variance of the darkest band
        checked += 1
        measured = float(residual[:, band].var())
        assert abs(measured / expected - 1) < 0.06, (level, measured, expected)
    assert checked >= 3
    # The σ map is the irradiance-domain std at the clean irradiance.
    assert torch.allclose(sample.sigma, torch.sqrt(sigma_s**2 * irradiance + sigma_c**2), atol=1e-6)


def test_demosaicing_correlates_the_noise_as_its_filters_predict() -> None:
    # A constant grey image with i.i.d. noise of std σ in the mosaic: at red/blue sites the
    # green channel is the Malvar green filter applied to noise (weights 4, 2×4, −1×4 in eighths,
    # energy 36/64), at green sites the noise itself. Mean variance: σ²·(1/2 + 1/2·36/64).
    sigma_c = 0.03
    model = CBDNetNoise(sigma_s=0.0, sigma_c=sigma_c, crf="linear", patterns=["rggb"])
    clean = torch.full((2, 3, 96, 96), 0.5)
    residual = (model(clean, _seed(2)).noisy - clean)[:, 1, 2:-2, 2:-2]
    expected = sigma_c**2 * (0.5 + 0.5 * 36 / 64)
    assert abs(float(residual.var()) / expected - 1) < 0.05


def test_sigma_map_has_the_image_shape_and_a_plausible_range() -> None:
    clean = torch.rand(3, 3, 40, 52, generator=_seed(3))
    for form, bound in (("paper", math.hypot(0.16, 0.06)), ("matlab_linear", math.hypot(0.16, 0.06))):
        sample = CBDNetNoise(std_form=form)(clean, _seed(4))
        assert sample.sigma.shape == clean.shape and sample.sigma.dtype == clean.dtype
        assert float(sample.sigma.min()) >= 0 and float(sample.sigma.max()) <= bound + 1e-6
        assert sample.noisy.min() >= 0 and sample.noisy.max() <= 1
        sigma_c = sample.meta["sigma_c"].view(-1, 1, 1, 1)
        assert (sample.sigma >= sigma_c - 1e-7).all()


def test_author_sum_sigma_map() -> None:
    clean = _bands(height_per_level=4, width=8)
    model = CBDNetNoise(sigma_s=0.1, sigma_c=0.02, crf="linear", sigma_map="author_sum")
    sample = model(clean, _seed(5))
    assert torch.allclose(sample.sigma, 0.1 * clean.sqrt() + 0.02)
    linear = CBDNetNoise(sigma_s=0.1, sigma_c=0.02, crf="linear", sigma_map="author_sum", std_form="matlab_linear")
    assert torch.allclose(linear(clean, _seed(5)).sigma, 0.1 * clean + 0.02)


def test_per_channel_levels() -> None:
    model = CBDNetNoise(per_channel=True, crf="linear", patterns=["none"], sigma_c=0.0)
    clean = torch.full((2, 3, 64, 64), 0.5)
    sample = model(clean, _seed(6))
    assert sample.meta["sigma_s"].shape == (2, 3)
    expected = sample.meta["sigma_s"] * math.sqrt(0.5)
    assert torch.allclose(sample.sigma[:, :, 0, 0], expected)
    measured = (sample.noisy - clean).std(dim=(2, 3))
    assert torch.allclose(measured, expected, rtol=0.06, atol=1e-3)


@pytest.mark.parametrize("space", ["uniform", "log_uniform"])
def test_level_sampling_spaces(space: str) -> None:
    model = CBDNetNoise(sample_space=space, crf="linear", patterns=["none"])
    sample = model(torch.full((4000, 3, 3, 3), 0.5), _seed(7))
    sigma_s = sample.meta["sigma_s"]
    low, high = model.sigma_s
    assert float(sigma_s.min()) >= low and float(sigma_s.max()) <= high
    # The quartiles of the drawn values must be those of the chosen distribution.
    if space == "uniform":
        expected = [low + q * (high - low) for q in (0.25, 0.5, 0.75)]
    else:
        expected = [math.exp(math.log(low) + q * (math.log(high) - math.log(low))) for q in (0.25, 0.5, 0.75)]
    measured = torch.quantile(sigma_s, torch.tensor([0.25, 0.5, 0.75])).tolist()
    for m, e in zip(measured, expected):
        assert abs(m - e) < 0.05 * (high - low) if space == "uniform" else abs(math.log(m / e)) < 0.15
    assert model.sigma_c == ((0.0, 0.06) if space == "uniform" else (1e-4, 0.06))


def test_patterns_and_crfs_are_drawn_per_image() -> None:
    model = CBDNetNoise(patterns=["rggb", "bggr", "none"])
    sample = model(torch.rand(60, 3, 8, 8, generator=_seed(8)), _seed(9))
    assert set(sample.meta["pattern"]) == {"rggb", "bggr", "none"}
    exponent = sample.meta["crf_exponent"]
    assert exponent.shape == (60,) and exponent.unique().numel() == 60
    assert float(exponent.min()) >= 0.35 and float(exponent.max()) <= 1.2


@needs_real_crfs
def test_dorf_curve_index_is_drawn_or_fixed() -> None:
    clean = torch.rand(50, 3, 8, 8, generator=_seed(10))
    drawn = CBDNetNoise(crf_dir=str(REAL_CRF_DIR))(clean, _seed(11)).meta["crf_index"]
    assert drawn.min() >= 0 and drawn.max() <= 200 and drawn.unique().numel() > 30
    fixed = CBDNetNoise(crf_dir=str(REAL_CRF_DIR), crf_index=159, sigma_s=0.0, sigma_c=0.0, patterns=["none"])
    sample = fixed(clean, _seed(12))
    assert (sample.meta["crf_index"] == 159).all()
    # Without noise and mosaic the output is f(f⁻¹(x)): the documented round trip of curve 159.
    assert float((sample.noisy - clean).abs().max()) < 0.126
    curves = load_dorf(REAL_CRF_DIR)
    assert torch.allclose(sample.sigma, torch.zeros_like(clean)) and len(curves) == 201


# -- JPEG -----------------------------------------------------------------------------------


def test_jpeg_quantises_and_records_the_quality() -> None:
    clean = torch.rand(4, 3, 32, 32, generator=_seed(13))
    model = CBDNetNoise(jpeg_quality=[60, 100])
    sample = model(clean, _seed(14))
    quality = sample.meta["jpeg_quality"]
    assert quality.dtype == torch.int64 and ((quality >= 60) & (quality <= 100)).all()
    levels = sample.noisy * 255
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    plain = CBDNetNoise()(clean, _seed(14)).noisy
    assert not torch.allclose(levels, (plain * 255).round(), atol=0.5)  # JPEG changed the image


def test_jpeg_probability() -> None:
    model = CBDNetNoise(jpeg_quality=90, jpeg_prob=0.5)
    sample = model(torch.rand(64, 3, 8, 8, generator=_seed(15)), _seed(16))
    compressed = int((sample.meta["jpeg_quality"] == 90).sum())
    assert 16 < compressed < 48 and int((sample.meta["jpeg_quality"] == 0).sum()) == 64 - compressed
    never = CBDNetNoise(jpeg_quality=90, jpeg_prob=0.0)(torch.rand(2, 3, 8, 8), _seed(0))
    assert (never.meta["jpeg_quality"] == 0).all()


# -- reproducibility and options ---------------------------------------------------------------


def test_same_seed_same_image_and_fixed_options_do_not_shift_the_stream() -> None:
    clean = torch.rand(2, 3, 24, 24, generator=_seed(17))
    model = CBDNetNoise(jpeg_quality=[70, 90])
    first, second = model(clean, _seed(18)), model(clean, _seed(18))
    assert torch.equal(first.noisy, second.noisy) and torch.equal(first.sigma, second.sigma)
    assert first.meta["pattern"] == second.meta["pattern"]
    assert not torch.equal(first.noisy, model(clean, _seed(19)).noisy)
    # Fixed options draw nothing: the noise field is the same whatever was fixed or drawn.
    fixed = CBDNetNoise(sigma_s=0.05, sigma_c=0.01, crf="linear", patterns=["none"])
    also_fixed = CBDNetNoise(sigma_s=0.05, sigma_c=0.01, crf="linear", patterns=["none"], std_form="matlab_linear")
    grey = torch.full((1, 3, 16, 16), 1.0)  # L = L², so both forms have the same std here
    assert torch.equal(fixed(grey, _seed(20)).noisy, also_fixed(grey, _seed(20)).noisy)


def test_config_round_trip() -> None:
    model = CBDNetNoise(sigma_s=[0.01, 0.1], jpeg_quality=[60, 100], patterns=["rggb", "none"], per_channel=True)
    rebuilt = CBDNetNoise(**model.config())
    assert rebuilt.config() == model.config()
    clean = torch.rand(2, 3, 16, 16, generator=_seed(21))
    assert torch.equal(model(clean, _seed(22)).noisy, rebuilt(clean, _seed(22)).noisy)


def test_bad_options_raise_specific_errors(tmp_path: Path) -> None:
    cases = [
        ({"std_form": "sqrt"}, "std_form"),
        ({"sample_space": "normal"}, "sample_space"),
        ({"sigma_s": -0.1}, "sigma_s"),
        ({"sigma_c": [0.05, 0.01]}, "low > high"),
        ({"sample_space": "log_uniform", "sigma_s": [0.0, 0.1]}, "sigma_s must be > 0"),
        ({"patterns": ["rgbg"]}, "patterns"),
        ({"patterns": []}, "patterns"),
        ({"jpeg_quality": 101}, "jpeg_quality"),
        ({"jpeg_quality": 75.5}, "jpeg_quality"),
        ({"jpeg_prob": 1.5}, "jpeg_prob"),
        ({"crf": "dorf"}, "needs crf_dir"),
        ({"crf": "linear", "crf_dir": str(tmp_path)}, "only used with crf='dorf'"),
        ({"crf_index": 3}, "crf_index is only used"),
        ({"crf_dir": str(tmp_path)}, "missing file"),
        ({"crf_exponent": 0.1, "crf_end_slope": 1.0}, "non-monotone"),
        ({"demosaic": "vng"}, "demosaic"),
        ({"sigma_map": "variance"}, "sigma_map"),
        ({"crf_lookup": "cubic"}, "crf_lookup"),
    ]
    for options, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            CBDNetNoise(**options)


def test_bad_images_raise() -> None:
    model = CBDNetNoise()
    with pytest.raises(InvalidInputError, match="3 channels"):
        model(torch.rand(1, 4, 8, 8))
    with pytest.raises(InvalidInputError, match="at least 3×3"):
        model(torch.rand(1, 3, 2, 8), _seed(0))
