"""``noiseshift adapt adl`` end to end: folders of pairs in, a domain head and a fit report out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from noiseshift.api import DENOISERS, apply_head, load, save
from noiseshift.image_io import write_image

cli = pytest.importorskip("noiseshift.cli")


def _folder(root: Path, make_pairs, seeds: range) -> Path:
    for sample in make_pairs(seeds, size=24):
        write_image(root / "noisy" / f"{sample.key}.png", sample.noisy)
        write_image(root / "clean" / f"{sample.key}.png", sample.clean)
    return root


def test_adapt_adl_writes_a_head_and_per_domain_counts(tmp_path: Path, make_pairs, capsys) -> None:
    torch.manual_seed(0)
    weights = save(DENOISERS.build({"type": "dncnn", "depth": 3, "width": 8}), tmp_path / "tiny.safetensors")
    target = _folder(tmp_path / "cam", make_pairs, range(3))
    source_a = _folder(tmp_path / "other_cam", make_pairs, range(10, 13))
    source_b = _folder(tmp_path / "synthetic", make_pairs, range(20, 23))
    out = tmp_path / "adapted.safetensors"
    code = cli.main([
        "adapt", "adl", "--model", str(weights), "--target", str(target),
        "--source", str(source_a), "--source", str(source_b),
        "-O", "pretrain_steps=2", "-O", "steps=4", "-O", "finetune_steps=2", "-O", "batch_size=2",
        "-O", "patch_size=16", "-O", "lr=0.001", "-o", str(out),
    ])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["domains"]) == {"other_cam", "synthetic"}
    assert sum(c["accepted"] + c["rejected"] for c in printed["domains"].values()) == 4
    report = json.loads(out.with_suffix(".fit.json").read_text())
    assert report["adapter"] == "adl" and report["adapter_config"]["steps"] == 4
    assert len(report["history"]) == 8 and "accepted/other_cam" in report["history"][3]
    adapted = load(weights)
    meta = apply_head(adapted, out)
    assert meta["adapter"] == "adl"
    base = load(weights).state_dict()
    assert any(not torch.equal(value, base[key]) for key, value in adapted.state_dict().items())
