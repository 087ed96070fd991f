"""The core trainer with AINDNet and the aindnet_synthetic loss (true noise map + estimated map)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from noiseshift.api import InvalidInputError
from noiseshift.image_io import write_image
from noiseshift.training import Trainer
from noiseshift_ain_transfer import AINDNet


def _config(tmp_path: Path, model: dict) -> dict:
    generator = torch.Generator().manual_seed(0)
    for index in range(3):
        base = torch.rand(1, 3, 6, 6, generator=generator)
        image = torch.nn.functional.interpolate(base, size=(40, 40), mode="bicubic", align_corners=False)
        write_image(tmp_path / "clean" / f"img{index}.png", image.clamp(0, 1))
    return {
        "model": model,
        "train_dataloader": {"batch_size": 2, "num_workers": 0,
                             "dataset": {"type": "synthetic", "root": str(tmp_path / "clean"), "patch_size": 16}},
        "train_noise": {"type": "cbdnet"},  # returns the σ map the estimation loss needs
        "optimizer": {"type": "Adam", "lr": 1e-3},
        "train_cfg": {"max_iters": 2, "loss": "aindnet_synthetic"},
        "log_interval": 1,
        "progress": False,
        "device": "cpu",
    }


def test_two_iterations_with_the_synthetic_objective(tmp_path: Path) -> None:
    model = {"type": "aindnet", "preset": "tiny"}
    result = Trainer(_config(tmp_path, model), work_dir=tmp_path / "run").train()
    assert result.iterations == 2
    events = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in events if e["event"] == "train"]
    assert len(losses) == 2 and all(loss > 0 and loss == loss for loss in losses)
    # The estimator was trained (it gets gradients from the reconstruction and estimation terms).
    torch.manual_seed(0)
    initial = AINDNet(preset="tiny").state_dict()
    final = load_file(str(result.final))
    assert any(not torch.equal(final[k], initial[k]) for k in initial if k.startswith("estimator."))


def test_a_backbone_without_a_noise_estimate_is_refused(tmp_path: Path) -> None:
    model = {"type": "dncnn", "depth": 3, "width": 8}
    with pytest.raises(InvalidInputError, match=r"aux_outputs\['sigma'\]"):
        Trainer(_config(tmp_path, model), work_dir=tmp_path / "run").train()
