"""Tiny training setups: images generated in tmp_path, a 3-layer DnCNN of width 8, 16×16 crops."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from noiseshift.image_io import write_image


def smooth_image(seed: int, height: int = 40, width: int = 48, channels: int = 3) -> torch.Tensor:
    """A smooth random ``1×C×H×W`` image in [0, 1] (upsampled noise, so denoising has structure)."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(1, channels, 6, 6, generator=generator)
    return torch.nn.functional.interpolate(base, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def write_folder(folder: Path, count: int, seed: int = 0, **size: int) -> list[Path]:
    files = []
    for index in range(count):
        files.append(write_image(folder / f"img{index:02d}.png", smooth_image(seed * 1000 + index, **size)))
    return files


TINY_CONFIG = """
model = dict(type='dncnn', depth=3, width=8)
train_dataloader = dict(batch_size=4, num_workers=0,
                        dataset=dict(type='synthetic', root={train!r}, patch_size=16))
train_noise = dict(type='gaussian', sigma=[0.0, 50 / 255])
val_dataset = dict(root={val!r}, seed=0)
val_noise = dict(type='gaussian', sigma=25 / 255)
optimizer = dict(type='Adam', lr=1e-3)
lr_schedule = dict(type='cosine', min_lr=1e-5, warmup_iters=2)
train_cfg = dict(max_iters={iters}, val_interval=4, loss='l2', grad_clip=1.0, ema={ema})
checkpoint = dict(interval={interval}, keep=2)
log_interval = 2
progress = False
"""


@pytest.fixture
def tiny_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a tiny training config (and its image folders) and return its path."""
    train_dir, val_dir = tmp_path / "data" / "train", tmp_path / "data" / "val"
    write_folder(train_dir, 5, seed=1)
    write_folder(val_dir, 2, seed=2)

    def make(iters: int = 8, interval: int = 4, ema: str = "dict(decay=0.9)", extra: str = "", name: str = "tiny") -> Path:
        path = tmp_path / f"{name}.py"
        text = TINY_CONFIG.format(train=str(train_dir), val=str(val_dir), iters=iters, interval=interval, ema=ema)
        path.write_text(textwrap.dedent(text) + extra)
        return path

    return make
