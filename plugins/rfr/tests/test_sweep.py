"""RFR on every registered backbone (smoke presets, 1 step, tiny images)."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from noiseshift.api import DENOISERS, InvalidInputError
from noiseshift.inference import denoise
from noiseshift_rfr import RFR

DENOISERS.lookup("dncnn")  # load the plugins, so that every installed backbone is swept
NAMES = sorted(set(DENOISERS.names(qualified=False)))
TRAINABLE = [name for name in NAMES if DENOISERS.lookup(name).trainable]
PARAMETER_FREE = [name for name in NAMES if not DENOISERS.lookup(name).trainable]
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


@pytest.mark.parametrize(
    "name",
    [pytest.param(n) for n in TRAINABLE]
    + [pytest.param(n, marks=pytest.mark.skip(reason=f"{n} is parameter-free (trainable=False): RFR fine-tunes "
                                                     "weights; see test_parameter_free_backbones_are_refused"))
       for n in PARAMETER_FREE],
)
def test_rfr_runs_on_backbone(name: str) -> None:
    backbone = _build(name)
    cond = getattr(type(backbone), "smoke_cond", None)
    side = backbone.size_multiple * math.ceil(16 / backbone.size_multiple)
    noisy = torch.rand(1, backbone.in_channels, side, side, generator=torch.Generator().manual_seed(0))
    digest = _hash(backbone)
    flags = [p.requires_grad for p in backbone.parameters()]
    model = RFR(steps=1, lr=1e-4, noise={"type": "gaussian", "sigma": 0.05}).wrap(backbone)
    out = denoise(model, noisy, cond)
    assert out.shape == (1, backbone.out_channels, side, side) and torch.isfinite(out).all()
    assert _hash(backbone) == digest and [p.requires_grad for p in backbone.parameters()] == flags
    assert all(p.grad is None for p in backbone.parameters())


@pytest.mark.parametrize("name", PARAMETER_FREE or [pytest.param("none", marks=pytest.mark.skip("none registered"))])
def test_parameter_free_backbones_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError, match="parameter-free"):
        RFR().wrap(_build(name))
