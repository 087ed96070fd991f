"""BM3D and non-local means as parameter-free Denoisers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from noiseshift.errors import InvalidInputError
from noiseshift.models import BM3D, NLMeans

SIGMA = 25 / 255


def _psnr(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB for images in [0, 1], computed in float64 NumPy."""
    error = estimate.detach().cpu().double().numpy() - reference.detach().cpu().double().numpy()
    return float(10 * np.log10(1.0 / np.mean(error**2)))


def _astronaut(top: int, left: int, size: int) -> torch.Tensor:
    """A ``1×3×size×size`` crop of skimage's astronaut in [0, 1]."""
    crop = data.astronaut()[top : top + size, left : left + size].astype(np.float32) / 255
    return torch.from_numpy(crop).permute(2, 0, 1).unsqueeze(0).contiguous()


def _noisy(clean: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return clean + sigma * torch.randn(clean.shape, generator=generator)


@pytest.fixture(scope="module")
def colour() -> tuple[torch.Tensor, torch.Tensor]:
    """Two different 64×64 crops and their noisy versions (σ = 25/255, seeded)."""
    clean = torch.cat([_astronaut(100, 200, 64), _astronaut(300, 300, 64)])
    return clean, _noisy(clean, SIGMA, seed=0)


@pytest.fixture(scope="module")
def gray() -> tuple[torch.Tensor, torch.Tensor]:
    """A 32×32 grayscale crop (BM3D on one channel is 3× cheaper) and its noisy version."""
    clean = _astronaut(150, 150, 32).mean(dim=1, keepdim=True)
    return clean, _noisy(clean, SIGMA, seed=1)


def test_bm3d_improves_psnr_by_more_than_4_db_on_each_image_of_a_batch(
    colour: tuple[torch.Tensor, torch.Tensor],
) -> None:
    clean, noisy = colour
    out = BM3D(sigma=SIGMA)(noisy)
    assert out.shape == noisy.shape and out.dtype == torch.float32
    for index in range(2):
        assert _psnr(out[index], clean[index]) - _psnr(noisy[index], clean[index]) > 4.0


@pytest.mark.parametrize("sigma", [SIGMA, None], ids=["known_sigma", "estimated_sigma"])
def test_nlmeans_improves_psnr_by_more_than_2_db(
    colour: tuple[torch.Tensor, torch.Tensor], sigma: float | None
) -> None:
    clean, noisy = colour
    out = NLMeans(sigma=sigma)(noisy)
    assert out.shape == noisy.shape and out.dtype == torch.float32
    for index in range(2):
        assert _psnr(out[index], clean[index]) - _psnr(noisy[index], clean[index]) > 2.0


@pytest.mark.parametrize("cls,gain", [(BM3D, 4.0), (NLMeans, 2.0)])
def test_grayscale(cls: type, gain: float) -> None:
    clean = _astronaut(100, 200, 64).mean(dim=1, keepdim=True)
    noisy = _noisy(clean, SIGMA, seed=2)
    model = cls(channels=1, sigma=SIGMA)
    assert model.in_channels == model.out_channels == 1
    out = model(noisy)
    assert out.shape == (1, 1, 64, 64)
    assert _psnr(out, clean) - _psnr(noisy, clean) > gain


# BM3D runs on grayscale here: the σ plumbing is shared, and colour BM3D costs ~1 s a call.
@pytest.mark.parametrize("cls,channels", [(BM3D, 1), (NLMeans, 1), (NLMeans, 3)])
def test_explicit_sigma_and_cond_sigma_agree(
    cls: type, channels: int, gray: tuple[torch.Tensor, torch.Tensor]
) -> None:
    noisy = gray[1].expand(1, channels, 32, 32).contiguous()
    explicit = cls(channels=channels, sigma=SIGMA)(noisy)
    # Same input, same σ through cond: bit-identical (this is also a determinism check).
    from_float = cls(channels=channels)(noisy, {"sigma": SIGMA})
    from_map = cls(channels=channels)(noisy, {"sigma": torch.full((1, 1, 32, 32), SIGMA)})
    assert torch.equal(explicit, from_float)
    assert torch.allclose(explicit, from_map, atol=1e-5)
    # The constructor's sigma wins over cond; a very different level would change the output.
    assert torch.equal(cls(channels=channels, sigma=SIGMA)(noisy, {"sigma": 0.5}), explicit)
    assert not torch.allclose(cls(channels=channels)(noisy, {"sigma": 0.5}), explicit, atol=1e-3)


@pytest.mark.parametrize("cls,channels", [(BM3D, 1), (NLMeans, 3)])
def test_batch_of_two_uses_per_image_sigma(cls: type, channels: int) -> None:
    clean = torch.cat([_astronaut(150, 150, 32), _astronaut(20, 300, 32)])[:, :channels]
    sigmas = [SIGMA, 10 / 255]
    noisy = torch.cat([_noisy(clean[i : i + 1], sigmas[i], seed=3 + i) for i in range(2)])
    model = cls(channels=channels)
    batched = model(noisy, {"sigma": torch.tensor(sigmas)})
    assert batched.shape == (2, channels, 32, 32)
    for index, sigma in enumerate(sigmas):
        single = model(noisy[index : index + 1], {"sigma": sigma})
        assert torch.allclose(batched[index : index + 1], single, atol=1e-6)
    # The second image was not denoised with the first image's level.
    wrong = model(noisy[1:], {"sigma": SIGMA})
    assert not torch.allclose(batched[1:], wrong, atol=1e-3)


@pytest.mark.parametrize("model", [BM3D(), BM3D(channels=1, profile="refilter"), NLMeans(channels=1)])
def test_no_parameters(model: torch.nn.Module) -> None:
    assert list(model.parameters()) == []
    assert model.trainable is False
    assert "sigma" in model.conditions
    groups = model.parameter_groups()
    assert {role: groups[role] for role in ("first", "last", "domain", "all")} == {
        "first": [], "last": [], "domain": [], "all": [],
    }


def test_bm3d_refilter_profile_works_and_denoises(gray: tuple[torch.Tensor, torch.Tensor]) -> None:
    # With a scalar σ the bm3d package's own refilter path fails on this installation.
    clean, noisy = gray
    out = BM3D(channels=1, sigma=SIGMA, profile="refilter")(noisy)
    assert torch.isfinite(out).all()
    assert _psnr(out, clean) - _psnr(noisy, clean) > 3.0


def test_bm3d_handles_an_exactly_gray_rgb_image() -> None:
    # Constant opponent chrominance: bm3d_rgb alone would divide by a zero range (NaN).
    clean = _astronaut(100, 200, 16).mean(dim=1, keepdim=True).expand(1, 3, 16, 16).contiguous()
    out = BM3D(sigma=0.02)(clean)
    assert torch.isfinite(out).all()
    assert (out - clean).abs().max() < 0.1


def test_output_follows_input_dtype_and_values_are_not_clipped() -> None:
    noisy = _noisy(_astronaut(150, 150, 32), 0.3, seed=5).double()
    assert noisy.min() < 0 and noisy.max() > 1
    out = NLMeans(sigma=0.3, h_factor=0.1)(noisy)
    assert out.dtype == torch.float64
    assert out.min() < 0 and out.max() > 1


def test_negligible_sigma_returns_the_input_unchanged() -> None:
    image = _astronaut(150, 150, 32)
    assert torch.equal(NLMeans(sigma=0.0)(image), image)
    assert torch.equal(BM3D()(image, {"sigma": 1e-9}), image)


@pytest.mark.parametrize(
    "build",
    [
        lambda: BM3D(channels=2),
        lambda: BM3D(sigma=-0.1),
        lambda: BM3D(profile="vn_old"),
        lambda: NLMeans(channels=4),
        lambda: NLMeans(sigma=float("nan")),
        lambda: NLMeans(h_factor=0.0),
    ],
)
def test_invalid_options_raise(build) -> None:
    with pytest.raises(InvalidInputError):
        build()


def test_invalid_inputs_raise() -> None:
    with pytest.raises(InvalidInputError, match="input channels"):
        NLMeans()(torch.rand(1, 1, 16, 16))
    with pytest.raises(InvalidInputError, match="cond"):
        NLMeans()(torch.rand(2, 3, 16, 16), {"sigma": torch.full((3, 1, 16, 16), 0.1)})
    with pytest.raises(InvalidInputError, match=">= 0"):
        NLMeans()(torch.rand(1, 3, 16, 16), {"sigma": -0.1})
    with pytest.raises(InvalidInputError, match="6×6"):
        BM3D(sigma=0.1)(torch.rand(1, 3, 6, 6))
