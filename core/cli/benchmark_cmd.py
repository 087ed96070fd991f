"""``noiseshift benchmark``: score a model (optionally adapter-wrapped) on a benchmark.

Builds the benchmark from the registry (``NAME``, ``--root`` and ``-B key=value`` options), the
model exactly as ``noiseshift denoise`` does (``--model``, ``--head``, ``--adapter``, ``-O``), runs
``noiseshift.runner.run_benchmark`` with a progress bar, and prints a table (or the results JSON
with ``--json``). With ``--out`` the run is recorded there and resumes when re-run; ``--report``
adds ``report.html``; ``--trace`` records a test-time adapter's loss and PSNR at every
adaptation step (``trace.json``, and a PSNR-against-step plot in the report). Under
``torchrun`` each process scores a share of the items (the process group is initialised with
the gloo backend) and rank 0 prints and writes the results.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import torch
from rich.console import Console
from rich.table import Table

from .denoise_cmd import build_pipeline
from .options import parse_options, pick_device, progress_bar, stderr


def _init_distributed() -> bool:
    """Initialise the gloo process group under ``torchrun``; ``True`` when this call created it."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    # gloo: the runner only gathers small Python objects, which gloo does on any device.
    dist.init_process_group("gloo")
    return True


def _rank_device(device: str | None) -> str | None:
    """``cuda`` (no index) becomes ``cuda:<LOCAL_RANK>`` under torchrun, so ranks use their own GPU."""
    local = os.environ.get("LOCAL_RANK")
    if device is not None and local is not None and ":" not in device and device in ("cuda", "xpu"):
        return f"{device}:{local}"
    return device


def _print_table(result: Any, console: Console) -> None:
    record = result.as_dict()
    table = Table(title=f"noiseshift benchmark: {result.benchmark}")
    metrics = list(record["mean"])
    for column in ("model", "items", *[m.upper() for m in metrics], "s / item"):
        table.add_column(column, justify="left" if column == "model" else "right")
    seconds = record["seconds_per_image"]
    table.add_row(
        result.model,
        f"{record['count']}/{record['total']}",
        *[f"{record['mean'][m]:.2f}" if m == "psnr" else f"{record['mean'][m]:.4f}" for m in metrics],
        "-" if seconds is None else f"{seconds:.3f}",
    )
    console.print(table)
    conv = record["conventions"]
    console.print(
        f"conventions: {conv['color_space']}, data range {conv['data_range']:g}, {conv['quantize']}, "
        f"border crop {conv['border_crop']}, SSIM {conv['ssim']}, mean over {conv['averaging']}s"
        + (f" — {conv['notes']}" if conv["notes"] else ""),
        highlight=False,
    )
    key = next((k for k in ("sensor", "camera") if k in record["groups"]), None)
    if key is not None:
        values = record["groups"][key]
        groups = Table(title=f"by {key}")
        groups.add_column(key)
        for column in (*[m.upper() for m in metrics], "items"):
            groups.add_column(column, justify="right")
        for value, row in values.items():
            cells = [format(row.get(m, float("nan")), ".2f" if m == "psnr" else ".4f") for m in metrics]
            groups.add_row(value, *cells, str(int(row["count"])))
        console.print(groups)


@click.command("benchmark")
@click.argument("name")
@click.option("--root", type=click.Path(), help="Dataset folder (the benchmark's `root` option).")
@click.option("-B", "bench_option", multiple=True, metavar="KEY=VALUE",
              help="Benchmark option, e.g. -B protocol=tiled, -B \"noise={'type': 'gaussian', 'sigma': 0.1}\"; "
              "repeatable.")
@click.option("--model", default="default", show_default=True,
              help="'default', a weights file, or a parameter-free denoiser name (bm3d, nlmeans).")
@click.option("--model-type", help="Registry name of the architecture of a checkpoint without noiseshift metadata.")
@click.option("--head", type=click.Path(dir_okay=False), help="Domain head (from an adapter) applied on top.")
@click.option("--adapter", help="Test-time adapter that wraps the model (e.g. lan, rfr).")
@click.option("-O", "option", multiple=True, metavar="KEY=VALUE",
              help="Option for the adapter (or for the model when no adapter is given); repeatable.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for results.json / results.csv (and resume state, images, report).")
@click.option("--limit", type=click.IntRange(min=1), help="Score only the first N items.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@click.option("--save-images", is_flag=True, help="Write every output to OUT/images/<key>.png.")
@click.option("--report", is_flag=True, help="Write OUT/report.html (best/worst crops, error maps, histogram).")
@click.option("--trace", is_flag=True, help="Record a test-time adapter's loss and PSNR at every adaptation step "
              "in OUT/trace.json (and plot mean PSNR against the step in the report); costs one extra forward "
              "pass per step.")
@click.option("--tile", type=click.IntRange(min=1), help="Tile side for bounded-memory inference.")
@click.option("--overlap", type=click.IntRange(min=0), default=32, show_default=True, help="Tile overlap in pixels.")
@click.option("--ensemble", is_flag=True, help="x8 geometric self-ensemble.")
@click.option("--device", help="torch device, e.g. cpu, cuda, cuda:1, mps (default cpu).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Skip items a previous run into OUT finished (--no-resume recomputes all).")
def benchmark_command(
    name: str, root: str | None, bench_option: tuple[str, ...], model: str, model_type: str | None,
    head: str | None, adapter: str | None, option: tuple[str, ...], out_dir: str | None, limit: int | None,
    as_json: bool, save_images: bool, report: bool, trace: bool, tile: int | None, overlap: int, ensemble: bool,
    device: str | None, resume: bool,
) -> None:
    """Score a model on benchmark NAME (polyu, nam, paired_folder, synthetic, dnd, sidd, ...)."""
    from ..registry import BENCHMARKS
    from ..runner import run_benchmark

    if (save_images or report or trace) and out_dir is None:
        raise click.UsageError("--save-images, --report and --trace write files: give --out DIR")
    bench_options = {}
    for pair in bench_option:
        try:
            bench_options.update(parse_options([pair]))
        except click.BadParameter as exc:
            raise click.BadParameter(exc.message, param_hint="-B") from exc
    if root is not None:
        if "root" in bench_options:
            raise click.UsageError("give the root once: --root or -B root=..., not both")
        bench_options["root"] = root
    benchmark = BENCHMARKS.build({"type": name, **bench_options})
    created_group = _init_distributed()
    try:
        torch_device = pick_device(_rank_device(device))
        extra = {"model_type": model_type} if model_type is not None else {}
        pipeline = build_pipeline(model, adapter, parse_options(option), head, **extra).to(torch_device).eval()
        label = pipeline.display_name if hasattr(pipeline, "display_name") else getattr(pipeline, "name", model)
        if Path(model).suffix in {".safetensors", ".pth", ".pt", ".ckpt"}:
            label = f"{label} ({Path(model).name})"
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        result = _run(run_benchmark, pipeline, benchmark, name, label, out_dir, limit, tile, overlap, ensemble,
                      torch_device, save_images, resume, show=rank == 0, trace=trace)
        if rank != 0:
            return
        if report:
            from ..report import write_report

            path = write_report(result, benchmark, out_dir, model=pipeline)  # type: ignore[arg-type]
            stderr.print(f"report: {path}")
        if as_json:
            click.echo(json.dumps(result.as_dict(), indent=2, default=str))
        else:
            _print_table(result, Console())
        if out_dir is not None:
            stderr.print(f"results: {Path(out_dir) / 'results.json'}, {Path(out_dir) / 'results.csv'}"
                         + (f"; trace: {Path(out_dir) / 'trace.json'}" if trace else "")
                         + (f"; submission: {result.submission}" if result.submission else ""))
    finally:
        if created_group:
            torch.distributed.destroy_process_group()


def _run(
    run_benchmark: Any, pipeline: Any, benchmark: Any, name: str, label: str, out_dir: str | None,
    limit: int | None, tile: int | None, overlap: int, ensemble: bool, device: torch.device,
    save_images: bool, resume: bool, show: bool, trace: bool = False,
) -> Any:
    """``run_benchmark`` with a rich progress bar (items; tiles and adaptation steps per item)."""
    with progress_bar(transient=False) as bar:
        items = bar.add_task(name, total=None, visible=show)
        tiles = bar.add_task("tiles", total=None, visible=False)
        steps = bar.add_task("adaptation steps", total=None, visible=False)
        psnrs: list[float] = []

        def on_item(done: int, total: int, record: Any) -> None:
            if record is not None and "psnr" in record.get("metrics", {}):
                psnrs.append(record["metrics"]["psnr"])
            mean = f" mean PSNR {sum(psnrs) / len(psnrs):.2f} dB" if psnrs else ""
            bar.update(items, completed=done, total=total, description=f"{name}{mean}")
            bar.update(tiles, visible=False)
            bar.update(steps, visible=False)

        def on_tile(done: int, total: int, *_: object) -> None:
            bar.update(tiles, completed=done, total=total, visible=show)

        def on_step(done: int, total: int, metrics: Any = None) -> None:
            shown = ""
            if isinstance(metrics, dict):
                shown = "".join(f" {key} {metrics[key]:.4g}" for key in ("loss", "psnr") if key in metrics)
            bar.update(steps, completed=done, total=total, visible=show, description=f"adaptation steps{shown}")

        adapter_obj = getattr(pipeline, "adapter", None)
        if adapter_obj is not None and hasattr(adapter_obj, "progress"):
            adapter_obj.progress = on_step
        try:
            return run_benchmark(
                pipeline, benchmark, out_dir=out_dir, limit=limit, tile=tile, overlap=overlap, ensemble=ensemble,
                device=device, progress=on_item, step_progress=on_tile if tile else None,
                save_images=save_images, resume=resume, label=label, trace=trace,
            )
        finally:
            if adapter_obj is not None and hasattr(adapter_obj, "progress"):
                adapter_obj.progress = None


COMMANDS = [benchmark_command]
