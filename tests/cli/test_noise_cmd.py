"""``noiseshift noise``: noisy images and σ maps for inspecting a noise model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from noiseshift.cli import main
from noiseshift.cli.noise_cmd import image_seed
from noiseshift.image_io import read_image, write_image
from noiseshift.registry import NOISE_MODELS


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    generator = torch.Generator().manual_seed(0)
    for name in ("a", "b"):
        write_image(tmp_path / "in" / f"{name}.png", torch.rand(1, 3, 20, 24, generator=generator))
    return tmp_path / "in"


def test_noisy_images_and_sigma_maps_are_written(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["noise", "gaussian", str(inputs), "-o", str(out), "-O", "sigma=0.1", "--seed", "3",
                 "--bit-depth", "16"]) == 0
    for name in ("a", "b"):
        clean = read_image(inputs / f"{name}.png")
        expected = NOISE_MODELS.build({"type": "gaussian", "sigma": 0.1})(
            clean, torch.Generator().manual_seed(image_seed(3, name))).noisy.clamp(0, 1)
        assert (read_image(out / f"{name}.png") - expected).abs().max() <= 0.5 / 65535 + 1e-7
        sigma = read_image(out / f"{name}_sigma.png")  # 16-bit, one channel, value σ
        assert sigma.shape == (1, 1, 20, 24)
        assert torch.allclose(sigma, torch.full_like(sigma, round(0.1 * 65535) / 65535))
    summary = json.loads((out / "noise.json").read_text())
    assert summary["noise_model"] == "gaussian" and summary["config"]["sigma"] == 0.1
    assert [r["noisy"] for r in summary["images"]] == ["a.png", "b.png"]
    assert summary["images"][0]["meta"]["sigma"] == [pytest.approx(0.1)]


def test_an_image_gets_the_same_noise_whatever_else_is_processed(inputs: Path, tmp_path: Path) -> None:
    assert main(["noise", "mixture", str(inputs), "-o", str(tmp_path / "both"), "--format", "npy"]) == 0
    assert main(["noise", "mixture", str(inputs / "b.png"), "-o", str(tmp_path / "one"), "--format", "npy"]) == 0
    both, one = np.load(tmp_path / "both" / "b.npy"), np.load(tmp_path / "one" / "b.npy")
    assert both.dtype == np.float32 and both.shape == (20, 24, 3)
    assert np.array_equal(both, one)
    sigma = np.load(tmp_path / "one" / "b_sigma.npy")
    assert sigma.shape == (20, 24, 3) and (sigma >= 0).all()
    # npy keeps unclipped values, so it can hold noise beyond [0, 1].
    assert main(["noise", "gaussian", str(inputs / "a.png"), "-o", str(tmp_path / "strong"), "--format", "npy",
                 "-O", "sigma=0.5"]) == 0
    strong = np.load(tmp_path / "strong" / "a.npy")
    assert strong.min() < 0 and strong.max() > 1


def test_outputs_are_never_overwritten_without_the_flag(inputs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["noise", "gaussian", str(inputs), "-o", str(out)]) == 0
    before = (out / "a.png").read_bytes()
    assert main(["noise", "gaussian", str(inputs), "-o", str(out), "--seed", "9"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "a.png").read_bytes() == before
    assert main(["noise", "gaussian", str(inputs), "-o", str(out), "--seed", "9", "--overwrite"]) == 0
    assert (out / "a.png").read_bytes() != before


def test_unknown_models_and_options_are_reported(inputs: Path, tmp_path: Path, capsys) -> None:
    assert main(["noise", "gausian", str(inputs), "-o", str(tmp_path / "x")]) == 2
    assert "gaussian" in capsys.readouterr().err
    assert main(["noise", "gaussian", str(inputs), "-o", str(tmp_path / "x"), "-O", "sigma=-1"]) == 2
    assert main(["noise", "gaussian", str(tmp_path / "nope.png"), "-o", str(tmp_path / "x")]) == 2
