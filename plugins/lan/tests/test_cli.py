"""LAN and its baselines through ``noiseshift denoise`` and ``noiseshift benchmark`` (with traces)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from noiseshift.api import DENOISERS, NOISE_MODELS, save
from noiseshift.cli import main
from noiseshift.image_io import read_image, write_image


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    weights = save(DENOISERS.build({"type": "dncnn", "depth": 3, "width": 8}), tmp_path / "tiny.safetensors")
    generator = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, 4, 4, generator=generator)
    clean = torch.nn.functional.interpolate(base, size=(24, 24), mode="bicubic", align_corners=False).clamp(0, 1)
    noisy = NOISE_MODELS.build({"type": "gaussian", "sigma": 0.1})(clean, generator).noisy.clamp(0, 1)
    write_image(tmp_path / "pairs" / "noisy" / "a.png", noisy)
    write_image(tmp_path / "pairs" / "clean" / "a.png", clean)
    return weights, tmp_path / "pairs"


def test_lan_through_denoise_and_benchmark(setup, tmp_path: Path, capsys) -> None:
    weights, pairs = setup
    out = tmp_path / "out"
    assert main(["denoise", str(pairs / "noisy"), "-o", str(out), "--model", str(weights), "--adapter", "lan",
                 "-O", "steps=2", "-O", "loss=nbr2nbr", "--trace"]) == 0
    assert read_image(out / "a.png").shape == (1, 3, 24, 24)
    trace = json.loads((out / "trace.json").read_text())
    assert trace["adapter"] == {"name": "lan", "config": {"steps": 2, "lr": 5e-4, "seed": 0, "loss": "nbr2nbr"}}
    assert [entry["step"] for entry in trace["images"]["a.png"]] == [1, 2]

    run = tmp_path / "run"
    assert main(["benchmark", "paired_folder", "--root", str(pairs), "--model", str(weights), "--adapter", "tt_last",
                 "-O", "steps=2", "--out", str(run), "--trace", "--json"]) == 0
    record = json.loads((run / "results.json").read_text())
    steps = record["items"][0]["trace"]
    assert [entry["step"] for entry in steps] == [0, 1, 2] and all("psnr" in entry for entry in steps)
    assert (run / "trace.json").is_file()
