"""Throughput of the batched torch CBDNet noise pipeline against a per-image NumPy version.

Both implement the same pipeline: GGCM inverse camera response → heteroscedastic noise
``sqrt(σ_s²·L + σ_c²)`` in the irradiance domain → Bayer mosaic → Malvar-He-Cutler demosaic →
camera response (→ JPEG with ``--jpeg``). The NumPy version below is written independently for
this comparison, the way one would write it per image without torch: ``np.interp`` table
lookups, slicing for the mosaic, shifted-slice sums for the 5×5 demosaicing filters.

Before timing, the script checks that the two agree given the same parameters: identical σ
maps, identical noise-free outputs (same CRF, mosaic and demosaic), and matching noise
statistics (residual standard deviation per brightness bin, from different random streams).

Usage::

    python tools/perf/cbdnet_throughput.py                 # 512×512, batch 8, CPU
    python tools/perf/cbdnet_throughput.py --jpeg --batch 16 --repeats 5
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from noiseshift_cbdnet_noise import CBDNetNoise

PATTERN_RED_SITE = {"rggb": (0, 0), "grbg": (0, 1), "gbrg": (1, 0), "bggr": (1, 1)}

# Malvar-He-Cutler filters in eighths, written out again for the NumPy version as
# {(dy, dx): weight}: green at red/blue, red/blue at green along a row, along a column, and
# red at blue / blue at red.
MHC_TAPS = {
    "green": {(0, 0): 4, (-1, 0): 2, (1, 0): 2, (0, -1): 2, (0, 1): 2,
              (-2, 0): -1, (2, 0): -1, (0, -2): -1, (0, 2): -1},
    "row": {(0, 0): 5, (0, -1): 4, (0, 1): 4, (0, -2): -1, (0, 2): -1,
            (-1, -1): -1, (-1, 1): -1, (1, -1): -1, (1, 1): -1, (-2, 0): 0.5, (2, 0): 0.5},
    "col": {(0, 0): 5, (-1, 0): 4, (1, 0): 4, (-2, 0): -1, (2, 0): -1,
            (-1, -1): -1, (-1, 1): -1, (1, -1): -1, (1, 1): -1, (0, -2): 0.5, (0, 2): 0.5},
    "diag": {(0, 0): 6, (-1, -1): 2, (-1, 1): 2, (1, -1): 2, (1, 1): 2,
             (-2, 0): -1.5, (2, 0): -1.5, (0, -2): -1.5, (0, 2): -1.5},
}


# -- the per-image NumPy pipeline ---------------------------------------------------------------


def numpy_ggcm_inverse_table(exponent: float, end_slope: float, grid: int = 1024) -> np.ndarray:
    """``f⁻¹`` at ``linspace(0, 1, grid)`` by bisection on ``f(r) = r^(a + (s − a)·r)``."""
    target = np.linspace(0.0, 1.0, grid)
    low, high = np.zeros(grid), np.ones(grid)
    for _ in range(40):
        middle = 0.5 * (low + high)
        below = middle ** (exponent + (end_slope - exponent) * middle) < target
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    table = 0.5 * (low + high)
    table[0], table[-1] = 0.0, 1.0
    return table


def numpy_demosaic(raw: np.ndarray, pattern: str) -> np.ndarray:
    """Malvar-He-Cutler demosaic of an ``H×W`` mosaic; returns ``H×W×3``."""
    height, width = raw.shape
    padded = np.pad(raw, 2, mode="reflect")
    estimate = {}
    for name, taps in MHC_TAPS.items():
        total = np.zeros_like(raw)
        for (dy, dx), weight in taps.items():
            total += weight * padded[2 + dy : 2 + dy + height, 2 + dx : 2 + dx + width]
        estimate[name] = total / 8.0
    red_row, red_col = PATTERN_RED_SITE[pattern]
    rows = (np.arange(height) % 2 == red_row)[:, None]
    cols = (np.arange(width) % 2 == red_col)[None, :]
    is_red, is_blue = rows & cols, ~rows & ~cols
    is_green = ~(is_red | is_blue)
    red = np.where(is_red, raw, np.where(is_blue, estimate["diag"], np.where(rows, estimate["row"], estimate["col"])))
    blue = np.where(is_blue, raw, np.where(is_red, estimate["diag"], np.where(rows, estimate["col"], estimate["row"])))
    green = np.where(is_green, raw, estimate["green"])
    return np.stack([red, green, blue], axis=-1)


def numpy_pipeline(
    image: np.ndarray, *, exponent: float, end_slope: float, sigma_s: float, sigma_c: float, pattern: str,
    jpeg_quality: int, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One image, ``H×W×3`` float32 in [0, 1] → (noisy ``H×W×3``, σ map ``H×W×3``)."""
    grid = np.linspace(0.0, 1.0, 1024)
    irradiance = np.interp(np.clip(image, 0, 1), grid, numpy_ggcm_inverse_table(exponent, end_slope))
    sigma = np.sqrt(sigma_s**2 * irradiance + sigma_c**2)
    noisy = np.clip(irradiance + sigma * rng.standard_normal(irradiance.shape), 0.0, 1.0)
    red_row, red_col = PATTERN_RED_SITE[pattern]
    raw = noisy[..., 1].copy()
    raw[red_row::2, red_col::2] = noisy[red_row::2, red_col::2, 0]
    raw[1 - red_row :: 2, 1 - red_col :: 2] = noisy[1 - red_row :: 2, 1 - red_col :: 2, 2]
    rgb = np.clip(numpy_demosaic(raw, pattern), 0.0, 1.0)
    out = rgb ** (exponent + (end_slope - exponent) * rgb)
    if jpeg_quality:
        bgr = np.round(np.clip(out, 0, 1)[..., ::-1] * 255).astype(np.uint8)
        _, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        out = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float64) / 255.0
    return out.astype(np.float32), sigma.astype(np.float32)


# -- checks and timing ----------------------------------------------------------------------------


def test_images(batch: int, size: int) -> torch.Tensor:
    """Crops and flips of scikit-image's astronaut, ``batch×3×size×size`` in [0, 1]."""
    from skimage.data import astronaut

    full = torch.from_numpy(astronaut().astype(np.float32) / 255.0).permute(2, 0, 1)
    full = torch.nn.functional.interpolate(full[None], size=(size, size), mode="bilinear", align_corners=False)[0]
    views = [full, full.flip(-1), full.flip(-2), full.flip(-1, -2)]
    return torch.stack([views[i % 4] for i in range(batch)]).clamp(0, 1)


def agreement(clean: torch.Tensor) -> None:
    """Print how closely the two implementations agree at fixed parameters."""
    params = {"exponent": 0.55, "end_slope": 0.25, "sigma_s": 0.08, "sigma_c": 0.02, "pattern": "grbg"}
    image = clean[:1]
    numpy_image = image[0].permute(1, 2, 0).double().numpy()

    def torch_model(sigma_s: float, sigma_c: float) -> CBDNetNoise:
        return CBDNetNoise(sigma_s=sigma_s, sigma_c=sigma_c, crf_exponent=params["exponent"],
                           crf_end_slope=params["end_slope"], patterns=[params["pattern"]])

    fixed = {k: params[k] for k in ("exponent", "end_slope", "pattern")}
    noisy_t = torch_model(params["sigma_s"], params["sigma_c"])(image, torch.Generator().manual_seed(0))
    noisy_n, sigma_n = numpy_pipeline(numpy_image, **fixed, sigma_s=params["sigma_s"], sigma_c=params["sigma_c"],
                                      jpeg_quality=0, rng=np.random.default_rng(0))
    sigma_gap = np.abs(noisy_t.sigma[0].permute(1, 2, 0).numpy() - sigma_n).max()
    clean_t = torch_model(0.0, 0.0)(image, torch.Generator().manual_seed(0)).noisy[0].permute(1, 2, 0).numpy()
    clean_n, _ = numpy_pipeline(numpy_image, **fixed, sigma_s=0.0, sigma_c=0.0, jpeg_quality=0,
                                rng=np.random.default_rng(0))
    print(f"agreement at fixed parameters {params}:")
    print(f"  σ map, max |torch − numpy|                    {sigma_gap:.2e}")
    print(f"  noise-free pipeline output, max |torch − numpy| {np.abs(clean_t - clean_n).max():.2e}")
    residual_t = noisy_t.noisy[0].permute(1, 2, 0).numpy() - clean_t
    residual_n = noisy_n - clean_n
    print("  residual std of the noisy output by clean brightness (torch / numpy, different streams):")
    for low, high in ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0)):
        inside = (clean_n >= low) & (clean_n < high)
        if inside.sum() < 1000:
            continue
        std_t, std_n = residual_t[inside].std(), residual_n[inside].std()
        print(f"    [{low:.1f}, {high:.1f}): {std_t:.4f} / {std_n:.4f}  ratio {std_t / std_n:.3f}  "
              f"({int(inside.sum())} values)")


def time_interleaved(runs: dict, repeats: int) -> dict[str, float]:
    """Best wall time of each run, alternating them so that load from other processes on a
    shared machine hits both alike."""
    for run in runs.values():
        run()  # warm-up: allocator, OpenCV, torch kernels
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each; the best is reported")
    parser.add_argument("--jpeg", action="store_true", help="include JPEG at quality 60-100")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    clean = test_images(args.batch, args.size)
    agreement(clean)

    model = CBDNetNoise(jpeg_quality=[60, 100] if args.jpeg else None)
    generator = torch.Generator().manual_seed(0)

    def torch_run() -> None:
        with torch.no_grad():
            model(clean, generator)

    numpy_images = [img.permute(1, 2, 0).double().numpy() for img in clean]
    rng = np.random.default_rng(0)

    def numpy_run() -> None:
        for img in numpy_images:
            # Per-image parameter draws, as the batched model does.
            exponent, end_slope = rng.uniform(0.35, 1.2), rng.uniform(0.02, 1.0)
            numpy_pipeline(img, exponent=exponent, end_slope=end_slope, sigma_s=rng.uniform(0, 0.16),
                           sigma_c=rng.uniform(0, 0.06), pattern=str(rng.choice(list(PATTERN_RED_SITE))),
                           jpeg_quality=int(rng.integers(60, 101)) if args.jpeg else 0, rng=rng)

    best = time_interleaved({"torch": torch_run, "numpy": numpy_run}, args.repeats)
    torch_seconds, numpy_seconds = best["torch"], best["numpy"]
    torch_rate, numpy_rate = args.batch / torch_seconds, args.batch / numpy_seconds
    print(f"\n{args.batch} images of {args.size}×{args.size}, CPU, torch threads {torch.get_num_threads()}, "
          f"JPEG {'on' if args.jpeg else 'off'}, best of {args.repeats}:")
    print(f"  torch, batched       {torch_rate:8.2f} images/s  ({torch_seconds:.3f} s per batch)")
    print(f"  numpy, per image     {numpy_rate:8.2f} images/s  ({numpy_seconds:.3f} s per batch)")
    print(f"  ratio torch / numpy  {torch_rate / numpy_rate:8.2f}×")


if __name__ == "__main__":
    main()
