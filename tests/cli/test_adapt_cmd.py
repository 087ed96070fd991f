"""``noiseshift adapt``: fit a data-driven adapter from a folder or benchmark spec and save it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from noiseshift.cli import main
from noiseshift.image_io import write_image
from noiseshift.registry import DENOISERS, NOISE_MODELS
from noiseshift.weights import load, read_metadata, save


def _write_pairs(root: Path, count: int, seed: int, sigma: float = 0.1) -> Path:
    generator = torch.Generator().manual_seed(seed)
    noise = NOISE_MODELS.build({"type": "gaussian", "sigma": sigma})
    for index in range(count):
        base = torch.rand(1, 3, 4, 4, generator=generator)
        clean = torch.nn.functional.interpolate(base, size=(32, 32), mode="bicubic", align_corners=False).clamp(0, 1)
        write_image(root / "noisy" / f"img{index}.png", noise(clean, generator).noisy.clamp(0, 1))
        write_image(root / "clean" / f"img{index}.png", clean)
    return root


@pytest.fixture
def base(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = DENOISERS.build({"type": "dncnn", "depth": 3, "width": 8})
    return save(model, tmp_path / "base.safetensors")


def test_finetune_head_from_a_folder_applies_with_denoise(base: Path, tmp_path: Path, capsys) -> None:
    target = _write_pairs(tmp_path / "target", 2, seed=1)
    head = tmp_path / "head.safetensors"
    code = main(["adapt", "finetune", "--model", str(base), "--target-root", str(target), "-O", "role='last'",
                 "-O", "steps=3", "-O", "batch_size=2", "-O", "patch_size=16", "-o", str(head)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    original = load(base)
    last_ids = {id(p) for p in original.parameters_for("last")}
    last_names = {name for name, p in original.named_parameters() if id(p) in last_ids}
    assert summary["steps"] == 3 and summary["changed_tensors"] == len(last_names)
    meta = read_metadata(head)
    assert meta["kind"] == "head" and meta["adapter"] == "finetune" and meta["adapter_config"]["role"] == "last"
    record = json.loads(head.with_suffix(".fit.json").read_text())
    assert len(record["history"]) == 3 and record["target"] == str(target)

    adapted = load(base, head=head)
    changed = {k for k, v in adapted.state_dict().items() if not torch.equal(v, original.state_dict()[k])}
    assert changed == last_names

    out_dir = tmp_path / "out"
    assert main(["denoise", str(target / "noisy" / "img0.png"), "-o", str(out_dir), "--model", str(base),
                 "--head", str(head)]) == 0
    assert (out_dir / "img0.png").is_file()


def test_existing_output_is_refused_before_any_work(base: Path, tmp_path: Path, capsys) -> None:
    target = _write_pairs(tmp_path / "target", 1, seed=1)
    head = tmp_path / "head.safetensors"
    head.write_bytes(b"keep me")
    code = main(["adapt", "finetune", "--model", str(base), "--target", str(target), "-o", str(head)])
    assert code == 2 and "exists" in capsys.readouterr().err
    assert head.read_bytes() == b"keep me"


def test_full_model_output_and_benchmark_spec_with_filters(base: Path, tmp_path: Path, capsys) -> None:
    target = _write_pairs(tmp_path / "target", 3, seed=2)
    out = tmp_path / "adapted.safetensors"
    spec = f"paired_folder:root={target},limit=2"
    code = main(["adapt", "finetune", "--model", str(base), "--target", spec, "-O", "steps=2", "-O", "batch_size=1",
                 "-O", "patch_size=16", "-o", str(out), "--full"])
    assert code == 0
    assert "(2 pairs)" in " ".join(capsys.readouterr().err.split())
    model = load(out)
    assert model.name == "dncnn" and read_metadata(out)["extra"]["adapter"] == "finetune"


def test_usage_errors_are_specific(base: Path, tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "h.safetensors")
    assert main(["adapt", "finetune", "--model", str(base), "-o", out]) != 0
    assert "needs a target domain" in capsys.readouterr().err
    assert main(["adapt", "lan", "--model", str(base), "--target", str(tmp_path), "-o", out]) == 2
    assert "per image at test time" in capsys.readouterr().err
    assert main(["adapt", "finetune", "--model", str(base), "--target", "nosuchbench:x=1", "-o", out]) == 2
    assert "nosuchbench" in capsys.readouterr().err
    assert main(["adapt", "finetune", "--model", "bm3d", "--target", str(tmp_path), "-o", out]) != 0
