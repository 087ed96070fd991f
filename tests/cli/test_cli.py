"""The ``noiseshift`` command line: denoise, demo, list, plugins, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from noiseshift.cli import main
from noiseshift.image_io import read_image, write_image
from noiseshift.metrics import psnr
from noiseshift.registry import DENOISERS, NOISE_MODELS
from noiseshift.weights import save

ROOT = Path(__file__).resolve().parents[2]


def _noisy_pair(size: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, size // 8, size // 8, generator=generator)
    clean = torch.nn.functional.interpolate(base, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    noisy = NOISE_MODELS.build({"type": "gaussian", "sigma": 0.1})(clean, generator).noisy.clamp(0, 1)
    return noisy, clean


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, list[torch.Tensor]]:
    folder = tmp_path / "in"
    cleans = []
    for index in range(2):
        noisy, clean = _noisy_pair(seed=index)
        write_image(folder / f"img{index}.png", noisy)
        cleans.append(clean)
    return folder, cleans


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save(DENOISERS.build({"type": "dncnn", "depth": 4, "width": 8}), tmp_path / "small.safetensors")


def test_denoise_folder_with_a_classical_model_improves_psnr(images, tmp_path: Path, capsys) -> None:
    folder, cleans = images
    out = tmp_path / "out"
    assert main(["denoise", str(folder), "-o", str(out), "--model", "bm3d", "-O", "sigma=0.1"]) == 0
    for index, clean in enumerate(cleans):
        result = read_image(out / f"img{index}.png")
        noisy = read_image(folder / f"img{index}.png")
        assert result.shape == clean.shape
        assert float(psnr(result, clean, 1.0)) > float(psnr(noisy, clean, 1.0)) + 3


def test_tiled_and_untiled_outputs_agree(images, weights, tmp_path: Path) -> None:
    # The 4-layer DnCNN sees 4 pixels to each side: a margin of 4 makes tiling exact.
    folder, _ = images
    assert main(["denoise", str(folder), "-o", str(tmp_path / "plain"), "--model", str(weights),
                 "--bit-depth", "16"]) == 0
    assert main(["denoise", str(folder), "-o", str(tmp_path / "tiled"), "--model", str(weights),
                 "--tile", "24", "--overlap", "10", "--tile-margin", "4", "--bit-depth", "16"]) == 0
    for name in ("img0.png", "img1.png"):
        plain = read_image(tmp_path / "plain" / name)
        tiled = read_image(tmp_path / "tiled" / name)
        assert float((plain - tiled).abs().max()) <= 2 / 65535


def test_official_checkpoints_need_and_accept_a_model_type(images, tmp_path: Path, capsys) -> None:
    folder, _ = images
    torch.manual_seed(0)
    model = DENOISERS.build({"type": "dncnn", "depth": 4, "width": 8})
    checkpoint = tmp_path / "official.pth"
    torch.save({"params": model.state_dict()}, checkpoint)
    out = str(tmp_path / "o")
    assert main(["denoise", str(folder), "-o", out, "--model", str(checkpoint)]) == 2
    assert "--model-type" in capsys.readouterr().err
    assert main(["denoise", str(folder), "-o", out, "--model", str(checkpoint), "--model-type", "dncnn",
                 "-O", "depth=4", "-O", "width=8"]) == 0
    with torch.no_grad():
        expected = model.eval()(read_image(folder / "img0.png")).clamp(0, 1)
    assert float((read_image(tmp_path / "o" / "img0.png") - expected).abs().max()) <= 1 / 255


def test_existing_outputs_are_never_silently_overwritten(images, weights, tmp_path: Path, capsys) -> None:
    folder, _ = images
    out = tmp_path / "out"
    assert main(["denoise", str(folder / "img0.png"), "-o", str(out), "--model", str(weights)]) == 0
    first = (out / "img0.png").read_bytes()
    assert main(["denoise", str(folder), "-o", str(out), "--model", str(weights)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert not (out / "img1.png").exists()
    assert main(["denoise", str(folder), "-o", str(out), "--model", str(weights), "--skip-existing"]) == 0
    assert (out / "img1.png").exists() and (out / "img0.png").read_bytes() == first
    assert main(["denoise", str(folder), "-o", str(out), "--model", str(weights), "--overwrite"]) == 0


def test_bad_models_inputs_and_options_give_one_clear_line(images, tmp_path: Path, capsys) -> None:
    folder, _ = images
    out = str(tmp_path / "o")
    assert main(["denoise", str(folder), "-o", out, "--model", "dncnn"]) == 2
    assert "trainable network; pass its weights file" in capsys.readouterr().err
    assert main(["denoise", str(folder), "-o", out, "--model", "bm3dd"]) == 2
    assert "Did you mean 'bm3d'" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG not really")
    assert main(["denoise", str(corrupt), "-o", out, "--model", "bm3d"]) == 2
    assert "corrupt.png" in capsys.readouterr().err
    assert main(["denoise", str(folder), "-o", out, "--model", "bm3d", "-O", "colour=1"]) == 2
    assert "unknown option(s) ['colour']" in capsys.readouterr().err
    assert main(["denoise", str(folder), "-o", out, "--model", "bm3d", "-O", "novalue"]) == 2
    assert main(["denoise", str(tmp_path / "missing.png"), "-o", out]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["denoise", str(folder), "-o", out, "--model", "bm3d", "--adapter", "finetune"]) == 2
    assert "fit it first" in capsys.readouterr().err


def test_list_and_plugins_json_describe_the_builtins(capsys) -> None:
    assert main(["list", "denoisers", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert {"dncnn", "unet", "bm3d", "nlmeans"} <= set(rows)
    assert rows["bm3d"]["trainable"] is False and rows["bm3d"]["conditions"] == ["sigma"]
    assert rows["dncnn"]["plugin"] == "noiseshift"
    assert main(["list", "adapters", "--json"]) == 0
    adapters = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert adapters["finetune"]["needs"] == ["target_pairs"]
    assert main(["plugins", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["noiseshift"]["status"] == "builtin"
    assert "dncnn" in records["noiseshift"]["provides"]["denoisers"]
    assert main(["list", "gizmos"]) == 2


def test_demo_writes_images_and_prints_psnr_without_overwriting(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--size", "64"]) == 0
    printed = capsys.readouterr().out
    assert "PSNR" in printed
    scores = json.loads((out / "scores.json").read_text())
    assert scores["scores"]["denoised"]["psnr"] > scores["scores"]["noisy"]["psnr"] + 3
    for name in ("clean", "noisy", "denoised", "side_by_side"):
        assert (out / f"{name}.png").stat().st_size > 0
    assert main(["demo", "-o", str(out), "--size", "64"]) == 0
    assert (tmp_path / "demo-2" / "scores.json").exists()


def test_tools_run_is_a_thin_wrapper_over_denoise(images, tmp_path: Path) -> None:
    folder, _ = images
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "run.py"), str(folder / "img0.png"), "-o", str(tmp_path / "r"),
         "--model", "bm3d", "-O", "sigma=0.1"], capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r" / "img0.png").exists()


def test_conditions_from_the_command_line_reach_the_backbone(images, tmp_path: Path) -> None:
    folder, _ = images
    out_known, out_cond = tmp_path / "a", tmp_path / "b"
    # BM3D reads cond["sigma"] when it has no sigma of its own: -C sigma=0.1 must equal -O sigma=0.1.
    assert main(["denoise", str(folder / "img0.png"), "-o", str(out_known), "--model", "bm3d", "-O", "sigma=0.1"]) == 0
    assert main(["denoise", str(folder / "img0.png"), "-o", str(out_cond), "--model", "bm3d", "-C", "sigma=0.1"]) == 0
    assert torch.equal(read_image(out_known / "img0.png"), read_image(out_cond / "img0.png"))


def test_denoise_with_a_test_time_adapter_writes_a_trace(images, weights, tmp_path: Path, capsys,
                                                          last_layer_tuning) -> None:
    from noiseshift.testing import temporary_plugin

    folder, _ = images
    out = tmp_path / "out"
    with temporary_plugin(last_layer_tuning("cli_tuning_test"), name="cli_trace_test"):
        args = ["denoise", str(folder / "img0.png"), "-o", str(out), "--model", str(weights), "--adapter",
                "cli_tuning_test", "-O", "steps=3", "-O", "lr=0.01", "--trace"]
        assert main(args) == 0
        trace = json.loads((out / "trace.json").read_text())
        assert trace["adapter"]["name"] == "cli_tuning_test" and trace["adapter"]["config"]["steps"] == 3
        assert [entry["step"] for entry in trace["images"]["img0.png"]] == [1, 2, 3]
        assert all("loss" in entry and "psnr" not in entry for entry in trace["images"]["img0.png"])
        assert [row["step"] for row in trace["mean"]] == [1, 2, 3]
        capsys.readouterr()
        assert main(args) == 2  # trace.json is an output like the images: never silently replaced
        assert "exist" in capsys.readouterr().err
        # --skip-existing keeps the traces of the images it skips and adds the new ones
        assert main([args[0], str(folder / "img0.png"), str(folder / "img1.png"), *args[2:], "--skip-existing"]) == 0
        trace = json.loads((out / "trace.json").read_text())
        assert sorted(trace["images"]) == ["img0.png", "img1.png"]
    assert main(["denoise", str(folder / "img0.png"), "-o", str(tmp_path / "x"), "--model", "bm3d", "--trace"]) == 2
    assert "test-time adapter" in capsys.readouterr().err
