"""Gaussian and Poisson-Gaussian noise models: statistics, σ maps, reproducibility, validation."""

from __future__ import annotations

import json

import pytest
import torch

from noiseshift.errors import InvalidInputError
from noiseshift.noise import Gaussian, PoissonGaussian
from noiseshift.types import NoisySample


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- Gaussian ------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [25 / 255, 0.05])
def test_gaussian_empirical_std_matches_sigma(sigma: float) -> None:
    clean = torch.full((1, 3, 256, 256), 0.5)
    sample = Gaussian(sigma=sigma)(clean, _gen(0))
    assert isinstance(sample, NoisySample)
    residual = sample.noisy - clean
    assert abs(residual.std().item() / sigma - 1) < 0.02
    assert abs(residual.mean().item()) < 0.01 * sigma  # zero-mean; its standard error is 0.002σ
    assert sample.meta["sigma"].shape == (1,)
    assert sample.meta["sigma"].item() == pytest.approx(sigma)


def test_gaussian_sigma_map_shape_and_values() -> None:
    clean = torch.rand(2, 3, 16, 24, generator=_gen(1))
    sample = Gaussian(sigma=0.1)(clean, _gen(2))
    assert sample.sigma is not None and sample.sigma.shape == (2, 1, 16, 24)
    assert torch.allclose(sample.sigma, torch.full((2, 1, 16, 24), 0.1))
    assert sample.conditions()["sigma"] is sample.sigma


def test_gaussian_fixed_sigma_is_clean_plus_sigma_times_the_generators_normals() -> None:
    clean = torch.rand(2, 3, 8, 8, generator=_gen(3))
    sample = Gaussian(sigma=0.2)(clean, _gen(4))
    expected = clean + 0.2 * torch.randn(clean.shape, generator=_gen(4))
    assert torch.allclose(sample.noisy, expected, atol=1e-7)


def test_gaussian_range_draws_one_sigma_per_image_inside_the_range() -> None:
    low, high = 0.05, 0.2
    clean = torch.full((16, 3, 64, 64), 0.5)
    sample = Gaussian(sigma=[low, high])(clean, _gen(5))
    drawn = sample.meta["sigma"]
    assert drawn.shape == (16,)
    assert (drawn >= low).all() and (drawn <= high).all()
    assert drawn.std() > 0.02  # they vary across images (uniform on [0.05, 0.2]: std ≈ 0.043)
    empirical = (sample.noisy - clean).flatten(1).std(dim=1)
    assert torch.allclose(empirical / drawn, torch.ones(16), atol=0.04)
    assert torch.equal(sample.sigma[:, 0, 0, 0], drawn)
    assert torch.equal(sample.sigma, drawn.view(16, 1, 1, 1).expand(16, 1, 64, 64))


def test_gaussian_tuple_range_is_accepted() -> None:
    sample = Gaussian(sigma=(0.0, 0.1))(torch.zeros(4, 1, 4, 4), _gen(6))
    assert ((sample.meta["sigma"] >= 0) & (sample.meta["sigma"] <= 0.1)).all()


def test_gaussian_reproducibility() -> None:
    clean = torch.rand(3, 3, 16, 16, generator=_gen(7))
    model = Gaussian(sigma=[0.0, 0.2])
    first = model(clean, _gen(8))
    same = model(clean, _gen(8))
    other = model(clean, _gen(9))
    assert torch.equal(first.noisy, same.noisy) and torch.equal(first.sigma, same.sigma)
    assert not torch.equal(first.noisy, other.noisy)
    assert not torch.equal(first.meta["sigma"], other.meta["sigma"])


def test_gaussian_clip_is_off_by_default() -> None:
    clean = torch.rand(1, 3, 32, 32, generator=_gen(10))
    unclipped = Gaussian(sigma=0.3)(clean, _gen(11)).noisy
    clipped = Gaussian(sigma=0.3, clip=True)(clean, _gen(11))
    assert unclipped.min() < 0 and unclipped.max() > 1
    assert clipped.noisy.min() >= 0 and clipped.noisy.max() <= 1
    assert torch.equal(clipped.noisy, unclipped.clamp(0, 1))
    assert torch.allclose(clipped.sigma, torch.full_like(clipped.sigma, 0.3))  # nominal σ


def test_gaussian_keeps_dtype() -> None:
    clean = torch.rand(1, 3, 8, 8, dtype=torch.float64, generator=_gen(12))
    sample = Gaussian()(clean, _gen(13))
    assert sample.noisy.dtype == torch.float64 and sample.sigma.dtype == torch.float64


@pytest.mark.parametrize(
    "sigma", [-0.1, [0.2, 0.1], [-0.1, 0.2], [0.1], [0.1, 0.2, 0.3], "0.1", float("nan"), float("inf"), True]
)
def test_gaussian_invalid_sigma_raises(sigma: object) -> None:
    with pytest.raises(InvalidInputError):
        Gaussian(sigma=sigma)  # type: ignore[arg-type]


def test_gaussian_config_is_json_and_rebuilds() -> None:
    model = Gaussian(sigma=(0.0, 0.2), clip=True)
    config = json.loads(json.dumps(model.config()))
    assert config == {"sigma": [0.0, 0.2], "clip": True}
    clean = torch.rand(2, 3, 8, 8, generator=_gen(14))
    assert torch.equal(Gaussian(**config)(clean, _gen(15)).noisy, model(clean, _gen(15)).noisy)
    assert Gaussian().config() == {"sigma": 25 / 255, "clip": False}


# -- PoissonGaussian -----------------------------------------------------------------------

SIGMA_S, SIGMA_C = 0.1, 0.05


@pytest.mark.parametrize("mode", ["gaussian_approx", "poisson"])
@pytest.mark.parametrize("level", [0.1, 0.5, 0.9])
def test_poisson_gaussian_empirical_variance(mode: str, level: float) -> None:
    clean = torch.full((1, 3, 256, 256), level)
    sample = PoissonGaussian(sigma_s=SIGMA_S, sigma_c=SIGMA_C, mode=mode)(clean, _gen(20))
    residual = sample.noisy - clean
    expected_var = SIGMA_S**2 * level + SIGMA_C**2
    assert abs(residual.var().item() / expected_var - 1) < 0.05
    assert abs(residual.mean().item()) < 0.05 * expected_var**0.5  # unbiased; standard error 0.002σ


def test_poisson_mode_is_really_poisson() -> None:
    # Without read noise the output is a count divided by the peak 1/σ_s² = 100.
    clean = torch.full((1, 1, 128, 128), 0.05)
    noisy = PoissonGaussian(sigma_s=SIGMA_S, sigma_c=0.0, mode="poisson")(clean, _gen(21)).noisy
    counts = noisy * 100
    assert torch.allclose(counts, counts.round(), atol=1e-4)
    assert (counts >= 0).all()
    # Poisson(5) puts e^-5 ≈ 0.67 % of its mass exactly at zero.
    assert 0.003 < (counts.round() == 0).float().mean().item() < 0.012


def test_poisson_gaussian_sigma_map_is_exact() -> None:
    clean = torch.rand(2, 3, 16, 16, generator=_gen(22))
    for mode in ("gaussian_approx", "poisson"):
        sample = PoissonGaussian(sigma_s=SIGMA_S, sigma_c=SIGMA_C, mode=mode)(clean, _gen(23))
        assert sample.sigma is not None and sample.sigma.shape == clean.shape
        assert torch.allclose(sample.sigma, torch.sqrt(SIGMA_S**2 * clean + SIGMA_C**2))


def test_poisson_gaussian_ranges_and_meta() -> None:
    clean = torch.rand(8, 3, 16, 16, generator=_gen(24))
    sample = PoissonGaussian()(clean, _gen(25))
    sigma_s, sigma_c = sample.meta["sigma_s"], sample.meta["sigma_c"]
    assert sigma_s.shape == sigma_c.shape == (8,)
    assert ((sigma_s >= 0) & (sigma_s <= 0.16)).all() and sigma_s.std() > 0
    assert ((sigma_c >= 0) & (sigma_c <= 0.06)).all() and sigma_c.std() > 0
    assert torch.allclose(sample.meta["nlf"], torch.stack([sigma_s**2, sigma_c**2], dim=1))
    expected = torch.sqrt(sigma_s.view(8, 1, 1, 1) ** 2 * clean + sigma_c.view(8, 1, 1, 1) ** 2)
    assert torch.allclose(sample.sigma, expected)


@pytest.mark.parametrize("mode", ["gaussian_approx", "poisson"])
def test_poisson_gaussian_reproducibility(mode: str) -> None:
    clean = torch.rand(2, 3, 16, 16, generator=_gen(26))
    model = PoissonGaussian(mode=mode)
    first, same, other = model(clean, _gen(27)), model(clean, _gen(27)), model(clean, _gen(28))
    assert torch.equal(first.noisy, same.noisy) and torch.equal(first.sigma, same.sigma)
    assert not torch.equal(first.noisy, other.noisy)


def test_poisson_mode_without_shot_noise_is_gaussian_read_noise() -> None:
    clean = torch.full((1, 3, 128, 128), 0.3)
    sample = PoissonGaussian(sigma_s=0.0, sigma_c=0.02, mode="poisson")(clean, _gen(29))
    assert torch.isfinite(sample.noisy).all()
    assert abs((sample.noisy - clean).std().item() / 0.02 - 1) < 0.03
    assert torch.allclose(sample.sigma, torch.full_like(clean, 0.02))


def test_poisson_gaussian_negative_clean_values_do_not_give_nan() -> None:
    clean = torch.full((1, 1, 8, 8), -0.01)
    for mode in ("gaussian_approx", "poisson"):
        sample = PoissonGaussian(sigma_s=0.1, sigma_c=0.01, mode=mode)(clean, _gen(30))
        assert torch.isfinite(sample.noisy).all() and torch.isfinite(sample.sigma).all()


def test_poisson_gaussian_clip() -> None:
    clean = torch.full((1, 3, 32, 32), 0.95)
    sample = PoissonGaussian(sigma_s=0.1, sigma_c=0.05, clip=True)(clean, _gen(31))
    assert sample.noisy.max() <= 1 and sample.noisy.min() >= 0


@pytest.mark.parametrize(
    "kwargs",
    [{"mode": "exact"}, {"sigma_s": -0.1}, {"sigma_c": [0.1, 0.0]}, {"sigma_s": [0.1]}, {"sigma_c": "x"}],
)
def test_poisson_gaussian_invalid_options_raise(kwargs: dict) -> None:
    with pytest.raises(InvalidInputError):
        PoissonGaussian(**kwargs)


def test_poisson_gaussian_config() -> None:
    config = json.loads(json.dumps(PoissonGaussian().config()))
    assert config == {"sigma_s": [0.0, 0.16], "sigma_c": [0.0, 0.06], "mode": "gaussian_approx", "clip": False}
    assert PoissonGaussian(**config).config() == config
