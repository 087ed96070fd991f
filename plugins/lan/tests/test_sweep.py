"""Every LAN-family adapter on every registered backbone (smoke presets, 1 step, tiny images)."""

from __future__ import annotations

import pytest
import torch

from noiseshift.api import InvalidInputError
from noiseshift.inference import denoise
from noiseshift.testing import backbone_sweep, parameter_free_sweep, smoke_backbone, smoke_input, state_hash
from noiseshift_lan import LAN, TTFirst, TTFull, TTLast

ADAPTERS = [LAN, TTFull, TTFirst, TTLast]


@pytest.mark.parametrize("adapter_cls", ADAPTERS, ids=lambda c: c.name)
@pytest.mark.parametrize(
    "name", backbone_sweep("parameter-free: nothing to back-propagate through (see "
                           "test_parameter_free_backbones_are_refused)")
)
def test_adapter_runs_on_backbone(adapter_cls, name: str) -> None:
    backbone = smoke_backbone(name)
    noisy, cond = smoke_input(backbone)
    side = noisy.shape[-1]
    digest = state_hash(backbone)
    flags = [p.requires_grad for p in backbone.parameters()]
    loss = "nbr2nbr" if adapter_cls in (TTFirst, TTLast) else "zsn2n"  # both losses across the sweep
    model = adapter_cls(steps=1, lr=1e-3, loss=loss).wrap(backbone)
    out = denoise(model, noisy, cond)
    assert out.shape == (1, backbone.out_channels, side, side) and torch.isfinite(out).all()
    assert state_hash(backbone) == digest and [p.requires_grad for p in backbone.parameters()] == flags
    assert all(p.grad is None for p in backbone.parameters())


@pytest.mark.parametrize("adapter_cls", ADAPTERS, ids=lambda c: c.name)
@pytest.mark.parametrize("name", parameter_free_sweep())
def test_parameter_free_backbones_are_refused(adapter_cls, name: str) -> None:
    with pytest.raises(InvalidInputError, match="parameter-free"):
        adapter_cls().wrap(smoke_backbone(name))
