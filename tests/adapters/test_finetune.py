"""The supervised ``finetune`` adapter and the ``pretrained`` baseline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from noiseshift.adapter import AdaptedDenoiser
from noiseshift.errors import InvalidInputError
from noiseshift.registry import ADAPTERS, DENOISERS, NOISE_MODELS
from noiseshift.types import Sample
from noiseshift.weights import load, save, save_head


def _pairs(count: int = 4, size: int = 48) -> list[Sample]:
    generator = torch.Generator().manual_seed(3)
    noise = NOISE_MODELS.build({"type": "gaussian", "sigma": 0.1})
    pairs = []
    for index in range(count):
        base = torch.rand(1, 3, size // 8, size // 8, generator=generator)
        clean = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
        pairs.append(Sample(f"p{index}", noise(clean, generator).noisy, clean))
    return pairs


def _backbone() -> torch.nn.Module:
    torch.manual_seed(0)
    return DENOISERS.build({"type": "dncnn", "depth": 4, "width": 16}).eval()


def _changed(before: dict, model: torch.nn.Module) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


@pytest.mark.parametrize("role", ["all", "first", "last", "domain"])
def test_finetune_updates_exactly_its_role(role: str) -> None:
    backbone = _backbone()
    adapter = ADAPTERS.build({"type": "finetune", "role": role, "steps": 5, "batch_size": 2, "patch_size": 32})
    model = adapter.wrap(backbone)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    report = adapter.fit(model, target=_pairs())
    names = {id(p): n for n, p in backbone.named_parameters()}
    expected = {names[id(p)] for p in backbone.parameters_for(role)}
    changed = _changed(before, backbone) - {n for n, _ in backbone.named_buffers()}
    assert changed == expected
    assert set(report.changed) == expected and report.steps == 5
    assert all(p.grad is None for p in backbone.parameters())
    assert all(p.requires_grad for p in backbone.parameters())  # flags restored


def test_finetune_reduces_the_loss_and_its_head_reproduces_the_model(tmp_path: Path) -> None:
    backbone = _backbone()
    base_path = save(backbone, tmp_path / "base.safetensors")
    pairs = _pairs()
    adapter = ADAPTERS.build({"type": "finetune", "steps": 60, "lr": 1e-3, "batch_size": 4, "patch_size": 32})
    model = adapter.wrap(backbone)
    with torch.no_grad():
        before = sum(float((backbone(s.noisy) - s.clean).abs().mean()) for s in pairs)
    report = adapter.fit(model, target=pairs, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        after = sum(float((backbone(s.noisy) - s.clean).abs().mean()) for s in pairs)
    assert after < 0.8 * before, (before, after)
    assert report.history[-1]["loss"] < report.history[0]["loss"]
    head = save_head(adapter.delta(model), tmp_path / "head.safetensors", base=backbone, adapter=adapter.name,
                     adapter_config=adapter.config())
    rebuilt = load(base_path, head=head)
    x = pairs[0].noisy
    with torch.no_grad():
        assert torch.equal(rebuilt(x), backbone(x))


def test_finetune_is_reproducible_with_a_seeded_generator() -> None:
    states = []
    for _ in range(2):
        backbone = _backbone()
        adapter = ADAPTERS.build({"type": "finetune", "steps": 3, "batch_size": 2, "patch_size": 16})
        adapter.fit(adapter.wrap(backbone), target=_pairs(), generator=torch.Generator().manual_seed(5))
        states.append(backbone.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_finetune_bad_inputs_fail_clearly() -> None:
    adapter = ADAPTERS.build({"type": "finetune", "steps": 1})
    model = adapter.wrap(_backbone())
    with pytest.raises(InvalidInputError, match="needs target_pairs"):
        adapter.fit(model)
    with pytest.raises(InvalidInputError, match="empty"):
        adapter.fit(model, target=[])
    unpaired = [Sample("x", torch.rand(1, 3, 16, 16))]
    with pytest.raises(InvalidInputError, match="no clean image"):
        adapter.fit(model, target=unpaired)
    with pytest.raises(InvalidInputError, match="no parameter role 'middle'"):
        ADAPTERS.build({"type": "finetune", "role": "middle"}).wrap(_backbone())
    with pytest.raises(InvalidInputError, match="steps"):
        ADAPTERS.build({"type": "finetune", "steps": 0})


def test_pretrained_is_a_no_op_denoiser() -> None:
    backbone = _backbone()
    model = ADAPTERS.build({"type": "pretrained"}).wrap(backbone)
    assert isinstance(model, AdaptedDenoiser) and model.adapter.delta(model) == {}
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), backbone(x))


def test_conditions_are_batched_per_sample() -> None:
    from noiseshift.adapters.finetune import collate_conditions

    batch = collate_conditions([{"sensor": "Sony", "iso": 800, "x": 1}, {"sensor": "Canon80D", "iso": 3200.0}])
    assert batch is not None and batch["sensor"] == ["Sony", "Canon80D"]
    assert batch["iso"].dtype == torch.float32 and batch["iso"].tolist() == [800.0, 3200.0]
    assert batch["x"] == [1.0, None]  # missing in one sample: None there, not dropped for all
    assert collate_conditions([{}, {"iso": 1}]) == {"iso": [None, 1.0]}
    assert collate_conditions([{"sensor": "a"}, {}], keys=["iso"]) is None
    maps = collate_conditions([{"sigma": torch.zeros(1, 1, 2, 2)}, {"sigma": torch.ones(1, 1, 2, 2)}])
    assert maps["sigma"].shape == (2, 1, 2, 2)
    with pytest.raises(InvalidInputError, match="mixed|value types"):
        collate_conditions([{"iso": 1}, {"iso": "high"}])


def test_random_pair_batch_carries_the_drawn_samples_conditions() -> None:
    from noiseshift.adapters.finetune import random_pair_batch

    pairs = _pairs(3, 16)
    for index, sample in enumerate(pairs):
        sample.cond = {"sensor": f"cam{index}", "iso": 100.0 * (index + 1)}
        sample.noisy = torch.full_like(sample.noisy, float(index))  # the crop reveals its sample
    noisy, clean, cond = random_pair_batch(pairs, 6, 8, torch.Generator().manual_seed(0), return_cond=True)
    drawn = noisy[:, 0, 0, 0].long().tolist()
    assert cond["sensor"] == [f"cam{i}" for i in drawn]
    assert cond["iso"].tolist() == [100.0 * (i + 1) for i in drawn]


def test_finetune_feeds_declared_conditions_to_the_backbone() -> None:
    seen: list = []
    backbone = _backbone()
    backbone.conditions = frozenset({"iso"})  # instance override: this dncnn "declares" iso
    original = backbone.forward

    def forward(noisy, cond=None):
        seen.append(cond)
        return original(noisy, None)

    backbone.forward = forward
    pairs = _pairs(2, 32)
    for sample in pairs:
        sample.cond = {"iso": 1600.0, "sensor": "Sony"}
    adapter = ADAPTERS.build({"type": "finetune", "steps": 2, "batch_size": 2, "patch_size": 16})
    adapter.fit(adapter.wrap(backbone), target=pairs)
    assert len(seen) == 2 and all(set(c) == {"iso"} and c["iso"].tolist() == [1600.0, 1600.0] for c in seen)


def test_named_domains_keeps_names_and_validates() -> None:
    from noiseshift.adapter import named_domains

    pairs = _pairs(2, 16)
    assert list(named_domains({"a": pairs, "b": pairs[:1]})) == ["a", "b"]
    assert list(named_domains([pairs, pairs])) == ["source0", "source1"]
    with pytest.raises(InvalidInputError, match="source 'b' set is empty"):
        named_domains({"a": pairs, "b": []})
    with pytest.raises(InvalidInputError, match="no clean image"):
        named_domains({"a": [Sample("x", pairs[0].noisy)]})
    with pytest.raises(InvalidInputError, match="no source domains"):
        named_domains({})


def test_finetune_refuses_losses_that_do_not_train_on_pairs() -> None:
    from noiseshift.registry import LOSSES

    names = sorted(set(LOSSES.names(qualified=False)))
    special = [n for n in names if any(getattr(LOSSES.lookup(n), flag, False)
                                       for flag in ("self_supervised", "needs_noise_map"))]
    if not special:
        pytest.skip("no self-supervised or noise-map loss is installed (they come from the lan/ain_transfer plugins)")
    for loss in special:
        adapter = ADAPTERS.build({"type": "finetune", "steps": 1, "batch_size": 1, "patch_size": 16, "loss": loss})
        with pytest.raises(InvalidInputError, match=f"loss '{loss}' is not a pixel loss"):
            adapter.fit(adapter.wrap(_backbone()), target=_pairs(1, 16))
