"""Training configs: --cfg-options parsing, _base_ merging, validation, the saved copy, shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

from noiseshift.errors import InvalidInputError
from noiseshift.registry import DENOISERS, NOISE_MODELS
from noiseshift.training import LRSchedule, build_optimizer, load_config, parse_cfg_options, save_config
from noiseshift.training.config import config_digest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for p in (ROOT / "configs").rglob("*.py") if "_base_" not in p.parts)


def test_cfg_options_parse_like_mmengine() -> None:
    parsed = parse_cfg_options([
        "optimizer.lr=1e-4", "train_cfg.ema=None", "progress=false", "train_noise.sigma=[0, 0.2]",
        "device=cuda:1", "model.type=dncnn", "names=a,b", "train_cfg.grad_clip=dict(max_norm=1)",
    ])
    assert parsed == {
        "optimizer.lr": 1e-4, "train_cfg.ema": None, "progress": False, "train_noise.sigma": [0, 0.2],
        "device": "cuda:1", "model.type": "dncnn", "names": ["a", "b"], "train_cfg.grad_clip": "dict(max_norm=1)",
    }
    for bad in ("lr", "=3", "a b=1", "x.=1"):
        with pytest.raises(InvalidInputError, match="key=value"):
            parse_cfg_options([bad])


def test_base_merging_overrides_defaults_and_validation(tmp_path: Path) -> None:
    (tmp_path / "base.py").write_text(
        "model = dict(type='dncnn', depth=5, width=16)\n"
        "train_dataloader = dict(batch_size=8, dataset=dict(type='synthetic', root='x', patch_size=32))\n"
        "optimizer = dict(type='Adam', lr=1e-3)\n"
    )
    (tmp_path / "child.py").write_text("_base_ = ['base.py']\nmodel = dict(width=8)\ntrain_cfg = dict(max_iters=7)\n")
    cfg = load_config(tmp_path / "child.py", ["optimizer.lr=5e-4", "train_dataloader.dataset.patch_size=24"])
    assert cfg.model == {"type": "dncnn", "depth": 5, "width": 8}
    assert cfg.optimizer["lr"] == 5e-4 and cfg.train_dataloader["dataset"]["patch_size"] == 24
    # Defaults are filled in below what the file sets.
    assert cfg.train_cfg["max_iters"] == 7 and cfg.train_cfg["loss"] == "l2"
    assert cfg.train_dataloader["num_workers"] == 0 and cfg.seed == 0

    (tmp_path / "typo.py").write_text("_base_ = ['base.py']\ntrain_cfg = dict(max_iter=7)\n")
    with pytest.raises(InvalidInputError, match=r"unknown key\(s\) \['max_iter'\] in train_cfg"):
        load_config(tmp_path / "typo.py")
    (tmp_path / "nomodel.py").write_text("optimizer = dict(type='Adam', lr=1)\n")
    with pytest.raises(InvalidInputError, match="no 'model'"):
        load_config(tmp_path / "nomodel.py")
    with pytest.raises(InvalidInputError, match="max_iters must be a positive integer"):
        load_config(tmp_path / "child.py", {"train_cfg.max_iters": 0})
    with pytest.raises(InvalidInputError, match="not found"):
        load_config(tmp_path / "missing.py")


def test_saved_config_reads_back_identically(tmp_path: Path) -> None:
    (tmp_path / "c.py").write_text(
        "model = dict(type='dncnn', depth=3, width=8)\n"
        "train_dataloader = dict(dataset=dict(type='synthetic', root='x', patch_size=16))\n"
        "train_noise = dict(type='gaussian', sigma=[0.0, 50 / 255])\n"
        "lr_schedule = dict(type='step', milestones=(10, 20))\n"
    )
    cfg = load_config(tmp_path / "c.py")
    saved = save_config(cfg, tmp_path / "out" / "config.py")
    again = load_config(saved)
    assert config_digest(again) == config_digest(cfg)
    assert again.train_noise["sigma"] == [0.0, 50 / 255]
    with pytest.raises(FileExistsError):
        save_config(cfg, saved)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_shipped_configs_resolve_and_their_components_build(path: Path) -> None:
    cfg = load_config(path)
    model = DENOISERS.build(dict(cfg.model))
    for key in ("train_noise", "val_noise"):
        if cfg[key] is not None:
            NOISE_MODELS.build(dict(cfg[key]))
    optimizer = build_optimizer(model.parameters(), cfg.optimizer)
    schedule = LRSchedule(cfg.lr_schedule, cfg.optimizer["lr"], cfg.train_cfg["max_iters"])
    assert schedule.apply(optimizer, 0) > 0
    assert cfg.train_dataloader["dataset"]["type"] in {"synthetic", "paired_folder"}
    assert isinstance(Config.fromfile(str(path)).filename, str)


def test_configs_folder_holds_the_expected_layout() -> None:
    names = {str(p.relative_to(ROOT / "configs")) for p in SHIPPED}
    assert {"dncnn/dncnn_cbsd432_gaussian_blind.py", "unet/unet_cbsd432_gaussian_blind.py",
            "default/dncnn_cbsd432_mixed.py"} <= names
    assert (ROOT / "configs" / "_base_" / "runtime.py").is_file()
