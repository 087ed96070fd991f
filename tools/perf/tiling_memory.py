"""Peak memory and time of untiled vs tiled denoising of a large image with a DnCNN-like net.

Each configuration runs in a fresh subprocess so peak RSS (``ru_maxrss``) is not inherited
from an earlier, larger run. The reported memory is the child's peak RSS minus its RSS right
after imports, model creation and input allocation, i.e. the working memory of denoising
itself (activations, padding copies, output and tile buffers).

Examples::

    python tools/perf/tiling_memory.py                               # 4000×3000, both modes
    python tools/perf/tiling_memory.py --height 1500 --width 2000
    python tools/perf/tiling_memory.py --skip-untiled --tile 512
    python tools/perf/tiling_memory.py --skip-tiled                  # untiled only
    python tools/perf/tiling_memory.py --compare                     # tiled vs untiled values
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from noiseshift.inference import denoise, tiled_denoise

_SEED = 0


class DnCNNLike(nn.Module):
    """17 3×3 conv layers (64 features, ReLU) predicting the noise, as in DnCNN without BN.

    Receptive-field radius 17 pixels. Weights are random (seeded, He-initialised so that
    activations keep their scale through the depth and ``--compare`` differences are not
    hidden by a vanishing residual); only cost and tiling consistency matter here.
    """

    size_multiple = 1

    def __init__(self, channels: int = 3, features: int = 64, depth: int = 17) -> None:
        super().__init__()
        self.in_channels = self.out_channels = channels
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        generator = torch.Generator().manual_seed(_SEED)
        for layer in self.body:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(layer.bias)

    def forward(self, noisy: torch.Tensor, cond: Mapping[str, Any] | None = None) -> torch.Tensor:
        """Denoise ``N×C×H×W`` images in ``[0, 1]``; returns ``N×C×H×W`` (not clipped)."""
        return noisy - self.body(noisy)


def _model_and_image(height: int, width: int) -> tuple[DnCNNLike, torch.Tensor]:
    model = DnCNNLike().eval()
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(_SEED + 1))
    return model, image


def _current_rss_kib() -> int:
    """Resident set size now, in KiB (Linux ``/proc``; falls back to the peak so far)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * resource.getpagesize() // 1024
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(args: argparse.Namespace) -> None:
    """Run one configuration and print one JSON line with its measurements."""
    model, image = _model_and_image(args.height, args.width)
    baseline = _current_rss_kib()
    start = time.perf_counter()
    if args.child == "tiled":
        output = denoise(model, image, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size)
    else:
        output = denoise(model, image)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "mode": args.child,
                "baseline_kib": baseline,
                "peak_kib": peak,
                "delta_kib": peak - baseline,
                "seconds": seconds,
                "output_mean": float(output.mean()),
                "threads": torch.get_num_threads(),
            }
        )
    )


def _run_child(mode: str, args: argparse.Namespace) -> dict[str, Any] | None:
    command = [
        sys.executable,
        __file__,
        "--child",
        mode,
        *("--height", str(args.height), "--width", str(args.width)),
        *("--tile", str(args.tile), "--overlap", str(args.overlap), "--batch-size", str(args.batch_size)),
    ]
    print(f"running {mode} ...", flush=True)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        # A negative code is a signal: -9 usually means the kernel's OOM killer.
        print(f"  {mode} failed with exit code {completed.returncode}:\n{completed.stderr[-2000:]}")
        return None
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _measure(args: argparse.Namespace) -> None:
    modes = [mode for mode, skip in (("untiled", args.skip_untiled), ("tiled", args.skip_tiled)) if not skip]
    if not modes:
        raise SystemExit("nothing to run: both --skip-untiled and --skip-tiled given")
    megapixels = args.height * args.width / 1e6
    print(
        f"image 1×3×{args.height}×{args.width} ({megapixels:.1f} MP), DnCNN-like 17×64 conv, "
        f"tile={args.tile} overlap={args.overlap} batch_size={args.batch_size}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    results = {mode: _run_child(mode, args) for mode in modes}

    print()
    print(f"{'mode':<8} {'peak - baseline':>16} {'baseline':>10} {'wall time':>10}")
    for mode, result in results.items():
        if result is None:
            print(f"{mode:<8} {'failed':>16}")
            continue
        print(
            f"{mode:<8} {result['delta_kib'] / 1024:>12.0f} MiB {result['baseline_kib'] / 1024:>6.0f} MiB "
            f"{result['seconds']:>9.1f}s"
        )
    untiled, tiled = results.get("untiled"), results.get("tiled")
    if untiled and tiled:
        print(
            f"\nuntiled/tiled: memory ×{untiled['delta_kib'] / max(tiled['delta_kib'], 1):.1f}, "
            f"time ×{untiled['seconds'] / tiled['seconds']:.2f}; "
            f"output means {untiled['output_mean']:.6f} / {tiled['output_mean']:.6f}"
        )


def _compare(args: argparse.Namespace) -> None:
    """Print how far tiled output is from untiled output on a small image."""
    height, width = args.compare_height, args.compare_width
    model, image = _model_and_image(height, width)
    print(
        f"image 1×3×{height}×{width}, DnCNN-like (receptive-field radius 17), "
        f"tile={args.tile} overlap={args.overlap} batch_size={args.batch_size}"
    )
    untiled = denoise(model, image)
    margins = sorted({0, args.overlap // 4} | ({args.margin} if args.margin is not None else set()))
    print(f"{'margin':>6} {'max |diff|':>12} {'mean |diff|':>12}")
    for margin in margins:
        with torch.no_grad():
            tiled = tiled_denoise(
                model, image, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size, margin=margin
            )
        difference = (tiled - untiled).abs()
        default = " (default)" if margin == args.overlap // 4 else ""
        print(f"{margin:>6} {difference.max().item():>12.3g} {difference.mean().item():>12.3g}{default}")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the measurement, the comparison, or one child run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--height", type=int, default=3000, help="image height (default 3000)")
    parser.add_argument("--width", type=int, default=4000, help="image width (default 4000)")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--skip-untiled", action="store_true", help="untiled 12 MP needs ~10 GB")
    parser.add_argument("--skip-tiled", action="store_true", help="measure the untiled run only")
    parser.add_argument("--compare", action="store_true", help="tiled vs untiled values on a small image")
    parser.add_argument("--compare-height", type=int, default=384)
    parser.add_argument("--compare-width", type=int, default=512)
    parser.add_argument("--margin", type=int, default=None, help="extra margin to compare (--compare)")
    parser.add_argument("--child", choices=["untiled", "tiled"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        _child(args)
    elif args.compare:
        _compare(args)
    else:
        _measure(args)


if __name__ == "__main__":
    main()
