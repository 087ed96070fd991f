"""``noiseshift demo``: the shipped default model on a built-in sample image.

The sample is scikit-image's ``astronaut`` photograph (public domain, NASA; shipped inside the
scikit-image wheel, so no download), centre-cropped to ``--size``. It is made noisy with the
``gaussian`` noise model (additive white Gaussian noise, σ = 25/255 by default, not clipped,
drawn from a seeded generator), denoised with ``--model`` (``default``: the shipped model, or
classical BM3D if the file is missing), and written with a labelled side-by-side figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import torch

from .options import pick_device, resolve_model, stderr


def sample_image(size: int) -> torch.Tensor:
    """The built-in sample: astronaut, centre crop ``size×size``, ``1×3×size×size`` in [0, 1]."""
    from skimage import data

    image = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    height, width = image.shape[-2:]
    size = min(size, height, width)
    top, left = (height - size) // 2, (width - size) // 2
    return image[..., top : top + size, left : left + size].contiguous()


def fresh_directory(base: Path) -> Path:
    """``base`` if it does not exist or is empty, else ``base-2``, ``base-3``, ... (never overwrites)."""
    candidate, index = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        index += 1
        candidate = base.with_name(f"{base.name}-{index}")
    candidate.mkdir(parents=True, exist_ok=True)
    return candidate


def side_by_side(path: Path, panels: list[tuple[str, torch.Tensor]]) -> None:
    """Write a labelled figure of images next to each other (atomically)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..image_io import atomic_write_bytes

    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.4), dpi=100)
    for axis, (title, image) in zip(axes, panels):
        axis.imshow(image[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
        axis.set_title(title, fontsize=10)
        axis.axis("off")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


@click.command("demo")
@click.option("-o", "--output", "out_dir", default="noiseshift-demo", show_default=True, type=click.Path(file_okay=False),
              help="Output folder; if it is not empty, a numbered sibling is used instead.")
@click.option("--model", default="default", show_default=True, help="'default', a weights file or a classical denoiser name.")
@click.option("--sigma", default=25.0, show_default=True, help="Gaussian noise σ on the 0-255 scale.")
@click.option("--size", default=256, show_default=True, help="Side of the centre crop of the sample image.")
@click.option("--seed", default=0, show_default=True, help="Seed of the noise generator.")
@click.option("--device", help="torch device (default cpu).")
def demo_command(out_dir: str, model: str, sigma: float, size: int, seed: int, device: str | None) -> None:
    """Denoise a built-in noisy sample with the default model and print PSNR/SSIM."""
    from ..image_io import write_image
    from ..inference import denoise
    from ..metrics import psnr, ssim
    from ..registry import NOISE_MODELS

    torch_device = pick_device(device)
    clean = sample_image(size)
    noise = NOISE_MODELS.build({"type": "gaussian", "sigma": sigma / 255})
    noisy_sample = noise(clean, torch.Generator().manual_seed(seed))
    noisy = noisy_sample.noisy.clamp(0, 1)  # a saved/displayed image lives in [0, 1]
    denoiser = resolve_model(model).to(torch_device).eval()
    label = denoiser.name
    stderr.print(f"denoising a {size}x{size} sample (gaussian σ={sigma:g}/255) with {label} ...")
    cond = {"sigma": torch.full_like(noisy[:, :1], sigma / 255)}
    output = denoise(denoiser, noisy, cond, device=torch_device).clamp(0, 1)
    scores = {
        "noisy": {"psnr": float(psnr(noisy, clean, 1.0)), "ssim": float(ssim(noisy, clean, 1.0))},
        "denoised": {"psnr": float(psnr(output, clean, 1.0)), "ssim": float(ssim(output, clean, 1.0))},
    }
    folder = fresh_directory(Path(out_dir))
    for name, image in (("clean", clean), ("noisy", noisy), ("denoised", output)):
        write_image(folder / f"{name}.png", image)
    side_by_side(folder / "side_by_side.png", [
        (f"noisy  {scores['noisy']['psnr']:.2f} dB", noisy),
        (f"{label}  {scores['denoised']['psnr']:.2f} dB", output),
        ("clean", clean),
    ])
    conventions = {"data_range": 1.0, "quantize": "float", "ssim": "gaussian 11x11 σ1.5", "color_space": "rgb"}
    record = {"model": label, "noise": {"type": "gaussian", "sigma_255": sigma, "seed": seed}, "size": size,
              "scores": scores, "conventions": conventions}
    from ..image_io import atomic_write_text

    atomic_write_text(folder / "scores.json", json.dumps(record, indent=2))
    click.echo(f"noisy    PSNR {scores['noisy']['psnr']:.2f} dB  SSIM {scores['noisy']['ssim']:.4f}")
    click.echo(f"{label:<8} PSNR {scores['denoised']['psnr']:.2f} dB  SSIM {scores['denoised']['ssim']:.4f}")
    click.echo(f"wrote {folder}/{{clean,noisy,denoised,side_by_side}}.png and scores.json")

COMMANDS = [demo_command]
