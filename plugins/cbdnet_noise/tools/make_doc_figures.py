"""Make the figures of docs/noise_models.md from scikit-image's built-in astronaut image.

Everything goes through the plugin's public Python API (``CBDNetNoise``, ``UnprocessNoise``,
``unprocess``, ``process``, ``ggcm_curves``) with fixed seeds, so the figures are reproducible:

* ``cbdnet_crops.png``: a clean crop and the CBDNet model's output for four settings;
* ``cbdnet_histograms.png``: histograms of the added noise (noisy − clean) for those settings;
* ``cbdnet_sigma.png``: the σ map next to the measured local noise level, with and without JPEG;
* ``cbdnet_crf_family.png``: members of the built-in GGCM camera-response family;
* ``cbdnet_unprocess.png``: unprocessing — clean sRGB, clean raw, noisy raw rendered back to sRGB.

Usage::

    python plugins/cbdnet_noise/tools/make_doc_figures.py [--out docs/img] [--overwrite]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from skimage.data import astronaut  # noqa: E402

from noiseshift.image_io import atomic_write_bytes  # noqa: E402
from noiseshift_cbdnet_noise import CBDNetNoise, UnprocessNoise, ggcm_curves, process, unprocess  # noqa: E402
from noiseshift_cbdnet_noise.bayer import unpack_rggb  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
CROP = (slice(40, 168), slice(170, 298))  # the face and helmet rim: skin, edges, dark and bright
SETTINGS: list[tuple[str, dict]] = [
    ("paper, low\nσ_s=0.04, σ_c=0.01", {"sigma_s": 0.04, "sigma_c": 0.01}),
    ("paper, high\nσ_s=0.16, σ_c=0.06", {"sigma_s": 0.16, "sigma_c": 0.06}),
    ("matlab_linear, high\nσ_s=0.16, σ_c=0.06", {"sigma_s": 0.16, "sigma_c": 0.06, "std_form": "matlab_linear"}),
    ("paper + JPEG q=60\nσ_s=0.08, σ_c=0.03", {"sigma_s": 0.08, "sigma_c": 0.03, "jpeg_quality": 60}),
]
FIGURES = ("cbdnet_crops.png", "cbdnet_histograms.png", "cbdnet_sigma.png", "cbdnet_crf_family.png",
           "cbdnet_unprocess.png")
# One camera for all settings, so that they differ only in the noise.
CAMERA = {"crf_exponent": 0.5, "crf_end_slope": 0.3, "patterns": ["rggb"]}


def astronaut_tensor() -> torch.Tensor:
    """``1×3×512×512`` float32 in [0, 1]."""
    return torch.from_numpy(astronaut().astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def to_image(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).clamp(0, 1).numpy()


def save(figure: plt.Figure, path: Path, overwrite: bool) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)
    print(f"wrote {path} ({len(buffer.getvalue()) / 1024:.0f} KB)")


def settings_figures(clean: torch.Tensor, out: Path, overwrite: bool) -> None:
    samples = [CBDNetNoise(**CAMERA, **options)(clean, torch.Generator().manual_seed(1)) for _, options in SETTINGS]

    figure, axes = plt.subplots(1, 1 + len(SETTINGS), figsize=(2.3 * (1 + len(SETTINGS)), 2.7))
    axes[0].imshow(to_image(clean)[CROP])
    axes[0].set_title("clean", fontsize=9)
    for axis, (title, _), sample in zip(axes[1:], SETTINGS, samples):
        axis.imshow(to_image(sample.noisy)[CROP])
        axis.set_title(title, fontsize=9)
    for axis in axes:
        axis.set_axis_off()
    save(figure, out / "cbdnet_crops.png", overwrite)

    figure, axis = plt.subplots(figsize=(6.5, 3.4))
    # Bins one 8-bit level wide and centred on the levels, so JPEG's quantised output does not alias.
    bins = (np.arange(-102, 104) - 0.5) / 255
    for (title, _), sample in zip(SETTINGS, samples):
        residual = (sample.noisy - clean).flatten().numpy()
        axis.hist(residual, bins=bins, histtype="step", density=True, label=title.replace("\n", ", "))
    axis.set_yscale("log")
    axis.set_xlabel("noisy − clean (sRGB, [0, 1] units)")
    axis.set_ylabel("density")
    axis.set_title("CBDNet model: distribution of the added noise (whole 512×512 image)", fontsize=9)
    axis.legend(fontsize=7)
    save(figure, out / "cbdnet_histograms.png", overwrite)


def sigma_figure(clean: torch.Tensor, out: Path, overwrite: bool) -> None:
    """σ map vs the measured noise std: many noisy draws of one image, std per pixel."""
    crop = clean[..., 40:168, 170:298]
    draws = 48
    batch = crop.expand(draws, -1, -1, -1)
    cases = [("no mosaic, no JPEG", ["none"], None), ("RGGB + Malvar", ["rggb"], None),
             ("RGGB + Malvar + JPEG q=60", ["rggb"], 60)]
    rows = []
    for label, patterns, jpeg in cases:
        model = CBDNetNoise(sigma_s=0.08, sigma_c=0.03, crf="linear", patterns=patterns, jpeg_quality=jpeg)
        # The same camera and levels for every draw; only the noise differs.
        sample = model(batch, torch.Generator().manual_seed(2))
        measured = (sample.noisy - batch).std(dim=0).mean(dim=0)
        rows.append((label, sample.sigma[0].mean(dim=0), measured))
        # Away from clipping (every channel of the clean pixel in [0.15, 0.75]), how far is
        # the measured std from the σ map? Printed for docs/noise_models.md.
        unclipped = ((crop[0] >= 0.15) & (crop[0] <= 0.75)).all(dim=0)
        ratio = (measured / sample.sigma[0].mean(dim=0))[unclipped]
        print(f"  measured std / σ map, {label}: median {float(ratio.median()):.3f} "
              f"over {int(unclipped.sum())} pixels")
    figure, axes = plt.subplots(len(rows), 3, figsize=(6.6, 2.2 * len(rows)))
    top = max(float(r[1].max()) for r in rows)
    for row, (label, sigma, measured) in zip(axes, rows):
        row[0].imshow(sigma.numpy(), vmin=0, vmax=top, cmap="magma")
        row[0].set_title("σ map", fontsize=8)
        row[1].imshow(measured.numpy(), vmin=0, vmax=top, cmap="magma")
        row[1].set_title(f"measured std: {label}", fontsize=8)
        row[2].scatter(sigma.flatten().numpy()[::9], measured.flatten().numpy()[::9], s=1, alpha=0.3)
        row[2].plot([0, top], [0, top], color="black", linewidth=0.8)
        row[2].set_xlabel("σ map", fontsize=7)
        row[2].set_ylabel("measured", fontsize=7)
        row[2].tick_params(labelsize=6)
        row[0].set_axis_off()
        row[1].set_axis_off()
    figure.suptitle(f"linear CRF, σ_s=0.08, σ_c=0.03; std over {draws} draws, mean over channels", fontsize=8)
    figure.tight_layout()
    save(figure, out / "cbdnet_sigma.png", overwrite)


def crf_figure(out: Path, overwrite: bool) -> None:
    low_a, high_a = CBDNetNoise.DEFAULT_CRF_EXPONENT
    low_s, high_s = CBDNetNoise.DEFAULT_CRF_END_SLOPE
    generator = torch.Generator().manual_seed(3)
    exponent = low_a + (high_a - low_a) * torch.rand(24, generator=generator)
    end_slope = low_s + (high_s - low_s) * torch.rand(24, generator=generator)
    curves = ggcm_curves(exponent, end_slope)
    r = torch.linspace(0, 1, 513).expand(24, 513).contiguous()
    figure, axis = plt.subplots(figsize=(4.2, 3.8))
    for curve in curves.apply(r):
        axis.plot(r[0].numpy(), curve.numpy(), color="tab:blue", alpha=0.35, linewidth=0.8)
    corners = ggcm_curves(torch.tensor([low_a, low_a, high_a, high_a]), torch.tensor([low_s, high_s, low_s, high_s]))
    corner_values = [(low_a, low_s), (low_a, high_s), (high_a, low_s), (high_a, high_s)]
    for curve, (a, s) in zip(corners.apply(r[:4]), corner_values):
        axis.plot(r[0].numpy(), curve.numpy(), linewidth=1.6, label=f"a={a}, s={s}")
    axis.plot(r[0].numpy(), r[0].numpy() ** (1 / 2.2), "k--", linewidth=1, label="gamma 1/2.2")
    axis.set_xlabel("irradiance L")
    axis.set_ylabel("brightness f(L)")
    axis.set_title("GGCM f(L) = L^(a+(s−a)L): 24 draws and the box corners", fontsize=8)
    axis.legend(fontsize=7)
    save(figure, out / "cbdnet_crf_family.png", overwrite)


def unprocess_figure(clean: torch.Tensor, out: Path, overwrite: bool) -> None:
    crop = clean[..., 40:168, 170:298].contiguous()
    generator = torch.Generator().manual_seed(4)
    raw, metadata = unprocess(crop, generator)
    panels = [("clean sRGB", to_image(crop)), ("clean raw (RGGB mosaic)", unpack_rggb(raw)[0, 0].numpy())]
    for title, shot in (("low noise", 1e-3), ("high noise", 1e-2)):
        noisy = UnprocessNoise(shot_noise=shot)(raw, generator)
        read = float(noisy.meta["read_noise"][0])
        rendered = to_image(process(noisy.noisy, metadata))
        panels.append((f"{title}: λ_shot={shot:g}\nλ_read={read:.1e}, process()", rendered))
    panels.append(("process(clean raw)", to_image(process(raw, metadata))))
    figure, axes = plt.subplots(1, len(panels), figsize=(2.3 * len(panels), 2.8))
    for axis, (title, image) in zip(axes, panels):
        axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1 if image.ndim == 3 else None)
        axis.set_title(title, fontsize=8)
        axis.set_axis_off()
    save(figure, out / "cbdnet_unprocess.png", overwrite)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--overwrite", action="store_true", help="replace existing figures")
    args = parser.parse_args()
    existing = [name for name in FIGURES if (args.out / name).exists()]
    if existing and not args.overwrite:
        raise SystemExit(f"{args.out}: {', '.join(existing)} already exist; pass --overwrite to replace them")
    clean = astronaut_tensor()
    settings_figures(clean, args.out, args.overwrite)
    sigma_figure(clean, args.out, args.overwrite)
    crf_figure(args.out, args.overwrite)
    unprocess_figure(clean, args.out, args.overwrite)


if __name__ == "__main__":
    main()
