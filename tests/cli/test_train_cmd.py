"""``noiseshift train`` and ``tools/train.py``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import noiseshift
from noiseshift.cli import main
from noiseshift.image_io import write_image
from noiseshift.training import load_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    generator = torch.Generator().manual_seed(0)
    for folder, count in (("train", 3), ("val", 1)):
        for index in range(count):
            base = torch.rand(1, 3, 5, 5, generator=generator)
            image = torch.nn.functional.interpolate(base, size=(32, 32), mode="bicubic", align_corners=False)
            write_image(tmp_path / folder / f"i{index}.png", image.clamp(0, 1))
    path = tmp_path / "tiny.py"
    path.write_text(textwrap.dedent(f"""
        model = dict(type='dncnn', depth=3, width=8)
        train_dataloader = dict(batch_size=2, dataset=dict(type='synthetic', root={str(tmp_path / 'train')!r},
                                                           patch_size=16))
        train_noise = dict(type='gaussian', sigma=[0.0, 0.2])
        val_dataset = dict(root={str(tmp_path / 'val')!r})
        val_noise = dict(type='gaussian', sigma=0.1)
        train_cfg = dict(max_iters=4, val_interval=2)
        checkpoint = dict(interval=2, keep=1)
        log_interval = 1
    """))
    return path


def test_train_overrides_work_dir_and_resume(config: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    # mmengine style: several pairs after one --cfg-options.
    assert main(["train", str(config), "--work-dir", str(run), "--no-progress",
                 "--cfg-options", "optimizer.lr=0.005", "train_cfg.max_iters=3", "seed=5"]) == 0
    saved = load_config(run / "config.py")
    assert saved.optimizer["lr"] == 0.005 and saved.train_cfg["max_iters"] == 3 and saved.seed == 5
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["event"] == "train"] == [1, 2, 3]
    assert all(r["lr"] == pytest.approx(0.005) for r in records if r["event"] == "train")
    assert noiseshift.load(run / "best.safetensors").config()["width"] == 8
    assert "best validation" in capsys.readouterr().err

    # Refuses to start over an existing run; --resume extends it to the new length.
    assert main(["train", str(config), "--work-dir", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", str(config), "--work-dir", str(run), "--resume", "--no-progress",
                 "--cfg-options", "optimizer.lr=0.005", "--cfg-options", "train_cfg.max_iters=5", "seed=5"]) == 0
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["event"] == "train"] == [1, 2, 3, 4, 5]
    assert (run / "config_resume_00000003.py").is_file()


def test_train_reports_bad_configs_in_one_line(config: Path, tmp_path: Path, capsys) -> None:
    assert main(["train", str(config), "--work-dir", str(tmp_path / "r"), "--cfg-options", "train_cfg.max_iter=3"]) == 2
    assert "unknown key(s) ['max_iter'] in train_cfg" in capsys.readouterr().err
    assert main(["train", str(config), "stray"]) == 2
    assert main(["train", str(tmp_path / "missing.py")]) == 2


def test_tools_train_is_the_train_command() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "train.py"), "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "--cfg-options" in result.stdout and "--resume" in result.stdout and "--work-dir" in result.stdout
