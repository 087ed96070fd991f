"""Unprocessing: the raw noise model (statistics, level prior) and unprocess/process."""

from __future__ import annotations

import math

import pytest
import torch

from noiseshift.api import NOISE_MODELS, InvalidInputError
from noiseshift.testing import check_noise_model
from noiseshift_cbdnet_noise import UnprocessNoise, process, random_metadata, unprocess
from noiseshift_cbdnet_noise.unprocessing import inverse_smoothstep, smoothstep


def _seed(value: int) -> torch.Generator:
    return torch.Generator().manual_seed(value)


def _natural(size: int = 64) -> torch.Tensor:
    """A smooth, correlated-colour test image with values in [0.05, 0.8] (no highlights)."""
    ys = torch.linspace(0, 1, size).view(1, 1, size, 1)
    xs = torch.linspace(0, 1, size).view(1, 1, 1, size)
    luminance = 0.4 + 0.3 * torch.sin(5 * xs) * torch.cos(3 * ys)
    tint = torch.tensor([1.0, 0.9, 0.75]).view(1, 3, 1, 1)
    return (luminance * tint + 0.05).clamp(0, 1)


# -- the noise model ---------------------------------------------------------------------------


def test_conforms() -> None:
    model = check_noise_model(UnprocessNoise)
    assert model.domain == "raw" and model.in_channels == 4
    check_noise_model(UnprocessNoise, config={"shot_noise": 0.01, "read_noise": [1e-5, 1e-3], "clip": True})


def test_registered() -> None:
    assert NOISE_MODELS.lookup("unprocess") is UnprocessNoise


def test_empirical_variance_matches_shot_times_signal_plus_read() -> None:
    shot, read = 0.01, 4e-4
    model = UnprocessNoise(shot_noise=shot, read_noise=read)
    levels = torch.tensor([0.05, 0.2, 0.5, 0.9])
    clean = levels.view(1, 4, 1, 1).expand(1, 4, 128, 128).contiguous()
    sample = model(clean, _seed(0))
    residual = (sample.noisy - clean)[0].flatten(1)
    for channel, level in enumerate(levels.tolist()):
        expected = shot * level + read
        assert abs(float(residual[channel].var()) / expected - 1) < 0.04
        assert abs(float(residual[channel].mean())) < 4 * math.sqrt(expected / residual.shape[1])
    assert torch.allclose(sample.sigma[0, :, 0, 0], torch.sqrt(shot * levels + read))
    assert torch.allclose(sample.meta["nlf"], torch.tensor([[shot, read]]))


def test_level_prior_is_the_papers_log_linear_relation() -> None:
    model = UnprocessNoise()
    shot, read = model.draw_noise_levels(20000, _seed(1), torch.device("cpu"))
    log_shot, log_read = shot.log().double(), read.log().double()
    assert float(shot.min()) >= 1e-4 and float(shot.max()) <= 0.012
    # log shot uniform: its quartiles split [log 1e-4, log 0.012] evenly.
    low, high = math.log(1e-4), math.log(0.012)
    quartiles = torch.quantile(log_shot, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    expected = torch.tensor([low + q * (high - low) for q in (0.25, 0.5, 0.75)], dtype=torch.float64)
    assert torch.allclose(quartiles, expected, atol=0.08)
    # Least squares of log read on log shot recovers slope 2.18, intercept 1.20, scatter 0.26.
    design = torch.stack([log_shot, torch.ones_like(log_shot)], dim=1)
    solution = torch.linalg.lstsq(design, log_read.unsqueeze(1)).solution.squeeze(1)
    scatter = (log_read - design @ solution).std()
    assert abs(float(solution[0]) - 2.18) < 0.02 and abs(float(solution[1]) - 1.20) < 0.1
    assert abs(float(scatter) - 0.26) < 0.01


def test_same_seed_same_noise_and_levels_per_image() -> None:
    clean = torch.rand(3, 4, 16, 16, generator=_seed(2))
    model = UnprocessNoise()
    first, again = model(clean, _seed(3)), model(clean, _seed(3))
    assert torch.equal(first.noisy, again.noisy) and torch.equal(first.meta["read_noise"], again.meta["read_noise"])
    assert first.meta["shot_noise"].unique().numel() == 3


def test_bad_options_and_input() -> None:
    for options, message in [
        ({"shot_noise": 0.0}, "shot_noise must be > 0"),
        ({"read_noise": [1e-3, 1e-4]}, "low > high"),
        ({"read_log_std": -1.0}, "read_log_std"),
        ({"read_slope": "steep"}, "read_slope"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            UnprocessNoise(**options)
    with pytest.raises(InvalidInputError, match="4 channels"):
        UnprocessNoise()(torch.rand(1, 3, 8, 8))


# -- unprocess / process --------------------------------------------------------------------


def test_unprocess_shapes_ranges_and_metadata() -> None:
    srgb = torch.rand(5, 3, 32, 48, generator=_seed(4))
    raw, metadata = unprocess(srgb, _seed(5))
    assert raw.shape == (5, 4, 16, 24) and raw.dtype == torch.float32
    assert float(raw.min()) >= 0 and float(raw.max()) <= 1
    rgb2cam, cam2rgb = metadata["rgb2cam"], metadata["cam2rgb"]
    assert torch.allclose(rgb2cam.sum(dim=2), torch.ones(5, 3), atol=1e-5)
    assert torch.allclose(rgb2cam @ cam2rgb, torch.eye(3).expand(5, 3, 3), atol=1e-4)
    assert ((metadata["red_gain"] >= 1.9) & (metadata["red_gain"] <= 2.4)).all()
    assert ((metadata["blue_gain"] >= 1.5) & (metadata["blue_gain"] <= 1.9)).all()
    assert (metadata["rgb_gain"] > 0).all()
    again, _ = unprocess(srgb, _seed(5))
    assert torch.equal(raw, again)


def test_unprocess_layout_with_neutral_metadata() -> None:
    # Identity colour matrix and unit gains leave only the tone and gamma inversion, so each
    # packed plane must be the right channel at the right RGGB site.
    srgb = torch.rand(1, 3, 8, 10, generator=_seed(6)) * 0.8
    eye = torch.eye(3).unsqueeze(0)
    ones = torch.ones(1)
    neutral = {"rgb2cam": eye, "cam2rgb": eye, "rgb_gain": ones, "red_gain": ones, "blue_gain": ones}
    raw, _ = unprocess(srgb, metadata=neutral)
    linear = inverse_smoothstep(srgb).clamp(min=1e-8) ** 2.2
    assert torch.allclose(raw[:, 0], linear[:, 0, 0::2, 0::2], atol=1e-6)
    assert torch.allclose(raw[:, 1], linear[:, 1, 0::2, 1::2], atol=1e-6)
    assert torch.allclose(raw[:, 2], linear[:, 1, 1::2, 0::2], atol=1e-6)
    assert torch.allclose(raw[:, 3], linear[:, 2, 1::2, 1::2], atol=1e-6)


def test_smoothstep_pair_inverts() -> None:
    x = torch.linspace(0, 1, 1001)
    assert torch.allclose(smoothstep(inverse_smoothstep(x)), x, atol=1e-5)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(float((a - b)[..., 2:-2, 2:-2].pow(2).mean()))


def test_process_inverts_unprocess_away_from_highlights() -> None:
    srgb = _natural().expand(3, 3, 64, 64).contiguous()
    raw, metadata = unprocess(srgb, _seed(7))
    assert _psnr(process(raw, metadata), srgb) > 50.0
    # The reference's process() keeps the darker, untoned rendering.
    reference_style = process(raw, metadata, brighten=False, tone_map=False, demosaic_method="bilinear")
    assert float(reference_style.mean()) < float(srgb.mean())


def test_process_of_noisy_raw_is_noisier() -> None:
    srgb = _natural()
    raw, metadata = unprocess(srgb, _seed(8))
    noisy = UnprocessNoise(shot_noise=0.005)(raw, _seed(9)).noisy
    assert _psnr(process(noisy, metadata), srgb) < _psnr(process(raw, metadata), srgb) - 5


def test_random_metadata_is_reproducible_and_varied() -> None:
    first, second = random_metadata(4, _seed(10)), random_metadata(4, _seed(10))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert first["red_gain"].unique().numel() == 4


def test_unprocess_and_process_reject_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="even"):
        unprocess(torch.rand(1, 3, 7, 8))
    with pytest.raises(InvalidInputError, match="N×3×H×W"):
        unprocess(torch.rand(1, 4, 8, 8))
    raw, metadata = unprocess(torch.rand(2, 3, 8, 8), _seed(11))
    with pytest.raises(InvalidInputError, match="missing"):
        process(raw, {"cam2rgb": metadata["cam2rgb"]})
    with pytest.raises(InvalidInputError, match="'red_gain' must be a tensor of shape"):
        process(raw, {**metadata, "red_gain": torch.ones(3)})
    with pytest.raises(InvalidInputError, match="packed RGGB"):
        process(torch.rand(2, 3, 4, 4), metadata)
    with pytest.raises(InvalidInputError, match="demosaic_method"):
        process(raw, metadata, demosaic_method="vng")
