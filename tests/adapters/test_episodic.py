"""``TestTimeAdapter``: the episodic contract holds even when adaptation fails midway."""

from __future__ import annotations

import pytest
import torch

from noiseshift.adapter import TestTimeAdapter, episode
from noiseshift.registry import DENOISERS


class FullTuning(TestTimeAdapter):
    """Fine-tunes every backbone weight on a self-supervised smoothness loss."""

    name = "full_tuning_test"
    trainable = ("all",)

    def __init__(self, *, fail_at: int | None = None, **options) -> None:
        super().__init__(**options)
        self.fail_at = fail_at
        self.calls = 0

    def configure(self, backbone, noisy, cond):
        params = list(backbone.parameters())
        for param in params:
            param.requires_grad_(True)
        backbone.train()
        return params

    def loss(self, backbone, noisy, cond, params, generator):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("adaptation failed")
        out = backbone(noisy + 0.01 * torch.randn(noisy.shape, generator=generator), cond)
        return (out - noisy).square().mean() + (out[..., 1:] - out[..., :-1]).abs().mean()


def _backbone():
    torch.manual_seed(0)
    return DENOISERS.build({"type": "dncnn", "depth": 4, "width": 8}).eval()


def _snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_backbone_is_identical_after_each_image_and_outputs_differ_from_plain() -> None:
    backbone = _backbone()
    before = _snapshot(backbone)
    adapter = FullTuning(steps=3, lr=1e-2)
    trace: list = []
    adapter.trace = trace
    model = adapter.wrap(backbone)
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    adapted = model(x)
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())
    assert not backbone.training and all(p.grad is None for p in backbone.parameters())
    with torch.no_grad():
        plain = backbone(x)
    assert not torch.allclose(adapted, plain)  # adaptation did something
    assert len(trace) == 3 and all("loss" in t for t in trace)
    assert torch.equal(model(x), adapted)  # same seed, same start: no state leaks


def test_backbone_is_restored_when_adaptation_raises() -> None:
    backbone = _backbone()
    before = _snapshot(backbone)
    flags = [p.requires_grad for p in backbone.parameters()]
    model = FullTuning(steps=5, lr=1e-1, fail_at=3).wrap(backbone)
    with pytest.raises(RuntimeError, match="adaptation failed"):
        model(torch.rand(1, 3, 16, 16))
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())
    assert [p.requires_grad for p in backbone.parameters()] == flags
    assert not backbone.training


def test_episode_restores_buffers_and_modes() -> None:
    backbone = _backbone()
    backbone.train()
    norm = next(m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    mean = norm.running_mean.clone()
    with episode(backbone):
        backbone(torch.rand(2, 3, 8, 8))  # train mode updates running stats
        backbone.eval()
        assert not torch.equal(norm.running_mean, mean)
    assert torch.equal(norm.running_mean, mean) and backbone.training


def test_progress_callback_sees_every_step() -> None:
    seen = []
    adapter = FullTuning(steps=4, lr=1e-3)
    adapter.progress = lambda step, total, metrics: seen.append((step, total))
    adapter.wrap(_backbone())(torch.rand(1, 3, 16, 16))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


class StepRecorder(FullTuning):
    """Remembers ``current_step`` as ``loss`` sees it."""

    name = "step_recorder_test"

    def loss(self, backbone, noisy, cond, params, generator):
        self.seen = getattr(self, "seen", []) + [self.current_step]
        return super().loss(backbone, noisy, cond, params, generator)


def test_loss_sees_the_current_step_and_it_resets_afterwards() -> None:
    adapter = StepRecorder(steps=3, lr=1e-3)
    adapter.wrap(_backbone())(torch.rand(1, 3, 16, 16))
    assert adapter.seen == [1, 2, 3] and adapter.current_step == 0
    failing = StepRecorder(steps=4, lr=1e-3, fail_at=2)
    with pytest.raises(RuntimeError):
        failing.wrap(_backbone())(torch.rand(1, 3, 16, 16))
    assert failing.current_step == 0


class EvalTuning(FullTuning):
    """FullTuning that keeps the backbone in eval mode (so step 0 is the plain backbone)."""

    name = "eval_tuning_test"

    def configure(self, backbone, noisy, cond):
        params = list(backbone.parameters())
        for param in params:
            param.requires_grad_(True)
        return params


def _pair(size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    clean = torch.rand(1, 3, size, size, generator=generator)
    return (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1), clean


def test_trace_records_psnr_of_every_step_against_the_reference() -> None:
    from noiseshift.metrics import psnr

    backbone = _backbone()
    noisy, clean = _pair()
    with torch.no_grad():
        before = float(psnr(backbone(noisy).clamp(0, 1), clean, 1.0))
    adapter = EvalTuning(steps=3, lr=1e-2)
    adapter.trace, adapter.reference = [], clean
    seen = []
    adapter.progress = lambda step, total, metrics: seen.append(dict(metrics))
    out = adapter.wrap(backbone)(noisy)
    assert [t["step"] for t in adapter.trace] == [0, 1, 2, 3]
    assert set(adapter.trace[0]) == {"step", "psnr"} and adapter.trace[0]["psnr"] == pytest.approx(before)
    assert all({"loss", "psnr"} <= set(t) for t in adapter.trace[1:])
    assert adapter.trace[-1]["psnr"] == pytest.approx(float(psnr(out.clamp(0, 1), clean, 1.0)))
    assert len({round(t["psnr"], 6) for t in adapter.trace}) > 1  # it follows the adaptation
    assert seen == adapter.trace[1:]  # the progress callback sees the same metrics


def test_trace_psnr_follows_padding_and_skips_unrelated_references() -> None:
    from noiseshift.inference import denoise

    torch.manual_seed(0)
    backbone = DENOISERS.build({"type": "unet", "width": 4, "depth": 2}).eval()  # size_multiple 4
    noisy, clean = _pair(size=22)  # padded to 24 by noiseshift.inference
    adapter = FullTuning(steps=2, lr=1e-3)
    adapter.trace, adapter.reference = [], clean
    denoise(adapter.wrap(backbone), noisy)
    assert [t["step"] for t in adapter.trace] == [0, 1, 2] and "psnr" in adapter.trace[-1]
    adapter.trace, adapter.reference = [], clean[..., :16, :16]  # e.g. another tile's size
    denoise(adapter.wrap(backbone), noisy)
    assert [t["step"] for t in adapter.trace] == [1, 2] and not any("psnr" in t for t in adapter.trace)
