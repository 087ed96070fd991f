"""LR schedules, optimiser building and the EMA."""

from __future__ import annotations

import math

import pytest
import torch

from noiseshift.errors import InvalidInputError
from noiseshift.registry import DENOISERS
from noiseshift.training import LRSchedule, ModelEMA, build_optimizer


def test_schedules_follow_their_definitions() -> None:
    cosine = LRSchedule({"type": "cosine", "min_lr": 1e-4}, base_lr=1e-2, max_iters=100)
    assert cosine.factor(0) == 1.0
    assert cosine.factor(50) == pytest.approx(0.01 + 0.99 * 0.5)
    assert cosine.factor(100) == pytest.approx(0.01) and cosine.factor(500) == pytest.approx(0.01)
    step = LRSchedule({"type": "step", "milestones": [10, 20], "gamma": 0.5}, base_lr=1.0, max_iters=30)
    assert [step.factor(t) for t in (0, 9, 10, 19, 20, 29)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    warm = LRSchedule({"type": "constant", "warmup_iters": 4, "warmup_ratio": 0.2}, base_lr=1.0, max_iters=10)
    assert [warm.factor(t) for t in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])


def test_schedule_sets_every_group_from_its_own_base_lr() -> None:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}], lr=1.0)
    schedule = LRSchedule({"type": "cosine"}, base_lr=1.0, max_iters=10)
    for t in (3, 7, 3):  # stateless: going back gives the same values
        schedule.apply(optimizer, t)
        factor = 0.5 * (1 + math.cos(math.pi * t / 10))
        assert optimizer.param_groups[0]["lr"] == pytest.approx(factor)
        assert optimizer.param_groups[1]["lr"] == pytest.approx(0.1 * factor)


def test_bad_schedule_and_optimizer_options_are_named() -> None:
    with pytest.raises(InvalidInputError, match="known: \\['constant', 'cosine', 'step'\\]"):
        LRSchedule({"type": "poly"}, 1.0, 10)
    with pytest.raises(InvalidInputError, match="unknown option\\(s\\) \\['min_lr'\\]"):
        LRSchedule({"type": "step", "min_lr": 0}, 1.0, 10)
    params = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(InvalidInputError, match="not a torch.optim optimiser"):
        build_optimizer(params, {"type": "Adamm", "lr": 1})
    with pytest.raises(InvalidInputError, match="unknown option\\(s\\) \\['momentum'\\]"):
        build_optimizer(params, {"type": "Adam", "lr": 1, "momentum": 0.9})
    adam = build_optimizer(params, {"type": "AdamW", "lr": 1e-3, "betas": [0.8, 0.9]})
    assert isinstance(adam, torch.optim.AdamW) and adam.param_groups[0]["betas"] == (0.8, 0.9)


def test_ema_averages_parameters_and_copies_buffers() -> None:
    torch.manual_seed(0)
    model = DENOISERS.build({"type": "dncnn", "depth": 3, "width": 4})
    ema = ModelEMA(model, decay=0.9, warmup=False)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for param in model.parameters():
            param.add_(1.0)
        model(torch.rand(2, 3, 8, 8))  # train mode: updates the BN running statistics
    model.train()
    model(torch.rand(2, 3, 8, 8))
    ema.update(model)
    shadow = ema.module.state_dict()
    for name, param in model.named_parameters():
        assert torch.allclose(shadow[name], 0.9 * start[name] + 0.1 * param.detach(), atol=1e-6)
    for name, buffer in model.named_buffers():
        assert torch.equal(shadow[name], buffer)
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_ema_warmup_ramps_the_decay() -> None:
    ema = ModelEMA(torch.nn.Linear(1, 1), decay=0.999)
    decays = []
    for _ in range(3):
        decays.append(ema.current_decay())
        ema.update(torch.nn.Linear(1, 1))
    assert decays == pytest.approx([1 / 10, 2 / 11, 3 / 12])
    with pytest.raises(InvalidInputError):
        ModelEMA(torch.nn.Linear(1, 1), decay=1.0)
