"""ain_transfer on every registered backbone: it trains exactly that backbone's ``domain`` role."""

from __future__ import annotations

import math

import pytest
import torch

from noiseshift.api import DENOISERS, InvalidInputError, Sample
from noiseshift_ain_transfer import AINTransfer

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


@pytest.mark.parametrize(
    "name",
    [pytest.param(n) for n in TRAINABLE]
    + [pytest.param(n, marks=pytest.mark.skip(reason=f"{n} is parameter-free (trainable=False): no domain role to "
                                                     "fine-tune; see test_parameter_free_backbones_are_refused"))
       for n in PARAMETER_FREE],
)
def test_ain_transfer_trains_the_domain_role_of(name: str) -> None:
    backbone = _build(name)
    cond = dict(getattr(type(backbone), "smoke_cond", None) or {})
    side = backbone.size_multiple * math.ceil(16 / backbone.size_multiple)
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(1, backbone.in_channels, side, side, generator=generator) * 0.5 + 0.25
    pairs = [Sample("a", (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1), clean, cond)]
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    adapter = AINTransfer(steps=1, batch_size=2, patch_size=side, lr=1e-3)
    model = adapter.wrap(backbone)
    report = adapter.fit(model, target=pairs, generator=torch.Generator().manual_seed(0))

    domain_ids = {id(p) for p in backbone.parameters_for("domain")}
    domain = {n for n, p in backbone.named_parameters() if id(p) in domain_ids}
    buffers = {n for n, _ in backbone.named_buffers()}
    changed = {k for k, v in backbone.state_dict().items() if not torch.equal(v, before[k])} - buffers
    assert changed, f"{name}: nothing changed"
    assert changed <= domain, f"{name}: changed outside the domain role: {sorted(changed - domain)[:5]}"
    assert set(adapter.delta(model)) == domain == set(report.changed)
    assert 0 < report.extra["trained_fraction"] <= 1
    with torch.no_grad():
        out = model(pairs[0].noisy, cond or None)
    assert out.shape == clean.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("name", PARAMETER_FREE or [pytest.param("none", marks=pytest.mark.skip("none registered"))])
def test_parameter_free_backbones_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError, match="parameter-free"):
        AINTransfer().wrap(_build(name))
