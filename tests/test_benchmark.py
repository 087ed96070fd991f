"""The ``Benchmark`` base: protocol-owned scoring, recorded conventions, and its conformance check."""

from __future__ import annotations

import json
import math

import pytest
import torch

from noiseshift.benchmark import Benchmark, BenchmarkResult, ScoringConventions
from noiseshift.errors import InvalidInputError
from noiseshift.metrics import psnr
from noiseshift.testing import check_benchmark
from noiseshift.types import Sample


class TinyPairs(Benchmark):
    """Three synthetic pairs, scored with a configurable protocol."""

    name = "tiny_pairs"

    def __init__(self, conventions: ScoringConventions = ScoringConventions(), broken: bool = False) -> None:
        self.conventions = conventions
        generator = torch.Generator().manual_seed(0)
        self.samples = []
        for index in range(3):
            clean = torch.rand(1, 3, 24, 24, generator=generator)
            noisy = (clean + 0.05 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
            key = "same" if broken else f"img{index}"
            self.samples.append(Sample(key, noisy, clean))

    def __iter__(self):
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)


class ServerScored(TinyPairs):
    name = "server_scored"
    has_ground_truth = False


def test_a_correct_benchmark_conforms_and_broken_ones_do_not() -> None:
    check_benchmark(TinyPairs())
    with pytest.raises(AssertionError, match="duplicate key"):
        check_benchmark(TinyPairs(broken=True))
    with pytest.raises(AssertionError, match="has_ground_truth=False but sample has clean"):
        check_benchmark(ServerScored())


def test_scoring_follows_the_declared_conventions() -> None:
    sample = next(iter(TinyPairs()))
    output = (sample.noisy + sample.clean) / 2
    as_float = TinyPairs().score(output, sample)
    as_uint8 = TinyPairs(ScoringConventions(quantize="uint8")).score(output, sample)
    cropped = TinyPairs(ScoringConventions(border_crop=4)).score(output, sample)
    assert as_float["psnr"] == pytest.approx(float(psnr(output, sample.clean, 1.0)))
    assert as_uint8["psnr"] != as_float["psnr"] and cropped["psnr"] != as_float["psnr"]
    uniform = TinyPairs(ScoringConventions(ssim="uniform")).score(output, sample)
    assert uniform["ssim"] != as_float["ssim"]
    with pytest.raises(InvalidInputError, match="does not match ground truth"):
        TinyPairs().score(output[..., :20], sample)
    with pytest.raises(InvalidInputError, match="no ground truth"):
        TinyPairs().score(output, Sample("x", sample.noisy))


def test_results_carry_their_conventions_and_means() -> None:
    conventions = ScoringConventions(quantize="uint8", averaging="image", notes="test")
    result = BenchmarkResult("tiny_pairs", "dncnn", conventions)
    result.per_sample = {"a": {"psnr": 30.0, "ssim": 0.9}, "b": {"psnr": 32.0, "ssim": 0.8}}
    record = json.loads(json.dumps(result.as_dict()))
    assert record["conventions"]["quantize"] == "uint8" and record["conventions"]["ssim"] == "gaussian"
    assert record["mean"]["psnr"] == 31.0 and math.isclose(record["mean"]["ssim"], 0.85)
    assert record["count"] == 2


def test_write_submission_is_explicitly_unsupported_by_default(tmp_path) -> None:
    with pytest.raises(NotImplementedError, match="no submission format"):
        TinyPairs().write_submission({}, tmp_path)
