"""ADL on every registered backbone (smoke presets, a few steps, tiny images, with conditions)."""

from __future__ import annotations

import math

import pytest
import torch

from noiseshift.api import InvalidInputError, Sample
from noiseshift.inference import denoise
from noiseshift.testing import backbone_sweep, parameter_free_sweep, smoke_backbone
from noiseshift_adl import ADL


def _pairs(backbone, count: int, seed: int, cond: dict | None) -> list[Sample]:
    side = backbone.size_multiple * math.ceil(16 / backbone.size_multiple)
    generator = torch.Generator().manual_seed(seed)
    pairs = []
    for index in range(count):
        clean = torch.rand(1, backbone.in_channels, side, side, generator=generator)
        noisy = (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
        pairs.append(Sample(f"s{seed}_{index}", noisy, clean, dict(cond or {})))
    return pairs


@pytest.mark.parametrize(
    "name", backbone_sweep("parameter-free: ADL trains weights; see test_parameter_free_backbones_are_refused")
)
def test_adl_fits_backbone(name: str) -> None:
    backbone = smoke_backbone(name)
    cond = getattr(type(backbone), "smoke_cond", None)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    flags = [p.requires_grad for p in backbone.parameters()]
    adapter = ADL(pretrain_steps=1, steps=2, finetune_steps=1, batch_size=2, patch_size=16, lr=1e-3)
    model = adapter.wrap(backbone)
    report = adapter.fit(model, target=_pairs(backbone, 3, 0, cond),
                         source={"a": _pairs(backbone, 2, 1, cond), "b": _pairs(backbone, 2, 2, cond)},
                         generator=torch.Generator().manual_seed(0))
    assert report.steps == 4
    assert sum(c["accepted"] + c["rejected"] for c in report.extra["domains"].values()) == 2
    assert any(not torch.equal(v, before[k]) for k, v in backbone.state_dict().items())
    assert [p.requires_grad for p in backbone.parameters()] == flags
    assert all(p.grad is None for p in backbone.parameters()) and not backbone.training
    noisy = _pairs(backbone, 1, 3, None)[0].noisy
    out = denoise(model, noisy, cond)
    assert out.shape == (1, backbone.out_channels, *noisy.shape[-2:]) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", parameter_free_sweep())
def test_parameter_free_backbones_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError, match="parameter-free"):
        ADL().wrap(smoke_backbone(name))
