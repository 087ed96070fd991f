"""``noiseshift noise``: write noisy versions of images with a noise model, to inspect it.

For every input ``<stem>.<ext>`` it writes, in OUTDIR:

* ``<stem>.png`` — the noisy image, clipped to ``[0, 1]`` and quantised to 8 bits (16 with
  ``--bit-depth 16``); or ``<stem>.npy`` with ``--format npy``: ``H×W×C`` float32, unclipped;
* ``<stem>_sigma.png`` — when the model returns a per-pixel noise std map: a **16-bit** PNG
  holding ``round(σ · 65535)`` with σ in image units (``[0, 1]`` scale, so σ = 25/255 is stored
  as 6425), one channel when the map is shared by the channels, RGB otherwise; σ above 1 is
  clipped. With ``--format npy``: ``<stem>_sigma.npy``, ``H×W×C`` float32 (``C`` = 1 or the
  image's), exact;
* ``noise.json`` — the model, its config, the seed, and per image the seed used and the drawn
  parameters (``meta``: σ, σ_s/σ_c, chosen mixture component, ...).

Image ``stem`` is noised with a generator seeded by ``(--seed, CRC-32 of stem)``: the result
for a file does not depend on which other files are processed. Nothing is overwritten unless
``--overwrite`` is given (checked for every output before anything is written).
"""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from ..errors import InvalidInputError, OutputExistsError
from .options import parse_options, progress_bar, stderr


def image_seed(seed: int, stem: str) -> int:
    """The generator seed of the image named ``stem`` for ``--seed seed``."""
    words = np.random.SeedSequence([seed, zlib.crc32(stem.encode("utf-8"))]).generate_state(2, dtype=np.uint32)
    return ((int(words[0]) << 32) | int(words[1])) & ((1 << 63) - 1)


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32))
    return buffer.getvalue()


@click.command("noise")
@click.argument("name")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("-O", "option", multiple=True, metavar="KEY=VALUE",
              help="Noise model option, e.g. -O sigma=0.1 (repeatable).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Base seed.")
@click.option("--format", "fmt", type=click.Choice(["png", "npy"]), default="png", show_default=True,
              help="png: quantised noisy image + 16-bit σ PNG; npy: exact float32 arrays.")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default="8", show_default=True,
              help="Bit depth of the noisy PNGs.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
def noise_command(
    name: str, inputs: tuple[str, ...], out_dir: str, option: tuple[str, ...], seed: int, fmt: str,
    bit_depth: str, overwrite: bool,
) -> None:
    """Write noisy versions of INPUT images (files or folders) made by noise model NAME.

    NAME is a registered noise model (noiseshift list noise_models), e.g. gaussian,
    poisson_gaussian, mixture. The σ map is written next to each image when the model knows it.
    """
    from ..image_io import atomic_write_bytes, atomic_write_text, read_image, to_numpy_image, write_image
    from ..registry import NOISE_MODELS
    from .denoise_cmd import expand_inputs

    model = NOISE_MODELS.build({"type": name, **parse_options(option)})
    if model.domain != "srgb":
        raise InvalidInputError(
            f"noise model {name!r} works in the {model.domain!r} domain; `noiseshift noise` reads sRGB images"
        )
    files = expand_inputs(inputs)
    destination = Path(out_dir)
    suffix = ".png" if fmt == "png" else ".npy"
    planned = [destination / "noise.json"]
    for file in files:
        planned += [destination / f"{file.stem}{suffix}", destination / f"{file.stem}_sigma{suffix}"]
    existing = [p for p in planned if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{len(existing)} output(s) exist, e.g. {existing[0]}; pass --overwrite to replace them")
    channels = model.in_channels if model.in_channels in (1, 3) else None
    records = []
    with progress_bar() as bar:
        task = bar.add_task("images", total=len(files))
        for file in files:
            clean = read_image(file, channels=channels)  # type: ignore[arg-type]
            file_seed = image_seed(seed, file.stem)
            drawn = model(clean, torch.Generator().manual_seed(file_seed))
            noisy_path = destination / f"{file.stem}{suffix}"
            sigma_path = destination / f"{file.stem}_sigma{suffix}" if drawn.sigma is not None else None
            if fmt == "png":
                write_image(noisy_path, drawn.noisy, bit_depth=int(bit_depth), overwrite=overwrite)  # type: ignore[arg-type]
                if sigma_path is not None:
                    write_image(sigma_path, drawn.sigma[:1], bit_depth=16, overwrite=overwrite)  # type: ignore[index]
            else:
                atomic_write_bytes(noisy_path, _npy_bytes(to_numpy_image(drawn.noisy)), overwrite=overwrite)
                if sigma_path is not None:
                    atomic_write_bytes(sigma_path, _npy_bytes(to_numpy_image(drawn.sigma[:1])), overwrite=overwrite)  # type: ignore[index]
            records.append({
                "input": str(file), "noisy": noisy_path.name, "sigma": sigma_path.name if sigma_path else None,
                "seed": file_seed, "meta": _jsonable(drawn.meta),
            })
            bar.advance(task)
    summary = {"noise_model": model.name, "config": _jsonable(model.config()), "seed": seed, "format": fmt,
               "sigma_png_scale": 65535 if fmt == "png" else None, "images": records}
    atomic_write_text(destination / "noise.json", json.dumps(summary, indent=2) + "\n", overwrite=overwrite)
    with_sigma = sum(1 for r in records if r["sigma"])
    stderr.print(f"wrote {len(records)} noisy image(s) ({with_sigma} with a σ map) to {destination}")


COMMANDS = [noise_command]
