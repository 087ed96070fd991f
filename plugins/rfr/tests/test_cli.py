"""RFR through ``noiseshift denoise`` and ``noiseshift benchmark`` (with traces)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from noiseshift.api import DENOISERS, NOISE_MODELS, save
from noiseshift.cli import main
from noiseshift.image_io import read_image, write_image


def test_rfr_through_denoise_and_benchmark(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    weights = save(DENOISERS.build({"type": "dncnn", "depth": 3, "width": 8}), tmp_path / "tiny.safetensors")
    generator = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, 4, 4, generator=generator)
    clean = torch.nn.functional.interpolate(base, size=(32, 32), mode="bicubic", align_corners=False).clamp(0, 1)
    noisy = NOISE_MODELS.build({"type": "gaussian", "sigma": 0.1})(clean, generator).noisy.clamp(0, 1)
    pairs = tmp_path / "pairs"
    write_image(pairs / "noisy" / "a.png", noisy)
    write_image(pairs / "clean" / "a.png", clean)

    out = tmp_path / "out"
    assert main(["denoise", str(pairs / "noisy"), "-o", str(out), "--model", str(weights), "--adapter", "rfr",
                 "-O", "steps=2", "-O", "crop=16", "-O", "noise={'type': 'gaussian', 'sigma': 0.1}"]) == 0
    assert read_image(out / "a.png").shape == (1, 3, 32, 32)

    run = tmp_path / "run"
    assert main(["benchmark", "paired_folder", "--root", str(pairs), "--model", str(weights), "--adapter", "rfr",
                 "-O", "steps=2", "-O", "lr=0.001", "--out", str(run), "--trace", "--report"]) == 0
    trace = json.loads((run / "trace.json").read_text())
    assert trace["adapter"]["name"] == "rfr" and [row["step"] for row in trace["mean"]] == [0, 1, 2]
    assert (run / "report_files" / "adaptation.png").is_file()
