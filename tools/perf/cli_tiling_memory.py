"""Peak memory and time of ``noiseshift denoise`` on a large image, untiled vs ``--tile``.

This measures the real command-line path (image read, padding/tiling, PNG write) with the
built-in ``dncnn`` at its paper size (20 layers, 64 features; random weights: only cost matters
here). Each run is a fresh Python process that calls the CLI in-process and reports its own
peak RSS (``ru_maxrss``), so no run inherits another's peak.

Examples::

    python tools/perf/cli_tiling_memory.py                     # 4000×3000, untiled and --tile 256
    python tools/perf/cli_tiling_memory.py --height 1000 --width 1000 --tiles 128 256
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from noiseshift.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - start,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_inputs(folder: Path, height: int, width: int) -> tuple[Path, Path]:
    import torch

    import noiseshift
    from noiseshift.image_io import write_image
    from noiseshift.registry import DENOISERS, NOISE_MODELS

    generator = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, height // 64 + 1, width // 64 + 1, generator=generator)
    clean = torch.nn.functional.interpolate(base, size=(height, width), mode="bilinear", align_corners=False)
    noisy = NOISE_MODELS.build({"type": "gaussian", "sigma": 25 / 255})(clean, generator).noisy.clamp(0, 1)
    image = write_image(folder / "large.png", noisy)
    torch.manual_seed(0)
    weights = noiseshift.save(DENOISERS.build({"type": "dncnn"}), folder / "dncnn.safetensors")
    return image, weights


def run(image: Path, weights: Path, out: Path, tile: int | None) -> dict[str, float]:
    args = ["denoise", str(image), "-o", str(out), "--model", str(weights)]
    if tile:
        args += ["--tile", str(tile)]
    result = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"run failed ({args}):\n{result.stderr[-2000:]}")
    record = json.loads(result.stdout.strip().splitlines()[-1])
    if record["code"] != 0:
        raise SystemExit(f"noiseshift exited {record['code']}:\n{result.stderr[-2000:]}")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--tiles", type=int, nargs="+", default=[256])
    parser.add_argument("--skip-untiled", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        image, weights = make_inputs(folder, args.height, args.width)
        rows = []
        for tile in ([] if args.skip_untiled else [None]) + list(args.tiles):
            started = time.perf_counter()
            record = run(image, weights, folder / f"out_{tile}", tile)
            rows.append((f"--tile {tile}" if tile else "untiled", record["peak_mib"], record["seconds"]))
            print(f"{rows[-1][0]:<12} peak RSS {record['peak_mib']:8.0f} MiB   denoise {record['seconds']:7.1f} s"
                  f"   (process {time.perf_counter() - started:.1f} s)", flush=True)
        if not args.skip_untiled:
            for label, peak, _ in rows[1:]:
                print(f"untiled / {label}: peak memory x{rows[0][1] / peak:.1f}")
    print(f"image {args.width}x{args.height}x3, model dncnn (20 layers, 64 features), torch threads: default")


if __name__ == "__main__":
    main()
