"""Checkpoints: exact round trip, no pickle, incomplete or tampered checkpoints skipped, pruning."""

from __future__ import annotations

import json
from pathlib import Path

import torch

import noiseshift
from noiseshift.registry import DENOISERS
from noiseshift.training import ModelEMA, find_latest_checkpoint, load_checkpoint, save_checkpoint
from noiseshift.training.checkpoint import list_checkpoints, prune_checkpoints


def _trained(seed: int = 0):
    torch.manual_seed(seed)
    model = DENOISERS.build({"type": "dncnn", "depth": 3, "width": 4})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ema = ModelEMA(model, decay=0.9)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.rand(2, 3, 8, 8)).square().mean().backward()
        optimizer.step()
        ema.update(model)
    return model, optimizer, ema


def test_round_trip_restores_model_optimizer_ema_and_rng_exactly(tmp_path: Path) -> None:
    model, optimizer, ema = _trained(0)
    torch.manual_seed(123)
    paths = save_checkpoint(tmp_path, 3, model=model, optimizer=optimizer, ema=ema, training={"best": None})
    expected_draw = torch.rand(3)
    # The model file is an ordinary noiseshift weights file.
    assert torch.equal(noiseshift.load(paths.model).head[0].weight, model.head[0].weight)
    # Nothing pickled: the JSON is plain JSON and the tensors are safetensors.
    document = json.loads(paths.json.read_text())
    assert document["iteration"] == 3 and document["ema_updates"] == 3

    other, other_opt, other_ema = _trained(1)
    found = find_latest_checkpoint(tmp_path)
    assert found is not None and found[0].iteration == 3
    load_checkpoint(found[0], found[1], model=other, optimizer=other_opt, ema=other_ema)
    assert torch.equal(torch.rand(3), expected_draw)
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(ema.module.state_dict().values(), other_ema.module.state_dict().values()):
        assert torch.equal(a, b)
    ours, theirs = optimizer.state_dict(), other_opt.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    for index, state in ours["state"].items():
        for key, value in state.items():
            assert torch.equal(value, theirs["state"][index][key]), (index, key)
    # One more identical step keeps them identical.
    batch = torch.rand(2, 3, 8, 8)
    for m, o in ((model, optimizer), (other, other_opt)):
        o.zero_grad()
        m(batch).square().mean().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters()))


def test_incomplete_or_tampered_checkpoints_are_skipped(tmp_path: Path) -> None:
    model, optimizer, ema = _trained()
    for iteration in (2, 4, 6):
        save_checkpoint(tmp_path, iteration, model=model, optimizer=optimizer, ema=ema, training={})
    # Iteration 6 lost its JSON (killed while writing); iteration 4's state file was altered.
    (tmp_path / "iter_00000006.json").unlink()
    state = tmp_path / "iter_00000004.state.safetensors"
    data = bytearray(state.read_bytes())
    data[-1] ^= 0xFF
    state.write_bytes(bytes(data))
    found = find_latest_checkpoint(tmp_path)
    assert found is not None and found[0].iteration == 2
    assert find_latest_checkpoint(tmp_path / "nothing") is None


def test_pruning_keeps_the_newest(tmp_path: Path) -> None:
    model, optimizer, _ = _trained()
    for iteration in (1, 2, 3, 4):
        save_checkpoint(tmp_path, iteration, model=model, optimizer=optimizer, ema=None, training={})
    assert prune_checkpoints(tmp_path, keep=2) == [1, 2]
    assert [p.iteration for p in list_checkpoints(tmp_path)] == [3, 4]
    assert sorted(f.name for f in tmp_path.iterdir())[:3] == [
        "iter_00000003.json", "iter_00000003.safetensors", "iter_00000003.state.safetensors"]
    assert prune_checkpoints(tmp_path, keep=0) == []
