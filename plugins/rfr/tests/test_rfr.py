"""RFR: conformance, episodic weights (hashed), the pseudo-clean target, noise, augmentation, crops,
tiles, options and errors."""

from __future__ import annotations

import pytest
import torch

import noiseshift_rfr
from noiseshift.api import ADAPTERS, DENOISERS, LOSSES, NOISE_MODELS, InvalidInputError, NoiseModel, NoisySample
from noiseshift.inference import tiled_denoise
from noiseshift.testing import check_adapter, state_hash, temporary_plugin
from noiseshift_rfr import RFR


def _backbone(kind: str = "dncnn") -> torch.nn.Module:
    torch.manual_seed(0)
    config = {"type": "dncnn", "depth": 4, "width": 8} if kind == "dncnn" else {"type": "unet", "width": 4, "depth": 2}
    return DENOISERS.build(config).eval()


def _noisy(size: int = 24, sigma: float = 0.1, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, size // 4, size // 4, generator=generator)
    clean = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    return (clean + sigma * torch.randn(clean.shape, generator=generator)).clamp(0, 1)


class Recording(NoiseModel):
    """Gaussian noise that remembers every clean image it was given and every noisy one it made."""

    name = "recording"

    def __init__(self, sigma: float = 0.1) -> None:
        self.sigma = sigma
        self.clean: list[torch.Tensor] = []
        self.noisy: list[torch.Tensor] = []

    def sample(self, clean: torch.Tensor, generator: torch.Generator | None) -> NoisySample:
        noisy = clean + self.sigma * torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
        self.clean.append(clean.detach().clone())
        self.noisy.append(noisy.detach().clone())
        return NoisySample(noisy=noisy, sigma=torch.full_like(clean[:, :1], self.sigma))


def _dihedral_copies(image: torch.Tensor) -> list[torch.Tensor]:
    copies = []
    for flip in (False, True):
        flipped = image.flip(-1) if flip else image
        copies.extend(torch.rot90(flipped, k, dims=(-2, -1)) for k in range(4))
    return copies


@pytest.mark.parametrize("config", [RFR.smoke_config, {"steps": 2, "crop": 16, "tile": 24, "overlap": 4},
                                    {"steps": 1, "role": "last", "loss": "l1", "augment": False}])
def test_conforms(config) -> None:
    check_adapter(RFR, config=config)


def test_registered_with_the_paper_defaults() -> None:
    assert ADAPTERS.lookup("rfr") is RFR
    adapter = ADAPTERS.build({"type": "rfr"})
    assert adapter.steps == 40 and adapter.lr == 1e-5 and adapter.trainable == ("all",)
    assert adapter.noise_spec == {"type": "gaussian", "sigma": [0.0, 50 / 255]}
    assert RFR(**adapter.config()).config() == adapter.config()
    with temporary_plugin(noiseshift_rfr, name="rfr_scope_test"):
        assert ADAPTERS.lookup("rfr_scope_test.rfr") is RFR


def test_zero_steps_is_exactly_the_backbone() -> None:
    backbone = _backbone()
    noisy = _noisy()
    with torch.no_grad():
        assert torch.equal(RFR(steps=0).wrap(backbone)(noisy), backbone(noisy))


def test_fine_tunes_on_the_pretrained_pseudo_clean_with_fresh_noise_and_is_episodic() -> None:
    backbone = _backbone()
    digest = state_hash(backbone)
    noisy = _noisy()
    noise = Recording(sigma=0.1)
    adapter = RFR(steps=4, lr=1e-2, noise=noise, augment=False)
    model = adapter.wrap(backbone)
    adapted = model(noisy)
    with torch.no_grad():
        pseudo = backbone(noisy).clamp(0, 1)
        plain = backbone(noisy)
    assert len(noise.clean) == 4
    for target in noise.clean:  # X̃ comes from the pretrained weights, computed once
        assert torch.equal(target, pseudo)
    assert not any(torch.equal(noise.noisy[0], later) for later in noise.noisy[1:])  # fresh noise every step
    assert state_hash(backbone) == digest  # episodic
    assert all(p.grad is None for p in backbone.parameters()) and not backbone.training
    assert not torch.allclose(adapted, plain)  # the weights moved during the episode
    assert torch.equal(model(noisy), adapted)  # same seed, same start


def test_input_and_target_are_flipped_and_rotated_together() -> None:
    backbone = _backbone()
    noisy = _noisy(size=16)
    noise = Recording()
    RFR(steps=12, lr=1e-4, noise=noise, augment=True).wrap(backbone)(noisy)
    with torch.no_grad():
        copies = _dihedral_copies(backbone(noisy).clamp(0, 1))
    used = set()
    for target in noise.clean:  # the noise is added to the transformed target: the pair moves together
        matches = [i for i, copy in enumerate(copies) if copy.shape == target.shape and torch.equal(copy, target)]
        assert matches, "the target is not a flip/rotation of the pseudo-clean image"
        used.add(matches[0])
    assert len(used) > 2


def test_random_crops_adapt_then_the_whole_image_is_denoised() -> None:
    backbone = _backbone("unet")  # size_multiple 4: a crop of 10 is rounded down to 8
    noisy = _noisy(size=24)
    noise = Recording()
    adapter = RFR(steps=5, lr=1e-3, noise=noise, crop=10, augment=False)
    out = adapter.wrap(backbone)(noisy)
    assert out.shape == noisy.shape
    with torch.no_grad():
        pseudo = backbone(noisy).clamp(0, 1)
    corners = set()
    for target in noise.clean:
        assert target.shape[-2:] == (8, 8)
        windows = [(top, left) for top in range(17) for left in range(17)
                   if torch.equal(pseudo[..., top:top + 8, left:left + 8], target)]
        assert windows, "a crop is not a window of the pseudo-clean image"
        corners.add(windows[0])
    assert len(corners) > 1  # a new window every step


def test_tiled_prediction_matches_tiled_inference_of_the_backbone() -> None:
    backbone = _backbone()
    noisy = _noisy(size=40)
    out = RFR(steps=0, tile=24, overlap=4).wrap(backbone)(noisy)
    assert torch.equal(out, tiled_denoise(backbone, noisy, tile=24, overlap=4))


def test_noise_option_forms() -> None:
    assert RFR(noise="gaussian").noise_spec == {"type": "gaussian"}
    assert RFR(noise={"type": "gaussian", "sigma": 25 / 255}).noise_model.sigma == (25 / 255, 25 / 255)
    if "cbdnet" in NOISE_MODELS:
        adapter = RFR(steps=1, lr=1e-5, noise={"type": "cbdnet"})
        out = adapter.wrap(_backbone())(_noisy(size=16))
        assert out.shape == (1, 3, 16, 16) and torch.isfinite(out).all()
        four_channels = DENOISERS.build({"type": "dncnn", "in_channels": 4, "out_channels": 4, "depth": 3, "width": 8})
        with pytest.raises(InvalidInputError, match="3-channel images"):
            adapter.wrap(four_channels)


def test_bad_options_and_backbones_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="parameter-free"):
        RFR().wrap(DENOISERS.build({"type": "bm3d"}))
    with pytest.raises(InvalidInputError, match="crop"):
        RFR(crop=1)
    with pytest.raises(InvalidInputError, match="2\\*overlap"):
        RFR(tile=32, overlap=16)
    with pytest.raises(InvalidInputError, match="noise must be"):
        RFR(noise=3)
    with pytest.raises(InvalidInputError, match="unknown option"):
        ADAPTERS.build({"type": "rfr", "iters": 3})
    with pytest.raises(InvalidInputError, match="no parameter role"):
        RFR(role="decoder").wrap(_backbone())
    if "zsn2n" in LOSSES:
        with pytest.raises(InvalidInputError, match="needs a pixel loss"):
            RFR(loss="zsn2n")


class SigmaAware(DENOISERS.lookup("dncnn")):
    """A DnCNN that declares the ``sigma`` condition and records the maps it is given."""

    name = "sigma_aware_dncnn"
    conditions = frozenset({"sigma"})

    def forward(self, noisy, cond=None):
        self.seen = getattr(self, "seen", []) + [None if not cond else cond.get("sigma")]
        return super().forward(noisy, cond)


def test_a_backbone_reading_sigma_gets_the_drawn_noise_level_while_adapting() -> None:
    torch.manual_seed(0)
    backbone = SigmaAware(depth=3, width=8).eval()
    noisy = _noisy(size=16)
    given = torch.full((1, 1, 16, 16), 0.3)
    RFR(steps=2, noise=Recording(sigma=0.05), augment=False).wrap(backbone)(noisy, {"sigma": given})
    # pseudo-clean with the image's own map, two steps with the drawn σ, the output with the image's map
    assert [float(s.mean()) for s in backbone.seen] == pytest.approx([0.3, 0.05, 0.05, 0.3])
