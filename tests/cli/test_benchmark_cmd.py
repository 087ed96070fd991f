"""``noiseshift benchmark``: end to end on a tiny paired folder, JSON, report, options, errors."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from noiseshift.cli import main
from noiseshift.image_io import write_image
from noiseshift.metrics import psnr
from noiseshift.registry import NOISE_MODELS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    """Two 32×32 smooth images with σ = 0.1 noise in root/noisy and root/clean."""
    root = tmp_path / "pairs"
    for index in range(2):
        generator = torch.Generator().manual_seed(index)
        base = torch.rand(1, 3, 4, 4, generator=generator)
        clean = torch.nn.functional.interpolate(base, size=(32, 32), mode="bicubic", align_corners=False).clamp(0, 1)
        noisy = NOISE_MODELS.build({"type": "gaussian", "sigma": 0.1})(clean, generator).noisy.clamp(0, 1)
        write_image(root / "noisy" / f"img{index}.png", noisy)
        write_image(root / "clean" / f"img{index}.png", clean)
    return root


def _json(text: str) -> dict:
    return json.loads(text[text.index("{"):])


def test_bm3d_on_a_paired_folder_end_to_end(pairs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["benchmark", "paired_folder", "--root", str(pairs), "--model", "bm3d", "-O", "sigma=0.1",
                 "--out", str(out), "--json", "--save-images", "--report"])
    assert code == 0
    printed = _json(capsys.readouterr().out)
    saved = json.loads((out / "results.json").read_text())
    assert printed["mean"] == saved["mean"] and saved["count"] == 2 and saved["model"] == "bm3d"
    assert saved["model_info"]["config"]["sigma"] == 0.1
    from noiseshift.benchmarks.folders import PairedFolder

    bench = PairedFolder(pairs)
    noisy_psnr = sum(float(psnr(s.noisy, s.clean, 1.0)) for s in bench) / len(bench)
    assert saved["mean"]["psnr"] > noisy_psnr + 3
    assert (out / "results.csv").read_text().count("\n") == 3

    page = (out / "report.html").read_text()
    sources = re.findall(r"src='([^']+)'", page)
    assert any("histogram" in s for s in sources) and len(sources) >= 3
    for source in sources:
        assert (out / source).is_file() and (out / source).stat().st_size > 1000
    assert "img0" in page and "img1" in page and "gaussian" in page


def test_table_output_and_benchmark_options(pairs: Path, capsys) -> None:
    code = main(["benchmark", "synthetic", "--root", str(pairs / "clean"), "-B",
                 "noise={'type': 'gaussian', 'sigma': 0.1}", "-B", "seed=1", "--model", "nlmeans",
                 "-O", "sigma=0.1", "--limit", "1"])
    assert code == 0
    output = capsys.readouterr().out
    assert "noiseshift benchmark: synthetic" in output and "PSNR" in output and "1/2" in output
    assert "conventions: rgb, data range 1, float" in output and "seed 1" in output


def test_a_rerun_into_the_same_folder_resumes(pairs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = ["benchmark", "paired_folder", "--root", str(pairs), "--model", "nlmeans", "-O", "sigma=0.1",
            "--out", str(out), "--json"]
    assert main([*args, "--limit", "1"]) == 0
    first = _json(capsys.readouterr().out)
    assert main(args) == 0
    second = _json(capsys.readouterr().out)
    assert first["count"] == 1 and second["count"] == 2
    assert second["per_sample"]["img0"] == first["per_sample"]["img0"]
    assert main([*args, "-O", "sigma=0.2"]) == 2  # another configuration: refused, not mixed
    assert "different configuration" in capsys.readouterr().err
    assert main([*args, "-O", "sigma=0.2", "--no-resume"]) == 0


def test_errors_are_one_line_with_exit_code_2(pairs: Path, tmp_path: Path, capsys) -> None:
    assert main(["benchmark", "polyy", "--root", str(pairs), "--model", "bm3d"]) == 2
    assert "Did you mean 'polyu'" in capsys.readouterr().err
    assert main(["benchmark", "paired_folder", "--root", str(tmp_path / "none"), "--model", "bm3d"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["benchmark", "paired_folder", "--root", str(pairs), "--model", "bm3d", "--report"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["benchmark", "paired_folder", "--root", str(pairs), "-B", "colour=1", "--model", "bm3d"]) == 2
    assert "unknown option(s) ['colour']" in capsys.readouterr().err
    assert main(["benchmark", "paired_folder", "--root", str(pairs), "-B", "oops", "--model", "bm3d"]) == 2


def test_tools_wrapper_runs_the_command(pairs: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "benchmark.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Score a model on benchmark NAME" in done.stdout


def _free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_share_the_items_and_match_one_process(pairs: Path, tmp_path: Path, capsys) -> None:
    for index in range(2, 5):  # 5 items: ranks get 3 and 2
        write_image(pairs / "noisy" / f"img{index}.png", torch.rand(1, 3, 32, 32))
        write_image(pairs / "clean" / f"img{index}.png", torch.rand(1, 3, 32, 32))
    args = ["benchmark", "paired_folder", "--root", str(pairs), "--model", "nlmeans", "-O", "sigma=0.1", "--json"]
    assert main(args) == 0
    single = _json(capsys.readouterr().out)
    out = tmp_path / "dist"
    port = _free_port()
    processes = []
    for rank in range(2):
        env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "noiseshift.cli", *args, "--out", str(out)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], [r[1][-2000:] for r in results]
    assert results[1][0].strip() == ""  # only rank 0 prints
    gathered = _json(results[0][0])
    assert gathered["environment"]["world_size"] == 2 and gathered["count"] == 5
    for key, scores in single["per_sample"].items():
        assert gathered["per_sample"][key] == pytest.approx(scores, abs=1e-9)
    ranks = {name: len((out / name).read_text().splitlines()) for name in ("items.rank0.jsonl", "items.rank1.jsonl")}
    assert ranks == {"items.rank0.jsonl": 3, "items.rank1.jsonl": 2}


def test_a_saved_network_with_an_adapter_and_a_recomputed_report(pairs: Path, tmp_path: Path, capsys) -> None:
    from noiseshift.registry import DENOISERS
    from noiseshift.weights import save

    torch.manual_seed(0)
    weights = save(DENOISERS.build({"type": "dncnn", "depth": 3, "width": 8}), tmp_path / "tiny.safetensors")
    out = tmp_path / "run"
    assert main(["benchmark", "paired_folder", "--root", str(pairs), "--model", str(weights), "--adapter",
                 "pretrained", "--out", str(out), "--report", "--tile", "16", "--overlap", "4", "--json"]) == 0
    record = _json(capsys.readouterr().out)
    assert record["model"] == "pretrained(dncnn) (tiny.safetensors)"
    assert record["adapter"]["name"] == "pretrained" and record["model_info"]["backbone"]["name"] == "dncnn"
    assert record["settings"]["tile"] == 16 and record["count"] == 2
    assert not (out / "images").exists()  # the report recomputed the two items it shows
    sources = re.findall(r"src='([^']+)'", (out / "report.html").read_text())
    assert len(sources) == 3 and all((out / s).is_file() for s in sources)


def test_trace_records_adaptation_steps_and_the_report_plots_them(pairs: Path, tmp_path: Path, capsys,
                                                                   last_layer_tuning) -> None:
    from noiseshift.registry import DENOISERS
    from noiseshift.testing import temporary_plugin
    from noiseshift.weights import save

    torch.manual_seed(0)
    weights = save(DENOISERS.build({"type": "dncnn", "depth": 3, "width": 8}), tmp_path / "tiny.safetensors")
    out = tmp_path / "run"
    with temporary_plugin(last_layer_tuning("bench_tuning_test"), name="bench_trace_test"):
        base = ["benchmark", "paired_folder", "--root", str(pairs), "--model", str(weights), "--adapter",
                "bench_tuning_test", "-O", "steps=2", "-O", "lr=0.01"]
        assert main([*base, "--trace"]) == 2  # traces are files: --out is required
        assert "--out" in capsys.readouterr().err
        assert main([*base, "--out", str(out), "--trace", "--report", "--json"]) == 0
    record = _json(capsys.readouterr().out)
    trace = json.loads((out / "trace.json").read_text())
    assert sorted(trace["items"]) == ["img0", "img1"] and [row["step"] for row in trace["mean"]] == [0, 1, 2]
    assert all("psnr" in row for row in trace["mean"]) and "loss" in trace["mean"][-1]
    finals = [entries[-1]["psnr"] for entries in trace["items"].values()]
    assert sum(finals) / 2 == pytest.approx(record["mean"]["psnr"], abs=1e-6)
    assert all("trace" in item for item in record["items"]) and record["settings"]["trace"] is True
    sources = re.findall(r"src='([^']+)'", (out / "report.html").read_text())
    assert "report_files/adaptation.png" in sources and (out / "report_files" / "adaptation.png").is_file()
