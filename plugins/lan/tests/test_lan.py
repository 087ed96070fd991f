"""LAN and its baselines: conformance, episodic weights (hashed), what trains, gradients, outputs."""

from __future__ import annotations

import pytest
import torch

import noiseshift_lan
from noiseshift.api import ADAPTERS, DENOISERS, InvalidInputError, psnr
from noiseshift.inference import denoise
from noiseshift.testing import check_adapter, state_hash, temporary_plugin
from noiseshift_lan import LAN, TTFirst, TTFull, TTLast

ADAPTER_CLASSES = [LAN, TTFull, TTFirst, TTLast]


def _backbone(kind: str = "dncnn") -> torch.nn.Module:
    torch.manual_seed(0)
    config = {"type": "dncnn", "depth": 4, "width": 8} if kind == "dncnn" else {"type": "unet", "width": 4, "depth": 2}
    return DENOISERS.build(config).eval()


def _noisy(size: int = 24, sigma: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, size // 4, size // 4, generator=generator)
    clean = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    return (clean + sigma * torch.randn(clean.shape, generator=generator)).clamp(0, 1), clean


@pytest.mark.parametrize("loss", ["zsn2n", "nbr2nbr"])
@pytest.mark.parametrize("cls", ADAPTER_CLASSES, ids=lambda c: c.name)
def test_conforms(cls, loss: str) -> None:
    check_adapter(cls, config={**cls.smoke_config, "loss": loss})


def test_registered_with_the_paper_defaults() -> None:
    assert [ADAPTERS.lookup(n) for n in ("lan", "tt_full", "tt_first", "tt_last")] == ADAPTER_CLASSES
    lan = ADAPTERS.build({"type": "lan"})
    assert lan.config() == {"steps": 20, "lr": 5e-4, "seed": 0, "loss": "zsn2n"}
    assert lan.trainable == () and lan.per_image
    assert ADAPTERS.build({"type": "tt_full"}).lr == 5e-6
    assert (TTFull.trainable, TTFirst.trainable, TTLast.trainable) == (("all",), ("first",), ("last",))
    rebuilt = LAN(**LAN(steps=3, loss="nbr2nbr").config())
    assert rebuilt.config() == {"steps": 3, "lr": 5e-4, "seed": 0, "loss": "nbr2nbr"}
    with temporary_plugin(noiseshift_lan, name="lan_scope_test"):
        assert ADAPTERS.lookup("lan_scope_test.lan") is LAN


def test_lan_with_zero_steps_is_exactly_the_backbone() -> None:
    backbone = _backbone()
    noisy, _ = _noisy()
    with torch.no_grad():
        assert torch.equal(LAN(steps=0).wrap(backbone)(noisy), backbone(noisy))


class _SpyLAN(LAN):
    """Records the offset and what the backbone's parameters look like while LAN adapts."""

    name = "spy_lan"

    def configure(self, backbone, noisy, cond):
        self.params = super().configure(backbone, noisy, cond)
        self.grad_flags: list[bool] = []
        return self.params

    def loss(self, backbone, noisy, cond, params, generator):
        self.grad_flags.extend(p.requires_grad for p in backbone.parameters())
        return super().loss(backbone, noisy, cond, params, generator)


@pytest.mark.parametrize("loss", ["zsn2n", "nbr2nbr"])
def test_lan_moves_only_the_offset_and_leaves_the_backbone_untouched(loss: str) -> None:
    backbone = _backbone()
    digest = state_hash(backbone)
    noisy, _ = _noisy()
    adapter = _SpyLAN(steps=3, lr=1e-2, loss=loss)
    model = adapter.wrap(backbone)
    adapted = model(noisy)
    (phi,) = adapter.params
    assert phi.shape == noisy.shape and phi.is_leaf
    assert phi.abs().max() > 0  # the offset moved from its zero start
    assert state_hash(backbone) == digest  # episodic: the weights are bit-identical
    assert adapter.grad_flags and not any(adapter.grad_flags)  # no weight gradients, ever
    assert all(p.grad is None for p in backbone.parameters())
    with torch.no_grad():
        expected = backbone(noisy + torch.tanh(phi))  # the output is f(y + tanh(φ*))
        plain = backbone(noisy)
    torch.testing.assert_close(adapted, expected)
    assert not torch.allclose(adapted, plain)
    assert torch.equal(model(noisy), adapted)  # a fresh φ for every image: nothing carries over
    assert state_hash(backbone) == digest


def test_a_lan_step_on_gaussian_noise_reduces_the_loss() -> None:
    backbone = _backbone()
    noisy, _ = _noisy(size=32, sigma=25 / 255)
    # ZS-N2N draws nothing, so the trace compares the same objective before and after an update.
    adapter = LAN(steps=3, lr=5e-4)
    adapter.trace = []
    adapter.wrap(backbone)(noisy)
    losses = [entry["loss"] for entry in adapter.trace]
    assert losses[1] < losses[0] and losses[2] < losses[1]
    # Neighbor2Neighbor draws sub-samples: evaluate it on the same draw before and after one step.
    adapter = LAN(steps=1, lr=5e-4, loss="nbr2nbr")
    params = adapter.configure(backbone, noisy, None)
    optimizer = adapter.setup_optimizer(params)
    adapter.current_step = 1
    before = adapter.loss(backbone, noisy, None, params, torch.Generator().manual_seed(0))
    before.backward()
    optimizer.step()
    after = adapter.loss(backbone, noisy, None, params, torch.Generator().manual_seed(0))
    assert float(after.detach()) < float(before.detach())


def test_trace_records_psnr_from_the_pretrained_model_on() -> None:
    backbone = _backbone()
    noisy, clean = _noisy()
    adapter = LAN(steps=2, lr=1e-2)
    adapter.trace, adapter.reference = [], clean
    out = adapter.wrap(backbone)(noisy)
    assert [entry["step"] for entry in adapter.trace] == [0, 1, 2]
    with torch.no_grad():
        before = float(psnr(backbone(noisy).clamp(0, 1), clean, 1.0))
    assert adapter.trace[0]["psnr"] == pytest.approx(before)
    assert adapter.trace[-1]["psnr"] == pytest.approx(float(psnr(out.clamp(0, 1), clean, 1.0)))


class _SpyTuning:
    """Mixin: remember the tensors handed to the optimiser."""

    def configure(self, backbone, noisy, cond):
        self.params = super().configure(backbone, noisy, cond)
        return self.params


@pytest.mark.parametrize("cls", [TTFull, TTFirst, TTLast], ids=lambda c: c.name)
def test_baselines_train_their_role_only_and_are_episodic(cls) -> None:
    spy = type(f"Spy{cls.__name__}", (_SpyTuning, cls), {"name": f"spy_{cls.name}"})
    backbone = _backbone()
    digest = state_hash(backbone)
    flags = [p.requires_grad for p in backbone.parameters()]
    noisy, _ = _noisy()
    adapter = spy(steps=2, lr=1e-2)
    adapted = adapter.wrap(backbone)(noisy)
    role = cls.trainable[0]
    assert {id(p) for p in adapter.params} == {id(p) for p in backbone.parameters_for(role)}
    assert state_hash(backbone) == digest
    assert [p.requires_grad for p in backbone.parameters()] == flags
    assert all(p.grad is None for p in backbone.parameters()) and not backbone.training
    with torch.no_grad():
        assert not torch.allclose(adapted, backbone(noisy))  # the weights did move during the episode


def test_odd_sizes_and_size_multiples_work_through_inference() -> None:
    backbone = _backbone("unet")  # size_multiple 4: the half-size sub-images need padding too
    noisy, _ = _noisy(size=24)
    noisy = noisy[..., :21, :19]
    for adapter in (LAN(steps=1, loss="nbr2nbr"), TTLast(steps=1)):
        out = denoise(adapter.wrap(backbone), noisy)
        assert out.shape == noisy.shape and torch.isfinite(out).all()


def test_invalid_uses_are_refused_with_clear_errors() -> None:
    with pytest.raises(InvalidInputError, match="parameter-free"):
        LAN().wrap(DENOISERS.build({"type": "bm3d"}))
    with pytest.raises(InvalidInputError, match="pixel loss"):
        LAN(loss="l1")
    with pytest.raises(InvalidInputError, match="unknown option"):
        ADAPTERS.build({"type": "lan", "iters": 3})
    with pytest.raises(InvalidInputError, match="steps must be >= 0"):
        TTFull(steps=-1)
    rgb_to_gray = DENOISERS.build({"type": "dncnn", "depth": 3, "width": 8, "out_channels": 1, "residual": False})
    with pytest.raises(InvalidInputError, match="as many output as input channels"):
        TTFull().wrap(rgb_to_gray)
