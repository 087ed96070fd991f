"""Every LAN-family adapter on every registered backbone (smoke presets, 1 step, tiny images)."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from noiseshift.api import DENOISERS, InvalidInputError
from noiseshift.inference import denoise
from noiseshift_lan import LAN, TTFirst, TTFull, TTLast

DENOISERS.lookup("dncnn")  # load the plugins, so that every installed backbone is swept
NAMES = sorted(set(DENOISERS.names(qualified=False)))
TRAINABLE = [name for name in NAMES if DENOISERS.lookup(name).trainable]
PARAMETER_FREE = [name for name in NAMES if not DENOISERS.lookup(name).trainable]
ADAPTERS = [LAN, TTFull, TTFirst, TTLast]
SMALL_CONFIGS = {"dncnn": {"depth": 5, "width": 16}, "unet": {"width": 8}}  # as the core's conformance test


def _build(name: str) -> torch.nn.Module:
    cls = DENOISERS.lookup(name)
    config = getattr(cls, "smoke_config", None) or SMALL_CONFIGS.get(name, {})
    torch.manual_seed(0)
    return DENOISERS.build({"type": name, **config}).eval()


def _hash(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("adapter_cls", ADAPTERS, ids=lambda c: c.name)
@pytest.mark.parametrize(
    "name",
    [pytest.param(n) for n in TRAINABLE]
    + [pytest.param(n, marks=pytest.mark.skip(reason=f"{n} is parameter-free (trainable=False): nothing to "
                                                     "back-propagate through (see test_parameter_free_backbones_"
                                                     "are_refused)"))
       for n in PARAMETER_FREE],
)
def test_adapter_runs_on_backbone(adapter_cls, name: str) -> None:
    backbone = _build(name)
    cond = getattr(type(backbone), "smoke_cond", None)
    side = backbone.size_multiple * math.ceil(16 / backbone.size_multiple)
    noisy = torch.rand(1, backbone.in_channels, side, side, generator=torch.Generator().manual_seed(0))
    digest = _hash(backbone)
    flags = [p.requires_grad for p in backbone.parameters()]
    loss = "nbr2nbr" if adapter_cls in (TTFirst, TTLast) else "zsn2n"  # both losses across the sweep
    model = adapter_cls(steps=1, lr=1e-3, loss=loss).wrap(backbone)
    out = denoise(model, noisy, cond)
    assert out.shape == (1, backbone.out_channels, side, side) and torch.isfinite(out).all()
    assert _hash(backbone) == digest and [p.requires_grad for p in backbone.parameters()] == flags
    assert all(p.grad is None for p in backbone.parameters())


@pytest.mark.parametrize("adapter_cls", ADAPTERS, ids=lambda c: c.name)
@pytest.mark.parametrize("name", PARAMETER_FREE or [pytest.param("none", marks=pytest.mark.skip("none registered"))])
def test_parameter_free_backbones_are_refused(adapter_cls, name: str) -> None:
    with pytest.raises(InvalidInputError, match="parameter-free"):
        adapter_cls().wrap(_build(name))
