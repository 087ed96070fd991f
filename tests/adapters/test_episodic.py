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
