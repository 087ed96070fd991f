"""The benchmark runner: scores, files, resume after an interruption, sharding, submissions."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from noiseshift import runner
from noiseshift.benchmark import Benchmark, ScoringConventions
from noiseshift.errors import InvalidInputError
from noiseshift.runner import DistributedContext, read_records, run_benchmark, shard_indices
from noiseshift.types import Sample


class Pairs(Benchmark):
    """Five small noisy/clean pairs with a sensor condition; indexable."""

    name = "pairs"
    conventions = ScoringConventions(notes="test")

    def __init__(self, count: int = 5, size: int = 24) -> None:
        generator = torch.Generator().manual_seed(0)
        self.samples = []
        for index in range(count):
            base = torch.rand(1, 3, size // 4, size // 4, generator=generator)
            clean = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
            noisy = (clean + 0.08 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
            self.samples.append(Sample(f"img{index}", noisy, clean, {"sensor": "A" if index % 2 else "B"}))

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    def keys(self) -> list[str]:
        return [s.key for s in self.samples]


class IterOnlyPairs(Pairs):
    """The same data without indexing: the runner must iterate and skip."""

    __getitem__ = None  # type: ignore[assignment]

    def __getattribute__(self, name: str) -> Any:
        if name == "__getitem__":
            raise AttributeError(name)
        return super().__getattribute__(name)


class Smoother(torch.nn.Module):
    """A deterministic 3×3 box filter that counts its calls."""

    in_channels = 3
    name = "smoother"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []
        self.weight = torch.nn.Parameter(torch.full((3, 1, 3, 3), 1 / 9), requires_grad=False)

    def forward(self, noisy: torch.Tensor, cond: Any = None) -> torch.Tensor:
        self.calls += 1
        self.shapes.append(tuple(noisy.shape))
        padded = torch.nn.functional.pad(noisy, (1, 1, 1, 1), mode="replicate")
        return torch.nn.functional.conv2d(padded, self.weight, groups=3)


class Stop(Exception):
    pass


def stop_after(count: int):
    def progress(done: int, total: int, record: Any) -> None:
        if done >= count:
            raise Stop
    return progress


def test_scores_match_an_independent_skimage_computation() -> None:
    bench, model = Pairs(count=3), Smoother()
    result = run_benchmark(model, bench)
    for sample in bench:
        output = model(sample.noisy).clamp(0, 1)[0].permute(1, 2, 0).double().numpy()
        clean = sample.clean[0].permute(1, 2, 0).double().numpy()
        expected_psnr = peak_signal_noise_ratio(clean, output, data_range=1)
        expected_ssim = structural_similarity(clean, output, data_range=1, channel_axis=2, gaussian_weights=True,
                                              sigma=1.5, use_sample_covariance=False)
        scores = result.per_sample[sample.key]
        assert scores["psnr"] == pytest.approx(expected_psnr, abs=1e-6)
        assert scores["ssim"] == pytest.approx(expected_ssim, abs=1e-4)
    assert result.mean()["psnr"] == pytest.approx(np.mean([s["psnr"] for s in result.per_sample.values()]))
    assert result.out_dir is None and len(result.items) == 3


def test_files_hold_per_item_and_mean_scores_with_their_context(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_benchmark(Smoother(), Pairs(), out_dir=out, save_images=True, label="box3")
    record = json.loads((out / "results.json").read_text())
    assert record["benchmark"] == "pairs" and record["model"] == "box3" and record["count"] == 5
    assert record["complete"] is True and record["conventions"]["notes"] == "test"
    assert record["mean"]["psnr"] == pytest.approx(result.mean()["psnr"])
    assert record["environment"]["torch"] == torch.__version__ and record["environment"]["noiseshift"]
    assert record["model_info"]["name"] == "smoother" and len(record["model_info"]["weights_sha256"]) == 64
    assert record["seconds_per_image"] > 0 and all(item["seconds"] > 0 for item in record["items"])
    assert set(record["groups"]["sensor"]) == {"A", "B"} and record["groups"]["sensor"]["A"]["count"] == 2
    mean_a = np.mean([record["per_sample"][f"img{i}"]["psnr"] for i in (1, 3)])
    assert record["groups"]["sensor"]["A"]["psnr"] == pytest.approx(mean_a)
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["key"] for row in rows] == [f"img{i}" for i in range(5)]
    assert list(rows[0]) == ["index", "key", "psnr", "ssim", "seconds", "sensor"]
    for row in rows:
        assert float(row["psnr"]) == pytest.approx(record["per_sample"][row["key"]]["psnr"], abs=1e-12)
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"img{i}.png" for i in range(5)]


@pytest.mark.parametrize("benchmark_type", [Pairs, IterOnlyPairs])
def test_an_interrupted_run_resumes_without_recomputing_finished_items(tmp_path: Path, benchmark_type) -> None:
    out = tmp_path / "run"
    first = Smoother()
    with pytest.raises(Stop):
        run_benchmark(first, benchmark_type(), out_dir=out, progress=stop_after(2))
    assert first.calls == 2 and len(read_records(out)) == 2
    assert not (out / "results.json").exists()

    second = Smoother()
    seen: list[Any] = []
    result = run_benchmark(second, benchmark_type(), out_dir=out, progress=lambda d, t, r: seen.append((d, t)))
    assert second.calls == 3  # only the 3 unfinished items
    assert seen[0] == (2, 5) and seen[-1] == (5, 5)
    fresh = run_benchmark(Smoother(), benchmark_type())
    assert result.per_sample == fresh.per_sample
    assert json.loads((out / "results.json").read_text())["count"] == 5

    third = Smoother()
    run_benchmark(third, benchmark_type(), out_dir=out)
    assert third.calls == 0
    fourth = Smoother()
    run_benchmark(fourth, benchmark_type(), out_dir=out, resume=False)
    assert fourth.calls == 5 and len(read_records(out)) == 5


def test_a_torn_last_line_is_discarded_and_redone(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(Stop):
        run_benchmark(Smoother(), Pairs(), out_dir=out, progress=stop_after(3))
    log = out / "items.jsonl"
    log.write_text(log.read_text() + '{"index": 3, "key": "img3", "metr')  # killed mid-write
    model = Smoother()
    result = run_benchmark(model, Pairs(), out_dir=out)
    assert model.calls == 2 and len(result.items) == 5
    lines = log.read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(line) for line in lines)


def test_resuming_a_different_configuration_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(Stop):
        run_benchmark(Smoother(), Pairs(), out_dir=out, progress=stop_after(1))
    with pytest.raises(InvalidInputError, match="different configuration .*tile"):
        run_benchmark(Smoother(), Pairs(), out_dir=out, tile=16, overlap=4)
    changed = Smoother()
    with torch.no_grad():
        changed.weight.mul_(0.5)
    with pytest.raises(InvalidInputError, match="differs in: model"):
        run_benchmark(changed, Pairs(), out_dir=out)
    other = Pairs()
    other.samples[0] = Sample("renamed", other.samples[0].noisy, other.samples[0].clean)
    with pytest.raises(InvalidInputError, match="do not match benchmark"):
        run_benchmark(Smoother(), other, out_dir=out)


def test_limit_runs_the_first_items_only(tmp_path: Path) -> None:
    model = Smoother()
    result = run_benchmark(model, Pairs(), out_dir=tmp_path / "run", limit=2)
    assert model.calls == 2 and list(result.per_sample) == ["img0", "img1"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["complete"] is False
    with pytest.raises(InvalidInputError, match="limit"):
        run_benchmark(model, Pairs(), limit=0)


def test_shard_indices_partition_the_items() -> None:
    shards = [shard_indices(range(11), rank, 3) for rank in range(3)]
    assert shards[1] == [1, 4, 7, 10]
    assert sorted(i for shard in shards for i in shard) == list(range(11))
    with pytest.raises(InvalidInputError):
        shard_indices(range(3), 2, 2)


def test_sharded_ranks_score_their_items_and_rank_zero_writes_everything(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "run"
    rank1_records: list[Any] = []

    def context(rank: int) -> DistributedContext:
        def gather(obj: Any) -> list[Any]:
            if obj is None:  # barrier
                return [None, None]
            if rank == 1:
                rank1_records.extend(obj)
                return [[], obj]  # rank 0 has not run yet in this sequential simulation
            return [obj, rank1_records]
        return DistributedContext(rank=rank, world_size=2, gather=gather)

    with pytest.raises(Stop):  # rank 0 sets the folder up (run.json) before any rank starts
        run_benchmark(Smoother(), Pairs(), out_dir=out, progress=stop_after(0))
    model1 = Smoother()
    monkeypatch.setattr(runner, "distributed_context", lambda: context(1))
    run_benchmark(model1, Pairs(), out_dir=out)
    assert model1.calls == 2 and [r["key"] for r in rank1_records] == ["img1", "img3"]
    assert not (out / "results.json").exists()  # only rank 0 writes results

    model0 = Smoother()
    monkeypatch.setattr(runner, "distributed_context", lambda: context(0))
    result = run_benchmark(model0, Pairs(), out_dir=out)
    assert model0.calls == 3
    assert list(result.per_sample) == [f"img{i}" for i in range(5)]
    assert result.per_sample == run_benchmark(Smoother(), Pairs()).per_sample
    assert {p.name for p in out.glob("items*.jsonl")} == {"items.rank0.jsonl", "items.rank1.jsonl"}
    assert json.loads((out / "results.json").read_text())["environment"]["world_size"] == 2

    monkeypatch.setattr(runner, "distributed_context", lambda: DistributedContext())
    single = Smoother()
    run_benchmark(single, Pairs(), out_dir=out)  # a single process resumes from both ranks' records
    assert single.calls == 0


def test_world_size_without_a_process_group_is_an_error(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InvalidInputError, match="not initialised"):
        run_benchmark(Smoother(), Pairs())


class ServerScored(Pairs):
    name = "server_scored"
    has_ground_truth = False

    def __init__(self) -> None:
        super().__init__(count=3)
        self.samples = [Sample(s.key, s.noisy) for s in self.samples]
        self.submitted: dict[str, torch.Tensor] = {}

    def write_submission(self, outputs, out_dir):
        self.submitted = {key: outputs[key] for key in outputs}
        path = Path(out_dir) / "submission.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(outputs))
        return path


def test_sets_without_ground_truth_get_a_submission_from_all_outputs(tmp_path: Path) -> None:
    bench, model = ServerScored(), Smoother()
    with pytest.raises(InvalidInputError, match="no ground truth"):
        run_benchmark(model, bench)
    with pytest.raises(Stop):
        run_benchmark(model, bench, out_dir=tmp_path / "run", progress=stop_after(1))
    result = run_benchmark(model, bench, out_dir=tmp_path / "run")
    assert result.submission == str(tmp_path / "run" / "submission" / "submission.txt")
    assert list(bench.submitted) == ["img0", "img1", "img2"]
    for sample in bench.samples:  # the first output was saved before the interruption
        assert torch.equal(bench.submitted[sample.key], model(sample.noisy))
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["mean"] == {} and record["count"] == 3 and record["submission"] == result.submission


def test_model_mode_and_tiling_settings(tmp_path: Path) -> None:
    model = Smoother().train()
    result = run_benchmark(model, Pairs(count=2), tile=16, overlap=4)
    assert model.training  # restored after the run
    assert result.settings["tile"] == 16
    assert model.shapes == [(4, 3, 16, 16)] * 2  # 24×24 in 16-tiles: one batch of 2×2 tiles per image
    assert math.isfinite(result.mean()["psnr"])


def test_report_for_sets_with_and_without_ground_truth(tmp_path: Path) -> None:
    import re

    from noiseshift.report import write_report

    bench = Pairs()
    result = run_benchmark(Smoother(), bench, out_dir=tmp_path / "gt")
    with pytest.raises(InvalidInputError, match="no saved output"):
        write_report(result, bench, tmp_path / "gt")
    page = write_report(result, bench, tmp_path / "gt", model=Smoother(), count=2).read_text()
    sources = re.findall(r"src='([^']+)'", page)
    assert len(sources) == 5 and all((tmp_path / "gt" / s).is_file() for s in sources)  # 2 best, 2 worst, histogram
    worst = min(result.per_sample, key=lambda k: result.per_sample[k]["psnr"])
    assert any(s.startswith(f"report_files/worst_1_{worst}") for s in sources)

    server = ServerScored()
    result = run_benchmark(Smoother(), server, out_dir=tmp_path / "server")
    page = write_report(result, server, tmp_path / "server").read_text()  # outputs were saved
    sources = re.findall(r"src='([^']+)'", page)
    assert len(sources) == 3 and not any("histogram" in s for s in sources)


@pytest.fixture
def tracing_model(last_layer_tuning):
    """A tiny DnCNN wrapped by a test-time adapter that fine-tunes its last layer for 2 steps (eval mode)."""
    from noiseshift.registry import DENOISERS

    torch.manual_seed(0)
    backbone = DENOISERS.build({"type": "dncnn", "depth": 3, "width": 8}).eval()
    return last_layer_tuning("last_layer_tuning_test")(steps=2, lr=1e-2).wrap(backbone)


def test_trace_records_every_items_adaptation_steps(tmp_path: Path, tracing_model) -> None:
    model = tracing_model
    bench = Pairs(count=3)
    with pytest.raises(InvalidInputError, match="test-time adapter"):
        run_benchmark(Smoother(), bench, trace=True)
    result = run_benchmark(model, bench, out_dir=tmp_path / "run", trace=True)
    assert model.adapter.trace is None and model.adapter.reference is None  # nothing left behind
    assert result.settings["trace"] is True
    for item in result.items:
        assert [entry["step"] for entry in item["trace"]] == [0, 1, 2]
        assert "loss" not in item["trace"][0] and all("loss" in entry for entry in item["trace"][1:])
        # the last step's PSNR is the PSNR of the scored output (float protocol, range 1)
        assert item["trace"][-1]["psnr"] == pytest.approx(item["metrics"]["psnr"], abs=1e-6)
    saved = json.loads((tmp_path / "run" / "trace.json").read_text())
    assert set(saved["items"]) == {"img0", "img1", "img2"} and saved["adapter"]["name"] == "last_layer_tuning_test"
    assert [row["step"] for row in saved["mean"]] == [0, 1, 2] and all(row["items"] == 3 for row in saved["mean"])
    assert saved["mean"][0]["psnr"] == pytest.approx(np.mean([i["trace"][0]["psnr"] for i in result.items]))
    assert saved["mean"][2]["loss"] == pytest.approx(np.mean([i["trace"][2]["loss"] for i in result.items]))
    assert all("trace" in record for record in read_records(tmp_path / "run").values())  # resumable

    ensembled = run_benchmark(model, Pairs(count=1), ensemble=True, trace=True)
    entries = ensembled.items[0]["trace"]  # 8 passes over transformed copies: losses but no PSNR
    assert len(entries) == 8 * 2 and not any("psnr" in entry for entry in entries)


def test_mean_trace_averages_tiles_within_an_item_then_items() -> None:
    items = [
        {"trace": [{"step": 1, "loss": 1.0}, {"step": 1, "loss": 3.0}]},  # two tiles: item mean 2
        {"trace": [{"step": 0, "psnr": 30.0}, {"step": 1, "loss": 4.0, "psnr": float("inf")}]},
        {"key": "no trace"},
    ]
    assert runner.mean_trace(items) == [
        {"step": 0, "psnr": 30.0, "items": 1},
        {"step": 1, "loss": 3.0, "items": 2},
    ]


def test_report_plots_psnr_against_the_adaptation_step(tmp_path: Path, tracing_model) -> None:
    import re

    from noiseshift.report import write_report

    model = tracing_model
    bench = Pairs(count=2)
    result = run_benchmark(model, bench, out_dir=tmp_path / "run", trace=True, save_images=True)
    page = write_report(result, bench, tmp_path / "run").read_text()
    sources = re.findall(r"src='([^']+)'", page)
    assert "report_files/adaptation.png" in sources and (tmp_path / "run" / "report_files" / "adaptation.png").is_file()
    assert "<h2>Adaptation</h2>" in page and page.count("<tr><td>") >= 3  # one table row per step

    untraced = run_benchmark(model, bench, out_dir=tmp_path / "plain", save_images=True)
    page = write_report(untraced, bench, tmp_path / "plain").read_text()
    assert "adaptation.png" not in page and "--trace" in page
