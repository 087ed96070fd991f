"""A visual report of a benchmark run: ``report.html`` with crops, error maps and a PSNR histogram.

:func:`write_report` writes ``report.html`` and, next to it, ``report_files/*.png``: a histogram
of the per-item PSNR, and for the best and worst items (by PSNR) a strip of four panels — the
noisy input, the output and the ground truth, cropped around where the output's error is
largest, and the absolute-error map of that crop on one colour scale shared by all items. The
HTML has no external dependencies (open it from disk) and lists the run's conventions, model,
adapter and settings next to the numbers.

When the run recorded test-time adaptation traces (``run_benchmark(trace=True)``,
``noiseshift benchmark --trace``), the report also plots the mean PSNR over the items against
the adaptation step, step 0 being the unadapted model (as Figure 5 of the LAN paper), next to
the mean self-supervised loss, with the numbers in a table.

Outputs are taken, in order of preference, from the run's saved images (``images/<key>.png``),
its saved float outputs (``outputs/<key>.safetensors``), or by running ``model`` again on the
few items shown (with the run's tiling and ensemble settings).

Plots use matplotlib's object API with the Agg canvas (no global backend switch, no display).
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .benchmark import Benchmark
from .errors import InvalidInputError
from .image_io import atomic_write_bytes, atomic_write_text, read_image
from .runner import RunResult, display_image, fetch_samples, mean_trace, safe_name
from .types import Sample

__all__ = ["write_report"]

REPORT_HTML = "report.html"
FILES_DIR = "report_files"


def _figure_png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _histogram(values: Sequence[float], metric: str, title: str) -> bytes:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.2))
    axes = figure.add_subplot(1, 1, 1)
    finite = [v for v in values if math.isfinite(v)]
    axes.hist(finite, bins=min(30, max(5, len(finite) // 3)), color="#4c72b0", edgecolor="white")
    if finite:
        mean = sum(finite) / len(finite)
        axes.axvline(mean, color="#dd4444", linestyle="--", label=f"mean {mean:.2f}")
        axes.legend(loc="upper left", fontsize=8)
    axes.set_xlabel(f"{metric.upper()} (dB)" if metric == "psnr" else metric.upper())
    axes.set_ylabel("items")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    return _figure_png(figure)


def _adaptation_plot(curve: Sequence[Mapping[str, float]], title: str) -> bytes:
    """Mean PSNR (and loss) against the adaptation step; step 0 is the unadapted model."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [metric for metric in ("psnr", "loss") if any(metric in row for row in curve)]
    figure = Figure(figsize=(5.5 * len(panels), 3.4))
    for position, metric in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), position)
        rows = [row for row in curve if metric in row]
        steps = [row["step"] for row in rows]
        values = [row[metric] for row in rows]
        axes.plot(steps, values, marker="o", markersize=3, color="#4c72b0" if metric == "psnr" else "#55a868",
                  label="adapted" if metric == "psnr" else "self-supervised loss")
        if metric == "psnr" and steps and steps[0] == 0:
            axes.axhline(values[0], color="#888888", linestyle="--", label=f"before adaptation {values[0]:.2f} dB")
        axes.set_xlabel("adaptation step")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel("mean PSNR (dB)" if metric == "psnr" else "mean loss")
        if metric == "loss":
            positive = [v for v in values if v > 0]
            if positive and len(positive) == len(values) and max(positive) / min(positive) > 20:
                axes.set_yscale("log")
        axes.grid(alpha=0.3)
        axes.legend(loc="best", fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _figure_png(figure)


def _to_hwc(image: torch.Tensor) -> np.ndarray:
    array = display_image(image)[0].permute(1, 2, 0).numpy()
    return array[:, :, 0] if array.shape[2] == 1 else array


def _crop_window(error: torch.Tensor, size: int) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a ``size`` crop centred on the largest local error.

    ``error`` is ``H×W``; a box filter of about a tenth of the crop finds a region rather than
    one outlier pixel.
    """
    height, width = error.shape
    crop_h, crop_w = min(size, height), min(size, width)
    radius = max(1, size // 20)
    smooth = torch.nn.functional.avg_pool2d(error[None, None], 2 * radius + 1, stride=1, padding=radius,
                                            count_include_pad=False)[0, 0]
    row, col = divmod(int(torch.argmax(smooth)), width)
    top = min(max(row - crop_h // 2, 0), height - crop_h)
    left = min(max(col - crop_w // 2, 0), width - crop_w)
    return top, left, crop_h, crop_w


def _strip(
    sample: Sample, output: torch.Tensor, metrics: Mapping[str, float], noisy_metrics: Mapping[str, float],
    crop: int, error_scale: float, title: str,
) -> bytes:
    from matplotlib.figure import Figure

    shown = [("noisy", sample.noisy), ("output", output)]
    if sample.clean is not None:
        shown.append(("ground truth", sample.clean))
    reference = sample.clean if sample.clean is not None else sample.noisy
    error = (display_image(output) - display_image(reference)).abs().mean(dim=1)[0]
    top, left, height, width = _crop_window(error, crop)
    window = (slice(None), slice(None), slice(top, top + height), slice(left, left + width))
    panels = len(shown) + (1 if sample.clean is not None else 0)
    figure = Figure(figsize=(3.0 * panels, 3.4))
    for position, (name, image) in enumerate(shown, start=1):
        axes = figure.add_subplot(1, panels, position)
        part = _to_hwc(image[window])
        axes.imshow(part, cmap="gray" if part.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        caption = name
        if name == "noisy" and "psnr" in noisy_metrics:
            caption += f"  {noisy_metrics['psnr']:.2f} dB"
        if name == "output" and "psnr" in metrics:
            caption += f"  {metrics['psnr']:.2f} dB"
        axes.set_title(caption, fontsize=9)
        axes.axis("off")
    if sample.clean is not None:
        axes = figure.add_subplot(1, panels, panels)
        shown_error = axes.imshow(error[top : top + height, left : left + width].numpy(), cmap="magma",
                                  vmin=0, vmax=error_scale, interpolation="nearest")
        axes.set_title("|output − ground truth|", fontsize=9)
        axes.axis("off")
        figure.colorbar(shown_error, ax=axes, fraction=0.046, pad=0.04)
    figure.suptitle(f"{title}   crop {height}×{width} at ({top}, {left})", fontsize=9)
    figure.tight_layout()
    return _figure_png(figure)


def _load_output(out: Path, key: str) -> torch.Tensor | None:
    image = out / "images" / f"{safe_name(key)}.png"
    if image.is_file():
        return read_image(image)
    saved = out / "outputs" / f"{safe_name(key)}.safetensors"
    if saved.is_file():
        from safetensors.torch import load_file

        return load_file(str(saved))["output"]
    return None


def write_report(
    result: RunResult,
    benchmark: Benchmark,
    out_dir: str | Path,
    *,
    model: Any = None,
    count: int = 3,
    crop: int = 128,
    metric: str = "psnr",
) -> Path:
    """Write ``out_dir/report.html`` (and ``out_dir/report_files/``) for a finished run.

    Args:
        result: what :func:`noiseshift.runner.run_benchmark` returned.
        benchmark: the benchmark it ran on (the report re-reads the items it shows).
        out_dir: the run's output folder (saved outputs are looked up there).
        model: re-run on the shown items whose outputs were not saved; ``None`` requires saved
            outputs.
        count: how many best and how many worst items to show (all items for sets without
            ground truth: the first ``count``).
        crop: side of the crops shown, in pixels.
        metric: the metric that ranks items (``"psnr"`` or ``"ssim"``).

    Returns:
        The path of ``report.html``.

    Raises:
        InvalidInputError: no scored items, an unknown metric, or an output that is neither
            saved nor computable (no ``model``).
    """
    from .inference import denoise

    if not result.items:
        raise InvalidInputError("the run has no finished items to report on")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInputError(f"count must be a positive integer, got {count!r}")
    out = Path(out_dir)
    files = out / FILES_DIR
    scored = [item for item in result.items if metric in item.get("metrics", {})]
    if benchmark.has_ground_truth and not scored:
        raise InvalidInputError(f"no item has the metric {metric!r}; items have {sorted(result.mean())}")

    if scored:
        ranked = sorted(scored, key=lambda item: item["metrics"][metric], reverse=True)
        best = ranked[:count]
        worst = [item for item in reversed(ranked[-count:]) if item not in best]
        chosen = [("best", i + 1, item) for i, item in enumerate(best)] + [
            ("worst", i + 1, item) for i, item in enumerate(worst)]
    else:
        chosen = [("item", i + 1, item) for i, item in enumerate(result.items[:count])]

    by_index = {item["index"]: (group, rank, item) for group, rank, item in chosen}
    settings = result.settings
    pictures: list[tuple[str, str, dict[str, Any]]] = []
    prepared: list[tuple[str, int, dict[str, Any], Sample, torch.Tensor]] = []
    for index, sample in fetch_samples(benchmark, sorted(by_index)):
        group, rank, item = by_index[index]
        output = _load_output(out, item["key"])
        if output is None:
            if model is None:
                raise InvalidInputError(
                    f"no saved output for {item['key']!r} in {out} and no model to recompute it; run with "
                    "save_images=True (--save-images) or pass the model"
                )
            output = denoise(model, sample.noisy, sample.cond or None, tile=settings.get("tile"),
                             overlap=settings.get("overlap", 32), ensemble=bool(settings.get("ensemble")),
                             device=settings.get("device"))
        prepared.append((group, rank, item, sample, output.to(torch.float32)))

    # One error scale for every map, so a brighter map really is a worse item.
    errors = [
        float(torch.quantile((display_image(o) - display_image(s.clean)).abs().mean(dim=1).flatten()[:1_000_000], 0.99))
        for _, _, _, s, o in prepared if s.clean is not None
    ]
    error_scale = max(max(errors, default=0.0), 1e-3)
    for group, rank, item, sample, output in sorted(prepared, key=lambda p: (p[0] != "best", p[1])):
        noisy_metrics = benchmark.score(sample.noisy, sample) if sample.clean is not None else {}
        name = f"{group}_{rank}_{safe_name(item['key'])}.png"
        atomic_write_bytes(files / name, _strip(sample, output, item.get("metrics", {}), noisy_metrics, crop,
                                                error_scale, f"{group} #{rank}: {item['key']}"), overwrite=True)
        pictures.append((group, f"{FILES_DIR}/{name}", {**item, "noisy_metrics": noisy_metrics}))

    histogram = None
    if scored:
        values = [item["metrics"][metric] for item in scored]
        atomic_write_bytes(files / f"{metric}_histogram.png",
                           _histogram(values, metric, f"{result.benchmark}: {result.model}, {len(values)} items"),
                           overwrite=True)
        histogram = f"{FILES_DIR}/{metric}_histogram.png"
    curve = mean_trace(result.items)
    adaptation = None
    if curve:
        traced = sum(1 for item in result.items if item.get("trace"))
        atomic_write_bytes(files / "adaptation.png",
                           _adaptation_plot(curve, f"{result.benchmark}: {result.model}, {traced} items"),
                           overwrite=True)
        adaptation = f"{FILES_DIR}/adaptation.png"
    page = _html(result, pictures, histogram, metric, error_scale, adaptation, curve)
    return atomic_write_text(out / REPORT_HTML, page, overwrite=True)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return html.escape(str(value))


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{_format(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _adaptation_html(adaptation: str | None, curve: Sequence[Mapping[str, float]], record: Mapping[str, Any]) -> str:
    if adaptation is None:
        if record.get("adapter") and not record.get("settings", {}).get("trace"):
            return ("<h2>Adaptation</h2><p>No adaptation traces were recorded; test-time adapters (lan, rfr, ...) "
                    "record the loss and PSNR of every step with <code>--trace</code>.</p>")
        return ""
    metrics = [m for m in ("psnr", "loss") if any(m in row for row in curve)]
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    rows = "".join(
        f"<tr><td>{int(row['step'])}</td>" + "".join(f"<td>{_format(row[m]) if m in row else ''}</td>" for m in metrics)
        + f"<td>{int(row['items'])}</td></tr>"
        for row in curve
    )
    return (f"<h2>Adaptation</h2><p>Mean over items at every adaptation step; step 0 is the model before adaptation. "
            f"PSNR here is the adapter's float PSNR of its prediction (data range 1, clipped), which can differ "
            f"slightly from the protocol's score above.</p><img src='{html.escape(adaptation)}' alt='adaptation'>"
            f"<table class='grid'><tr><th>step</th>{head}<th>items</th></tr>{rows}</table>")


def _html(
    result: RunResult, pictures: Sequence[tuple[str, str, Mapping[str, Any]]], histogram: str | None,
    metric: str, error_scale: float, adaptation: str | None = None,
    curve: Sequence[Mapping[str, float]] = (),
) -> str:
    record = result.as_dict()
    summary = [("benchmark", result.benchmark), ("model", result.model), ("items", f"{record['count']} of {record['total']}")]
    summary += [(f"mean {name}", value) for name, value in record["mean"].items()]
    if record["seconds_per_image"] is not None:
        summary.append(("seconds per item", record["seconds_per_image"]))
    adapter = record.get("adapter")
    if adapter:
        summary.append(("adapter", f"{adapter['name']} {adapter.get('config', {})}"))
    conventions = list(record["conventions"].items())
    settings = list(record["settings"].items()) + list(record["environment"].items())
    groups = ""
    for key, values in record["groups"].items():
        metrics = sorted({m for row in values.values() for m in row if m != "count"})
        head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
        rows = ""
        for value, row in values.items():
            cells = "".join(f"<td>{_format(row.get(m, math.nan))}</td>" for m in metrics)
            rows += f"<tr><td>{html.escape(value)}</td>{cells}<td>{int(row['count'])}</td></tr>"
        groups += (f"<h3>by {html.escape(key)}</h3><table class='grid'><tr><th>{html.escape(key)}</th>{head}"
                   f"<th>items</th></tr>{rows}</table>")
    figures = ""
    for group, path, item in pictures:
        scores = ", ".join(f"{k} {_format(v)}" for k, v in item.get("metrics", {}).items())
        noisy = ", ".join(f"{k} {_format(v)}" for k, v in item["noisy_metrics"].items())
        caption = f"{group}: <b>{html.escape(item['key'])}</b> — output {scores or 'not scored'}"
        if noisy:
            caption += f" (noisy input {noisy})"
        figures += f"<figure><img src='{html.escape(path)}' alt='{html.escape(item['key'])}'><figcaption>{caption}</figcaption></figure>"
    hist = f"<h2>{html.escape(metric.upper())} per item</h2><img src='{html.escape(histogram)}' alt='histogram'>" if histogram else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>noiseshift benchmark report: {html.escape(result.benchmark)} / {html.escape(result.model)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1300px; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
th, td {{ text-align: left; padding: 2px 10px; border-bottom: 1px solid #ddd; font-size: 90%; }}
figure {{ margin: 1em 0; }} figure img {{ max-width: 100%; }} figcaption {{ font-size: 90%; }}
.cols {{ display: flex; gap: 3em; flex-wrap: wrap; }}
</style></head><body>
<h1>{html.escape(result.benchmark)}: {html.escape(result.model)}</h1>
<div class="cols"><div><h2>Summary</h2>{_table(summary)}</div>
<div><h2>Scoring conventions</h2>{_table(conventions)}</div>
<div><h2>Run</h2>{_table(settings)}</div></div>
{groups}
{hist}
{_adaptation_html(adaptation, curve, record)}
<h2>Best and worst items</h2>
<p>Crops are centred on the largest error of the output; error maps share one scale (0 to {error_scale:.3f}, the 99th
percentile of the shown items' absolute error).</p>
{figures}
</body></html>
"""
