"""``noiseshift denoise``: run a backbone (optionally wrapped by an adapter) over images.

With a test-time adapter (``--adapter lan``, ``rfr``, ...) a progress bar shows its adaptation
steps, and ``--trace`` writes ``OUTPUT/trace.json``: the adapter, every image's per-step trace
(``{"step", "loss"}``; one run of steps per adapter call, so several with ``--tile``) by file
name, and the mean over images per step. It is rewritten after every image, and
``--skip-existing`` keeps the traces of the images it skips.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import torch

from ..denoiser import Denoiser
from ..errors import InvalidInputError, OutputExistsError
from .options import parse_options, pick_device, progress_bar, resolve_model, stderr

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
TRACE_FILE = "trace.json"


def expand_inputs(inputs: tuple[str, ...]) -> list[Path]:
    """Files as given, folders expanded to their images (sorted); missing paths are errors."""
    from ..image_io import list_images

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(list_images(path))
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidInputError(f"input {path} does not exist")
    stems = [p.stem for p in files]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise InvalidInputError(f"several inputs share the output name(s) {duplicates}; denoise them separately")
    return files


def build_pipeline(
    model: str, adapter: str | None, options: dict[str, Any], head: str | None, model_type: str | None = None
) -> Denoiser:
    """The model the CLI runs: ``resolve_model`` plus an optional test-time adapter."""
    from ..registry import ADAPTERS

    if adapter is None:
        return resolve_model(model, options, head, model_type)
    backbone = resolve_model(model, {}, head, model_type)
    adapter_obj = ADAPTERS.build({"type": adapter, **options})
    if not adapter_obj.per_image and adapter_obj.needs:
        raise InvalidInputError(
            f"adapter {adapter!r} adapts from data ({', '.join(sorted(adapter_obj.needs))}) before it can "
            "denoise: fit it first (Adapter.fit) and pass the saved domain head with --head"
        )
    return adapter_obj.wrap(backbone)


@click.command("denoise")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--model", default="default", show_default=True,
              help="'default', a weights file, or a parameter-free denoiser name (bm3d, nlmeans).")
@click.option("--model-type", help="Registry name of the architecture of a checkpoint without noiseshift "
              "metadata (e.g. an official .pth); -O options are then its constructor options.")
@click.option("--head", type=click.Path(dir_okay=False), help="Domain head (from an adapter) applied on top.")
@click.option("--adapter", help="Test-time adapter that wraps the model (e.g. lan, rfr).")
@click.option("-O", "option", multiple=True, metavar="KEY=VALUE",
              help="Option for the adapter (or for the model when no adapter is given); repeatable.")
@click.option("-C", "--cond", "condition", multiple=True, metavar="KEY=VALUE",
              help="Per-image condition for backbones that declare it (e.g. -C sensor=SonyA7S2 -C iso=800); "
              "applies to every input.")
@click.option("--tile", type=int, help="Tile side for bounded-memory inference on large images.")
@click.option("--overlap", type=int, default=32, show_default=True, help="Tile overlap in pixels.")
@click.option("--tile-batch", type=int, default=4, show_default=True, help="Tiles per forward pass.")
@click.option("--tile-margin", type=int, help="Zero-weight pixels at inner tile edges (default overlap/4); "
              "at least the network's receptive-field radius makes tiled output match untiled.")
@click.option("--ensemble", is_flag=True, help="x8 geometric self-ensemble.")
@click.option("--device", help="torch device, e.g. cpu, cuda, cuda:1, mps (default cpu).")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default="8", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose output exists (resume a run).")
@click.option("--trace", is_flag=True, help="Write the test-time adapter's loss at every adaptation step to "
              "OUTPUT/trace.json.")
def denoise_command(
    inputs: tuple[str, ...], out_dir: str, model: str, model_type: str | None, head: str | None, adapter: str | None,
    option: tuple[str, ...], condition: tuple[str, ...], tile: int | None, overlap: int, tile_batch: int, tile_margin: int | None, ensemble: bool,
    device: str | None, bit_depth: str, overwrite: bool, skip_existing: bool, trace: bool,
) -> None:
    """Denoise INPUT images (files or folders) into OUTPUT as PNG files of the same names."""
    from ..image_io import read_image, write_image
    from ..inference import denoise
    from ..runner import describe_model

    if overwrite and skip_existing:
        raise click.UsageError("--overwrite and --skip-existing exclude each other")
    files = expand_inputs(inputs)
    destination = Path(out_dir)
    targets = [(f, destination / f"{f.stem}.png") for f in files]
    trace_path = destination / TRACE_FILE
    existing = [t for _, t in targets if t.exists()] + ([trace_path] if trace and trace_path.exists() else [])
    if existing and not (overwrite or skip_existing):
        raise OutputExistsError(
            f"{len(existing)} output(s) exist, e.g. {existing[0]}; pass --overwrite to replace them "
            "or --skip-existing to resume"
        )
    if skip_existing:
        targets = [(f, t) for f, t in targets if not t.exists()]
    torch_device = pick_device(device)
    cond = parse_options(condition) or None
    pipeline = build_pipeline(model, adapter, parse_options(option), head, model_type).to(torch_device).eval()
    adapter_obj = getattr(pipeline, "adapter", None)
    traces: dict[str, list[dict[str, Any]]] | None = None
    described: dict[str, Any] = {}
    if trace:
        if not (getattr(adapter_obj, "per_image", False) and hasattr(adapter_obj, "trace")):
            raise InvalidInputError("--trace records the steps of a test-time adapter: give --adapter lan, rfr, ...")
        traces = _previous_traces(trace_path) if skip_existing else {}
        described = describe_model(pipeline)
    with progress_bar() as bar:
        images = bar.add_task("images", total=len(targets))
        tiles = bar.add_task("tiles", total=None, visible=False)
        steps = bar.add_task("adaptation steps", total=None, visible=False)

        def report_tiles(done: int, total: int, *_: object) -> None:
            bar.update(tiles, completed=done, total=total, visible=True)

        def report_steps(done: int, total: int, metrics: Any = None) -> None:
            loss = f" loss {metrics['loss']:.4g}" if isinstance(metrics, dict) and "loss" in metrics else ""
            bar.update(steps, completed=done, total=total, visible=True, description=f"adaptation steps{loss}")

        if adapter_obj is not None and hasattr(adapter_obj, "progress"):
            adapter_obj.progress = report_steps
        try:
            for source, target in targets:
                bar.update(images, description=f"images ({source.name})")
                noisy = read_image(source)
                entries: list[dict[str, Any]] = []
                if traces is not None:
                    adapter_obj.trace = entries  # type: ignore[union-attr]
                out = denoise(pipeline, noisy, cond, tile=tile, overlap=overlap, batch_size=tile_batch,
                              margin=tile_margin, ensemble=ensemble, device=torch_device,
                              progress=report_tiles if tile else None)
                write_image(target, out, bit_depth=int(bit_depth), overwrite=overwrite)  # type: ignore[arg-type]
                if traces is not None:
                    traces[source.name] = entries
                    _write_traces(trace_path, described, traces)
                bar.advance(images)
        finally:
            if adapter_obj is not None and hasattr(adapter_obj, "progress"):
                adapter_obj.progress = None
            if traces is not None:
                adapter_obj.trace = None  # type: ignore[union-attr]
    stderr.print(f"wrote {len(targets)} image(s) to {destination}" + (f"; trace: {trace_path}" if trace else ""))


def _previous_traces(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The per-image traces of an earlier run into the same folder (empty if none or unreadable)."""
    try:
        images = json.loads(path.read_text(encoding="utf-8")).get("images", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): list(v) for k, v in images.items() if isinstance(v, list)} if isinstance(images, dict) else {}


def _write_traces(path: Path, described: dict[str, Any], traces: dict[str, list[dict[str, Any]]]) -> None:
    from ..image_io import atomic_write_text
    from ..runner import mean_trace

    record = {
        "model": described.get("name"),
        "adapter": described.get("adapter"),
        "backbone": described.get("backbone"),
        "mean": mean_trace([{"trace": entries} for entries in traces.values()]),
        "images": traces,
    }
    atomic_write_text(path, json.dumps(record, indent=2) + "\n", overwrite=True)


COMMANDS = [denoise_command]
