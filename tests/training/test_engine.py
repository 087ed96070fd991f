"""The training loop: outputs, reproducibility, resume after a kill, guards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import noiseshift
from noiseshift.errors import OutputExistsError
from noiseshift.metrics import psnr
from noiseshift.training import Trainer, TrainingError, ValidationSet, load_config
from noiseshift.training.config import config_digest


class Killed(Exception):
    """Stands in for SIGKILL inside the process."""


def _kill_at(iteration: int):
    def hook(trainer: Trainer, done: int) -> None:
        if done == iteration:
            raise Killed
    return hook


def _same_tensors(a: Path, b: Path) -> bool:
    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_a_run_writes_config_log_checkpoints_best_and_final(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(iters=8, interval=4)
    result = Trainer(config, work_dir=tmp_path / "run").train()
    run = tmp_path / "run"
    assert result.iterations == 8 and result.final == run / "final.safetensors"
    # The resolved config is saved and reads back as the same config.
    saved = load_config(run / "config.py")
    assert config_digest(saved) == config_digest(load_config(config, {"work_dir": str(run)}))
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["iter"] for e in events if e["event"] == "train"] == [2, 4, 6, 8]
    assert [e["iter"] for e in events if e["event"] == "val"] == [4, 8]
    assert all(e["lr"] > 0 and e["loss"] > 0 for e in events if e["event"] == "train")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "iter_00000004.json", "iter_00000004.safetensors", "iter_00000004.state.safetensors",
        "iter_00000008.json", "iter_00000008.safetensors", "iter_00000008.state.safetensors",
    ]
    # best.safetensors rebuilds with noiseshift.load and scores what the log says it scored.
    best = noiseshift.load(run / "best.safetensors")
    assert best.config()["depth"] == 3
    cfg = load_config(config)
    valset = ValidationSet(cfg.val_dataset["root"], cfg.val_noise, seed=0)
    scores = []
    with torch.no_grad():
        for _, noisy, clean in valset:
            scores.append(float(psnr(best(noisy).clamp(0, 1), clean, 1.0)))
    assert sum(scores) / len(scores) == pytest.approx(result.best_metrics["psnr"], abs=1e-6)
    # A checkpoint's model file is a plain noiseshift model file too.
    assert isinstance(noiseshift.load(run / "checkpoints" / "iter_00000008.safetensors"), torch.nn.Module)


def test_training_learns(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(iters=40, interval=0, ema="None")
    result = Trainer(config, work_dir=tmp_path / "run", cfg_options={
        "train_cfg.val_interval": 10, "optimizer.lr": 1e-2, "train_cfg.grad_clip": None}).train()
    first, last = result.history[0]["psnr"], result.history[-1]["psnr"]
    assert last > first + 3.0, result.history


def test_killed_run_resumes_to_bitwise_identical_weights(tiny_config, tmp_path: Path) -> None:
    # Kill between checkpoints (checkpoint at 4, killed after 6): iterations 5-6 are redone.
    config = tiny_config(iters=10, interval=4)
    Trainer(config, work_dir=tmp_path / "straight").train()
    with pytest.raises(Killed):
        Trainer(config, work_dir=tmp_path / "resumed", hooks=[_kill_at(6)]).train()
    assert not (tmp_path / "resumed" / "final.safetensors").exists()
    result = Trainer(config, work_dir=tmp_path / "resumed", resume=True).train()
    assert result.resumed_from == 4
    for name in ("final.safetensors", "best.safetensors", "checkpoints/iter_00000010.safetensors",
                 "checkpoints/iter_00000010.state.safetensors"):
        assert _same_tensors(tmp_path / "straight" / name, tmp_path / "resumed" / name), name
    # The log of the resumed run has no records of the lost iterations 5-6 twice.
    events = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert [e["iter"] for e in events if e["event"] == "train"] == [2, 4, 6, 8, 10]


@pytest.mark.slow
def test_sigkilled_cli_run_resumes_to_bitwise_identical_weights(tiny_config, tmp_path: Path) -> None:
    from noiseshift.cli import main

    config = tiny_config(iters=12, interval=2, name="killme")
    # Same thread count as this process: CPU results are bitwise reproducible per thread count.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    process = subprocess.Popen(
        [sys.executable, "-m", "noiseshift.cli", "train", str(config), "--work-dir", str(tmp_path / "killed")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    first = tmp_path / "killed" / "checkpoints" / "iter_00000002.json"
    deadline = time.monotonic() + 60
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "final.safetensors").exists()
    assert main(["train", str(config), "--work-dir", str(tmp_path / "killed"), "--resume"]) == 0
    assert main(["train", str(config), "--work-dir", str(tmp_path / "straight")]) == 0
    for name in ("final.safetensors", "best.safetensors", "checkpoints/iter_00000012.state.safetensors"):
        assert _same_tensors(tmp_path / "straight" / name, tmp_path / "killed" / name), name


def test_an_existing_run_is_never_restarted_over(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(iters=2, interval=2)
    Trainer(config, work_dir=tmp_path / "run").train()
    with pytest.raises(OutputExistsError, match="--resume"):
        Trainer(config, work_dir=tmp_path / "run").train()
    # Resuming a finished run is a no-op that leaves the weights alone.
    before = load_file(str(tmp_path / "run" / "final.safetensors"))
    Trainer(config, work_dir=tmp_path / "run", resume=True).train()
    after = load_file(str(tmp_path / "run" / "final.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resume_without_checkpoint_starts_fresh(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(iters=3, interval=3)
    # Killed before its first checkpoint: --resume starts over and the log shows one run.
    with pytest.raises(Killed):
        Trainer(config, work_dir=tmp_path / "run", hooks=[_kill_at(2)]).train()
    result = Trainer(config, work_dir=tmp_path / "run", resume=True).train()
    assert result.resumed_from == 0 and result.final.exists()
    events = [json.loads(line)["event"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert events.count("start") == 1 and "resume" not in events


def test_diverging_training_stops_with_a_clear_error(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(iters=4, interval=4, ema="None")
    # Noise of σ = 1e30 makes the loss overflow to inf in the first iteration.
    with pytest.raises(TrainingError, match="iteration 1: training diverged, the loss is inf"):
        Trainer(config, work_dir=tmp_path / "run",
                cfg_options={"train_noise.sigma": 1e30, "train_cfg.grad_clip": None}).train()


def test_a_corrupt_training_image_is_reported_by_name_before_anything_is_written(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(iters=2)
    bad = tmp_path / "data" / "train" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(noiseshift.api.ImageReadError, match="broken.png"):
        Trainer(config, work_dir=tmp_path / "run").train()
    assert not (tmp_path / "run" / "log.jsonl").exists()
