"""ain_transfer on every registered backbone: it trains exactly that backbone's ``domain`` role."""

from __future__ import annotations

import pytest
import torch

from noiseshift.api import InvalidInputError, Sample
from noiseshift.testing import backbone_sweep, parameter_free_sweep, smoke_backbone, smoke_input
from noiseshift_ain_transfer import AINTransfer


@pytest.mark.parametrize(
    "name", backbone_sweep("parameter-free: no domain role to fine-tune; see test_parameter_free_backbones_are_refused")
)
def test_ain_transfer_trains_the_domain_role_of(name: str) -> None:
    backbone = smoke_backbone(name)
    clean, cond = smoke_input(backbone)
    side = clean.shape[-1]
    generator = torch.Generator().manual_seed(0)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    pairs = [Sample("a", noisy, clean, cond or {})]
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


@pytest.mark.parametrize("name", parameter_free_sweep())
def test_parameter_free_backbones_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError, match="parameter-free"):
        AINTransfer().wrap(smoke_backbone(name))
