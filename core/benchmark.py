"""The ``Benchmark`` interface: a dataset plus its official scoring protocol.

A benchmark owns its conventions (colour space, data range, quantisation, border crop, SSIM
flavour, averaging unit), and every score it produces carries them, because the same outputs
differ by tenths of a dB between conventions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from .errors import InvalidInputError
from .types import Sample


@dataclass(frozen=True)
class ScoringConventions:
    """How a benchmark turns outputs into numbers; recorded next to every result.

    Attributes:
        color_space: ``"rgb"`` (sRGB), ``"raw"`` (packed Bayer) or ``"y"``.
        data_range: the peak value of the signal the metrics use (never inferred from ``max()``).
        quantize: ``"uint8"`` when outputs are rounded to 8-bit before scoring, else ``"float"``.
        border_crop: pixels removed on every side before scoring.
        ssim: ``"gaussian"`` (Wang et al. / MATLAB ``ssim_index``: 11×11 Gaussian σ 1.5, valid)
            or ``"uniform"`` (scikit-image default: 7×7 uniform, sample covariance).
        averaging: the unit means are taken over (``"image"``, ``"block"``, ``"crop"``).
        notes: anything else a reader needs to reproduce the numbers.
    """

    color_space: str = "rgb"
    data_range: float = 1.0
    quantize: Literal["float", "uint8"] = "float"
    border_crop: int = 0
    ssim: Literal["gaussian", "uniform"] = "gaussian"
    averaging: str = "image"
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BenchmarkResult:
    """Scores of one run over a benchmark, with the conventions that produced them.

    Attributes:
        benchmark: registry name of the benchmark.
        model: description of the model (and adapter) that was scored.
        conventions: the scoring conventions.
        per_sample: ``{key: {"psnr": ..., "ssim": ...}}``.
    """

    benchmark: str
    model: str
    conventions: ScoringConventions
    per_sample: dict[str, dict[str, float]] = field(default_factory=dict)

    def mean(self) -> dict[str, float]:
        """Metric means over samples (the benchmark's averaging unit)."""
        if not self.per_sample:
            return {}
        metrics = sorted({m for scores in self.per_sample.values() for m in scores})
        return {
            metric: float(
                sum(scores[metric] for scores in self.per_sample.values() if metric in scores)
                / sum(1 for scores in self.per_sample.values() if metric in scores)
            )
            for metric in metrics
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "model": self.model,
            "conventions": self.conventions.as_dict(),
            "mean": self.mean(),
            "count": len(self.per_sample),
            "per_sample": self.per_sample,
        }


class Benchmark:
    """Base class of every benchmark.

    Subclasses set the class attributes, read their data in ``__init__`` (validating what they
    read and failing with specific messages), and implement ``__iter__`` and ``__len__``.

    Class attributes:
        name: registry name (``"dnd"``).
        domain: ``"srgb"`` or ``"raw"``.
        has_ground_truth: ``False`` for server-scored sets (DND, SIDD benchmark).
        conventions: the scoring protocol.
    """

    name: ClassVar[str] = ""
    domain: ClassVar[str] = "srgb"
    has_ground_truth: ClassVar[bool] = True
    conventions: ScoringConventions = ScoringConventions()

    def __iter__(self) -> Iterator[Sample]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {}

    def score(self, output: torch.Tensor, sample: Sample) -> dict[str, float]:
        """Score one output against the sample's ground truth with this benchmark's protocol.

        Args:
            output: ``1×C×H×W`` float32 denoised image in ``[0, 1]`` (same shape as
                ``sample.noisy``).
            sample: the sample it came from (must have ``clean``).

        Returns:
            ``{"psnr": dB, "ssim": value}``.
        """
        from .metrics import psnr, ssim

        if sample.clean is None:
            raise InvalidInputError(
                f"benchmark {self.name!r}: sample {sample.key!r} has no ground truth; "
                "write a submission instead"
            )
        if output.shape != sample.clean.shape:
            raise InvalidInputError(
                f"benchmark {self.name!r}: output shape {tuple(output.shape)} does not match "
                f"ground truth {tuple(sample.clean.shape)} for {sample.key!r}"
            )
        conv = self.conventions
        scale = conv.data_range
        out = output.clamp(0, 1) * scale
        ref = sample.clean * scale
        quantize = conv.quantize == "uint8"
        return {
            "psnr": float(psnr(out, ref, scale, quantize=quantize, crop_border=conv.border_crop)),
            "ssim": float(
                ssim(out, ref, scale, window=conv.ssim, quantize=quantize, crop_border=conv.border_crop)
            ),
        }

    def write_submission(self, outputs: Mapping[str, torch.Tensor], out_dir: str | Path) -> Path:
        """Write outputs in the format the benchmark's server expects.

        Args:
            outputs: ``{sample key: 1×C×H×W output}`` for every sample.
            out_dir: folder to write into.

        Returns:
            The path of the submission (file or folder).
        """
        raise NotImplementedError(f"benchmark {self.name!r} has no submission format")
