"""The ``adl`` adapter: conformance, source selection, restore on rejection, schedules, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import noiseshift_adl
from noiseshift.api import ADAPTERS, DENOISERS, Denoiser, InvalidInputError, Sample, psnr
from noiseshift.testing import check_adapter, temporary_plugin
from noiseshift_adl import ADL, ScoreQueue, diverse_iso_subset, validation_size
from noiseshift_adl.adl import _Snapshot
from noiseshift_adl.validation import random_subset

FAST = {"pretrain_steps": 2, "steps": 4, "finetune_steps": 2, "batch_size": 2, "patch_size": 16, "lr": 1e-3}


def tiny_dncnn(seed: int = 0, identity: bool = True) -> Denoiser:
    """A 3-layer DnCNN without BN; ``identity`` zeroes its last layer so it starts as the identity."""
    torch.manual_seed(seed)
    model = DENOISERS.build({"type": "dncnn", "depth": 3, "width": 8, "batch_norm": False}).eval()
    if identity:
        with torch.no_grad():
            for param in model.parameters_for("last"):
                param.zero_()
    return model


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- contract -------------------------------------------------------------------------------------


def test_conforms() -> None:
    check_adapter(ADL, config=ADL.smoke_config)


def test_conforms_with_other_roles_and_options() -> None:
    check_adapter(ADL, config={**FAST, "role": "last", "score": "gain", "on_reject": "skip"})
    check_adapter(ADL, config={**FAST, "on_reject": "weights", "adapt_beta1": 0.9, "criterion": "none"})
    check_adapter(ADL, config={**FAST, "criterion": "previous", "queue_pop": "oldest", "val_growth": "cosine"})


def test_registered_under_its_scope() -> None:
    assert ADAPTERS.lookup("adl") is ADL
    with temporary_plugin(noiseshift_adl, name="adl_under_test"):
        assert ADAPTERS.lookup("adl_under_test.adl") is ADL


def test_config_round_trips() -> None:
    adapter = ADL(**FAST, queue_size=3, target_batch=2, val_patch=16, loss="l2")
    assert ADL(**adapter.config()).config() == adapter.config()


# -- the selection does its job -------------------------------------------------------------------


@pytest.mark.parametrize("score", ["psnr", "gain"])
def test_corrupted_domain_is_rejected_and_clean_domain_accepted(make_pairs, score: str) -> None:
    """Black ground truth is rejected (mostly), a clean domain like the target accepted (mostly).

    The target is under-exposed and noisy (``0.7·clean + noise``); a DnCNN that starts as the
    identity has much to learn, so a step on clean pairs of the same kind improves the target's
    validation PSNR, and a step towards black images lowers it. Pooled over three seeds.
    """
    target = make_pairs(range(6), prefix="t")
    source = {
        "clean": make_pairs(range(100, 116), prefix="c"),
        "black_gt": make_pairs(range(200, 208), corrupt="black", prefix="b"),
    }
    totals = {name: {"accepted": 0, "rejected": 0} for name in source}
    for seed in range(3):
        model = tiny_dncnn(seed)
        adapter = ADL(pretrain_steps=20, steps=40, finetune_steps=0, batch_size=8, patch_size=32, lr=1e-3, score=score)
        report = adapter.fit(adapter.wrap(model), target=target, source=source,
                             generator=torch.Generator().manual_seed(seed))
        for name, counts in report.extra["domains"].items():
            totals[name]["accepted"] += counts["accepted"]
            totals[name]["rejected"] += counts["rejected"]

    def rate(name: str) -> float:
        return totals[name]["accepted"] / (totals[name]["accepted"] + totals[name]["rejected"])

    assert rate("black_gt") <= 0.15, totals
    assert rate("clean") >= 0.6, totals


def test_rejected_steps_restore_the_weights_bit_exactly(make_pairs) -> None:
    """After every rejected stage-2 step the weights are bit-identical to before it; accepted ones change them."""
    model = tiny_dncnn()
    snapshots: list[tuple[dict[str, float], dict[str, torch.Tensor]]] = []
    adapter = ADL(pretrain_steps=5, steps=20, finetune_steps=0, batch_size=4, patch_size=32, lr=1e-3)
    wrapped = adapter.wrap(model)
    before = state(model)
    report = adapter.fit(
        wrapped, target=make_pairs(range(4)),
        source={"clean": make_pairs(range(100, 108)), "black": make_pairs(range(200, 208), corrupt="black")},
        generator=torch.Generator().manual_seed(0),
        progress=lambda step, total, metrics: snapshots.append((dict(metrics), state(model))),
    )
    assert len(snapshots) == report.steps == 25
    assert not same(before, snapshots[0][1])  # pre-training trains
    outcomes = []
    for (_, previous), (metrics, current) in zip(snapshots[4:-1], snapshots[5:]):
        assert metrics["stage"] == 2.0
        outcomes.append(metrics["accepted"])
        assert same(previous, current) == (metrics["accepted"] == 0.0), metrics
    assert 0.0 in outcomes and 1.0 in outcomes  # both branches were exercised


@pytest.mark.parametrize("mode", ["weights_and_optimizer", "skip"])
def test_snapshot_restores_the_optimizer_state(mode: str) -> None:
    layer = nn.Conv2d(3, 3, 3)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        layer(torch.rand(2, 3, 8, 8)).square().mean().backward()
        optimizer.step()
    backbone = tiny_dncnn()
    backbone.add_module("extra", layer)  # the snapshot covers every tensor of the module
    kept = {p: {k: v.clone() for k, v in s.items()} for p, s in optimizer.state.items()}
    weights = state(backbone)
    snapshot = _Snapshot(backbone, optimizer)
    optimizer.zero_grad()
    layer(torch.rand(2, 3, 8, 8)).abs().mean().backward()
    optimizer.step()
    assert not same(weights, state(backbone))
    snapshot.restore(backbone, optimizer, skip=mode == "skip")
    assert same(weights, state(backbone))
    beta1, beta2 = optimizer.param_groups[0]["betas"]
    for param, saved in kept.items():
        now = optimizer.state[param]
        if mode == "skip":  # as after a zero gradient: moments decayed, one more step counted
            assert torch.equal(now["exp_avg"], saved["exp_avg"] * beta1)
            assert torch.equal(now["exp_avg_sq"], saved["exp_avg_sq"] * beta2)
            assert float(now["step"]) == float(saved["step"]) + 1
        else:
            assert all(torch.equal(now[k], saved[k]) for k in saved)


# -- dynamic validation set -----------------------------------------------------------------------


def test_validation_size_grows_from_20_to_50_percent() -> None:
    sizes = [validation_size(t, 11, 20) for t in range(11)]
    assert sizes[0] == 4 and sizes[-1] == 10
    assert sizes == sorted(sizes) and sizes[5] == 7  # linear: 35 % of 20 halfway
    cosine = [validation_size(t, 11, 20, growth="cosine") for t in range(11)]
    assert cosine[0] == 4 and cosine[-1] == 10 and cosine[5] == 7 and cosine[1] < sizes[1]
    assert [validation_size(t, 5, 3) for t in range(5)] == [1, 1, 1, 1, 2]  # 0.6 → 1 … 1.275 → 1, 1.5 → 2 (half up)
    assert validation_size(0, 5, 2) == 1 and validation_size(4, 5, 2) == 1  # both parts stay non-empty
    assert validation_size(0, 1, 1) == 1  # a single pair validates; the batch is then source-only
    assert validation_size(0, 3, 10, start=0.5, end=0.5) == validation_size(2, 3, 10, start=0.5, end=0.5) == 5


def test_validation_sizes_in_the_fit(make_pairs) -> None:
    adapter = ADL(**{**FAST, "steps": 7, "validation": "random"})
    report = adapter.fit(adapter.wrap(tiny_dncnn()), target=make_pairs(range(20), size=16),
                         source=[make_pairs(range(100, 104), size=16)], generator=torch.Generator().manual_seed(0))
    sizes = [h["val_size"] for h in report.history if h["stage"] == 2.0]
    assert sizes == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert report.extra["val_size"] == {"first": 4, "last": 10}


def test_diverse_iso_subset_spans_the_gains() -> None:
    isos = [100.0] * 4 + [3200.0] * 4
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        picked = diverse_iso_subset(isos, 2, generator)
        assert len(set(picked)) == 2 and {isos[i] for i in picked} == {100.0, 3200.0}
    # A uniform draw puts both in one ISO group about 3 times in 7; the diverse draw never does.
    uniform = [random_subset(8, 2, generator) for _ in range(50)]
    assert any(len({isos[i] for i in picked}) == 1 for picked in uniform)
    # Six distinct ISOs and k = 3: one from each third of the sorted ISO list, and the picks vary.
    levels = [100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0]
    draws = [sorted(levels[i] for i in diverse_iso_subset(levels, 3, generator)) for _ in range(60)]
    for low, mid, high in draws:
        assert low in (100.0, 200.0) and mid in (400.0, 800.0) and high in (1600.0, 3200.0)
    assert len({tuple(d) for d in draws}) > 4
    # k above the number of distinct ISOs: every ISO once, then the rest at random, no repeats.
    picked = diverse_iso_subset([100.0, 100.0, 100.0, 800.0], 3, generator)
    assert len(set(picked)) == 3 and 3 in picked


def test_validation_mode_auto_diverse_and_errors(make_pairs) -> None:
    def pairs(count: int, with_iso: bool = True) -> list[Sample]:
        out = make_pairs(range(count), size=16)
        for index, sample in enumerate(out):
            sample.cond = {"iso": float(100 * 2 ** (index % 3))} if with_iso else {}
        return out

    source = [make_pairs(range(100, 102), size=16)]

    def mode(target: list[Sample], **options) -> str:
        adapter = ADL(**{**FAST, **options})
        report = adapter.fit(adapter.wrap(tiny_dncnn()), target=target, source=source,
                             generator=torch.Generator().manual_seed(0))
        return report.extra["validation"]

    assert mode(pairs(6)) == "diverse_iso"  # fewer than 10 pairs, every one with an ISO
    assert mode(pairs(12)) == "random"
    assert mode(pairs(6, with_iso=False)) == "random"
    assert mode(pairs(6), validation="random") == "random"
    assert mode(pairs(12), validation="diverse_iso") == "diverse_iso"
    with pytest.raises(InvalidInputError, match="diverse_iso.*iso"):
        mode(pairs(6, with_iso=False), validation="diverse_iso")


# -- the queue ------------------------------------------------------------------------------------


def test_score_queue_bound_pop_rules_and_threshold() -> None:
    queue = ScoreQueue(3)
    assert queue.mean() == -math.inf and queue.accepts(-1e9)
    for value in (30.0, 31.0, 29.0, 32.0):
        queue.push(value)
    assert queue.values == [30.0, 31.0, 32.0]  # the smallest (29) left the full queue
    assert queue.mean() == 31.0 and queue.accepts(31.5) and not queue.accepts(31.0)
    assert not queue.accepts(float("nan"))
    fifo = ScoreQueue(3, pop="oldest")
    for value in (30.0, 31.0, 29.0, 32.0):
        fifo.push(value)
    assert fifo.values == [29.0, 31.0, 32.0]  # the oldest (30) left
    with pytest.raises(InvalidInputError, match="finite"):
        queue.push(float("inf"))
    with pytest.raises(InvalidInputError, match="queue_size"):
        ScoreQueue(0)
    with pytest.raises(InvalidInputError, match="queue_pop"):
        ScoreQueue(2, pop="newest")


def test_queue_is_seeded_with_the_starting_model_and_stays_bounded(make_pairs) -> None:
    target = make_pairs(range(2), size=16)
    model = tiny_dncnn(identity=False)
    with torch.no_grad():  # the starting model's PSNR on each (whole) target image
        start = [float(psnr(model(s.noisy).clamp(0, 1), s.clean, 1.0)) for s in target]
    adapter = ADL(**{**FAST, "pretrain_steps": 0, "steps": 12, "finetune_steps": 0, "queue_size": 2})
    report = adapter.fit(adapter.wrap(model), target=target, source=[make_pairs(range(100, 104), size=16)],
                         generator=torch.Generator().manual_seed(0))
    seed = report.extra["seed_psnr"]
    assert any(abs(seed - value) < 1e-9 for value in start)  # k = 1 of 2: one image's PSNR
    first = next(h for h in report.history if h["stage"] == 2.0)
    assert first["threshold"] == pytest.approx(seed)  # the queue holds only the seed at step 1
    assert len(report.extra["queue"]) <= 2
    accepted = [h["score"] for h in report.history if h.get("accepted") == 1.0]
    assert report.extra["queue"] == sorted([seed, *accepted])[-len(report.extra["queue"]):]


# -- report, conditions ---------------------------------------------------------------------------


def test_report_counts_per_domain_and_history(make_pairs) -> None:
    adapter = ADL(**{**FAST, "steps": 8})
    sources = [make_pairs(range(100, 103), size=16), make_pairs(range(200, 203), size=16, corrupt="roll")]
    report = adapter.fit(adapter.wrap(tiny_dncnn()), target=make_pairs(range(4), size=16), source=sources,
                         generator=torch.Generator().manual_seed(0))
    domains = report.extra["domains"]
    assert list(domains) == ["source0", "source1"]
    assert sum(c["accepted"] + c["rejected"] for c in domains.values()) == 8
    assert report.extra["accepted"] + report.extra["rejected"] == 8
    assert [h["stage"] for h in report.history] == [1.0] * 2 + [2.0] * 8 + [3.0] * 2
    last = [h for h in report.history if h["stage"] == 2.0][-1]
    for name, counts in domains.items():
        assert last[f"accepted/{name}"] == counts["accepted"] and last[f"rejected/{name}"] == counts["rejected"]
    assert report.steps == 12 and report.changed


class RecordingBackbone(Denoiser):
    """A one-convolution residual backbone that reads ``sensor``/``iso`` and records the batches' conditions."""

    name = "recording_test"
    conditions = frozenset({"sensor", "iso"})

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.seen: list[tuple[bool, dict]] = []

    def forward(self, noisy: torch.Tensor, cond=None) -> torch.Tensor:
        self.seen.append((torch.is_grad_enabled(), dict(cond or {})))
        return noisy + self.conv(noisy)

    def parameter_groups(self):
        return self.groups_from_modules(first=self.conv, last=self.conv, domain=[self.conv])


def test_conditions_are_collated_per_image_in_merged_batches(make_pairs) -> None:
    target = make_pairs(range(4), size=16, cond={"sensor": "camA", "iso": 800.0})
    source = {
        "camB": make_pairs(range(100, 103), size=16, cond={"sensor": "camB", "iso": 3200.0, "ignored": "x"}),
        "synthetic": make_pairs(range(200, 203), size=16),  # no metadata at all
    }
    model = RecordingBackbone()
    adapter = ADL(**{**FAST, "steps": 6, "batch_size": 3, "validation": "random"})
    adapter.fit(adapter.wrap(model), target=target, source=source, generator=torch.Generator().manual_seed(0))
    training = [cond for grad, cond in model.seen if grad]
    validation = [cond for grad, cond in model.seen if not grad]
    assert all(set(cond) <= {"sensor", "iso"} for _, cond in model.seen)  # only declared keys
    merged = [c for c in training if "camA" in c["sensor"] and len(set(c["sensor"])) > 1]
    assert merged, "stage-2 batches mix target and source crops"
    for cond in training:
        sensors, isos = cond["sensor"], cond["iso"]
        assert len(sensors) == len(isos)
        iso_list = isos.tolist() if isinstance(isos, torch.Tensor) else isos
        for sensor, iso in zip(sensors, iso_list):
            assert (sensor, iso) in {("camA", 800.0), ("camB", 3200.0), (None, None)}
    assert any(None in c["sensor"] for c in training)  # synthetic crops keep their place, as None
    assert validation and all(set(c["sensor"]) == {"camA"} for c in validation)


# -- errors ---------------------------------------------------------------------------------------


def test_errors_name_what_is_wrong(make_pairs) -> None:
    source = [make_pairs(range(100, 102), size=16)]
    target = make_pairs(range(3), size=16)
    adapter = ADL(**FAST)
    wrapped = adapter.wrap(tiny_dncnn())
    with pytest.raises(InvalidInputError, match="target set is empty"):
        adapter.fit(wrapped, target=[], source=source)
    unpaired = [Sample("lonely", target[0].noisy, None), *target[1:]]
    with pytest.raises(InvalidInputError, match="'lonely' has no clean image"):
        adapter.fit(wrapped, target=unpaired, source=source)
    with pytest.raises(InvalidInputError, match="source_pairs"):
        adapter.fit(wrapped, target=target)
    with pytest.raises(InvalidInputError, match="empty"):
        adapter.fit(wrapped, target=target, source={"nothing": []})
    with pytest.raises(InvalidInputError, match="unknown options.*'stepz'"):
        ADL(stepz=3)
    with pytest.raises(InvalidInputError, match="unknown options"):
        ADAPTERS.build({"type": "adl", "queue": 3})
    with pytest.raises(InvalidInputError, match="criterion"):
        ADL(criterion="best")
    with pytest.raises(InvalidInputError, match="val_start"):
        ADL(val_start=0.0)
    with pytest.raises(InvalidInputError, match="all 0"):
        ADL(pretrain_steps=0, steps=0, finetune_steps=0)
    with pytest.raises(InvalidInputError, match="parameter-free"):
        ADL().wrap(DENOISERS.build({"type": "nlmeans"}))
    with pytest.raises(InvalidInputError, match="role"):
        ADL(role="bottleneck").wrap(tiny_dncnn())
