"""The shipped default model: present in the package, loadable, used by `--model default`, and useful."""

from __future__ import annotations

import torch

import noiseshift
from noiseshift.cli.options import DEFAULT_MODEL_FILE, resolve_model
from noiseshift.metrics import psnr
from noiseshift.registry import NOISE_MODELS
from noiseshift.weights import read_metadata


def test_the_shipped_model_loads_and_records_how_it_was_trained() -> None:
    assert DEFAULT_MODEL_FILE.is_file(), "core/assets/default.safetensors is missing"
    model = noiseshift.load(DEFAULT_MODEL_FILE)
    meta = read_metadata(DEFAULT_MODEL_FILE)
    assert model.name == meta["type"] and meta["kind"] == "model"
    assert meta["extra"]["config"].startswith("configs/default/")
    assert DEFAULT_MODEL_FILE.stat().st_size < 8 * 2**20  # "a few MB"
    assert type(resolve_model("default")) is type(model)


def test_the_shipped_model_removes_most_of_blind_gaussian_and_poisson_gaussian_noise() -> None:
    from noiseshift.cli.demo_cmd import sample_image

    model = noiseshift.load(DEFAULT_MODEL_FILE).eval()
    clean = sample_image(96)
    for noise in ({"type": "gaussian", "sigma": 15 / 255}, {"type": "gaussian", "sigma": 40 / 255},
                  {"type": "poisson_gaussian", "sigma_s": 0.08, "sigma_c": 0.03}):
        noisy = NOISE_MODELS.build(noise)(clean, torch.Generator().manual_seed(0)).noisy
        with torch.no_grad():
            output = model(noisy).clamp(0, 1)
        gain = float(psnr(output, clean, 1.0) - psnr(noisy.clamp(0, 1), clean, 1.0))
        assert gain > 3.0, f"{noise}: only {gain:.2f} dB better than the noisy input"
