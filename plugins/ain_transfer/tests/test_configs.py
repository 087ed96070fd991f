"""Every config under configs/ain_transfer/ loads and builds its model, noise models and loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from noiseshift.api import DENOISERS, LOSSES, NOISE_MODELS
from noiseshift.training import LRSchedule, build_optimizer, load_config

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = sorted((ROOT / "configs" / "ain_transfer").glob("*.py"))
CRF_DIR = ROOT.parent / "shared" / "data" / "crf"


def test_the_configs_are_there() -> None:
    if not (ROOT / "configs").is_dir():
        pytest.skip(f"no configs/ folder next to the plugin (installed outside the repository?): {ROOT}")
    assert {p.name for p in CONFIGS} >= {"aindnet_cbsd432_cbdnet.py", "aindnet_small_cbsd432_cbdnet.py"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_builds(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # data paths in configs are relative to the repository root
    cfg = load_config(path)
    assert cfg.model["type"] == "aindnet"
    with torch.device("meta"):  # shapes only: the paper preset has 13.8 M parameters
        model = DENOISERS.build(dict(cfg.model))
    expected = {"paper": 13_764_014, "small": 403_518}[cfg.model["preset"]]
    assert sum(p.numel() for p in model.parameters()) == expected
    loss = cfg.train_cfg["loss"]
    assert LOSSES.lookup(loss if isinstance(loss, str) else loss["type"]).needs_noise_map
    assert cfg.train_dataloader["dataset"]["type"] == "synthetic"
    assert cfg.train_dataloader["dataset"]["patch_size"] % model.size_multiple == 0
    schedule = LRSchedule(cfg.lr_schedule, cfg.optimizer["lr"], cfg.train_cfg["max_iters"])
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg.optimizer)
    assert schedule.apply(optimizer, 0) > 0
    for key in ("train_noise", "val_noise"):
        assert cfg[key]["type"] == "cbdnet"
        if not CRF_DIR.is_dir():
            pytest.skip(f"the DoRF curves the config names are not at {CRF_DIR} (shared data absent)")
        noise = NOISE_MODELS.build(dict(cfg[key]))
        sample = noise(torch.full((1, 3, 8, 8), 0.5), torch.Generator().manual_seed(0))
        assert sample.sigma is not None and sample.sigma.shape == (1, 3, 8, 8)
