"""``noiseshift denoise``: run a backbone (optionally wrapped by an adapter) over images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import torch

from ..denoiser import Denoiser
from ..errors import InvalidInputError, OutputExistsError
from .options import parse_options, pick_device, progress_bar, resolve_model, stderr

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


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
def denoise_command(
    inputs: tuple[str, ...], out_dir: str, model: str, model_type: str | None, head: str | None, adapter: str | None,
    option: tuple[str, ...], condition: tuple[str, ...], tile: int | None, overlap: int, tile_batch: int, tile_margin: int | None, ensemble: bool,
    device: str | None, bit_depth: str, overwrite: bool, skip_existing: bool,
) -> None:
    """Denoise INPUT images (files or folders) into OUTPUT as PNG files of the same names."""
    from ..image_io import read_image, write_image
    from ..inference import denoise

    if overwrite and skip_existing:
        raise click.UsageError("--overwrite and --skip-existing exclude each other")
    files = expand_inputs(inputs)
    destination = Path(out_dir)
    targets = [(f, destination / f"{f.stem}.png") for f in files]
    existing = [t for _, t in targets if t.exists()]
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
    with progress_bar() as bar:
        images = bar.add_task("images", total=len(targets))
        steps = bar.add_task("tiles" if tile else "steps", total=None, visible=False)

        def report(done: int, total: int, *_: object) -> None:
            bar.update(steps, completed=done, total=total, visible=True)

        adapter_obj = getattr(pipeline, "adapter", None)
        if adapter_obj is not None and hasattr(adapter_obj, "progress"):
            adapter_obj.progress = report
        for source, target in targets:
            bar.update(images, description=f"images ({source.name})")
            noisy = read_image(source)
            out = denoise(pipeline, noisy, cond, tile=tile, overlap=overlap, batch_size=tile_batch, margin=tile_margin,
                          ensemble=ensemble,
                          device=torch_device, progress=report if tile else None)
            write_image(target, out, bit_depth=int(bit_depth), overwrite=overwrite)  # type: ignore[arg-type]
            bar.advance(images)
    stderr.print(f"wrote {len(targets)} image(s) to {destination}")

COMMANDS = [denoise_command]
