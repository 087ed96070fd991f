"""The shipped default model against CBM3D: CBSD68 with AWGN σ = 15, 25, 50, and PolyU.

Every cell is one ``noiseshift.runner.run_benchmark`` run recorded under ``--out`` (so a killed
study resumes where it stopped, item by item) with noiseshift's scoring conventions: RGB, data
range 1, float outputs clipped to [0, 1], no border crop, Gaussian-window SSIM, mean over
images. CBSD68 noise is drawn with a fixed seed per image (``synthetic`` benchmark, seed 0 +
item index), not clipped, as in the published numbers.

BM3D runs as CBM3D with the true σ on CBSD68 (the non-blind setting of every published CBM3D
number) and with σ estimated from each image on PolyU (there is no true σ for real noise); the
shipped model is blind everywhere.

Examples::

    python tools/studies/default_model.py --out runs/default_study            # all 68 + 100 images
    python tools/studies/default_model.py --out /tmp/q --limit 4 --sigmas 25  # a quick look

Prints a markdown table; ``--out`` also gets ``table.md`` and ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"

PUBLISHED = {
    # CBSD68, PSNR in dB, from the DnCNN paper (Zhang et al., TIP 2017, Table III).
    "CBM3D (published)": {15: 33.52, 25: 30.71, 50: 27.38},
    "CDnCNN-B (published)": {15: 33.89, 25: 31.23, 50: 27.92},
}


def _models(model: str) -> dict[str, Any]:
    import noiseshift
    from noiseshift.cli.options import DEFAULT_MODEL_FILE

    path = DEFAULT_MODEL_FILE if model == "default" else Path(model)
    if not path.is_file():
        sys.exit(f"no model at {path}: train one (see docs/results.md) or pass --model PATH")
    return {"shipped": noiseshift.load(path), "label": f"{path.name}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="the model to compare (default: the shipped one)")
    parser.add_argument("--out", type=Path, required=True, help="folder for per-cell runs, results.json, table.md")
    parser.add_argument("--sigmas", type=int, nargs="+", default=[15, 25, 50], help="AWGN levels ×255 on CBSD68")
    parser.add_argument("--limit", type=int, help="score only the first N images of each set")
    parser.add_argument("--bm3d-limit", type=int,
                        help="score BM3D on the first N images only (it takes 30-80 s per image on one CPU "
                             "thread); the shipped model is then also reported on the same N")
    parser.add_argument("--skip-bm3d", action="store_true", help="only the shipped model (BM3D is slow)")
    parser.add_argument("--skip-polyu", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--cbsd68", type=Path, default=DATA / "clean" / "CBSD68")
    parser.add_argument("--polyu", type=Path, default=DATA / "real" / "PolyU")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from noiseshift.registry import BENCHMARKS, DENOISERS
    from noiseshift.runner import run_benchmark

    loaded = _models(args.model)
    shipped = loaded["shipped"]
    cells: list[tuple[str, str, Any, Any]] = []  # (row, column, model, benchmark)
    for sigma in args.sigmas:
        bench = BENCHMARKS.build({"type": "synthetic", "root": str(args.cbsd68), "seed": 0, "clip": False,
                                  "noise": {"type": "gaussian", "sigma": sigma / 255}})
        column = f"CBSD68 σ={sigma}"
        cells.append(("shipped", column, shipped, bench))
        if not args.skip_bm3d:
            cells.append(("CBM3D", column, DENOISERS.build({"type": "bm3d", "sigma": sigma / 255}), bench))
    if not args.skip_polyu:
        polyu = BENCHMARKS.build({"type": "polyu", "root": str(args.polyu)})
        cells.append(("shipped", "PolyU", shipped, polyu))
        if not args.skip_bm3d:
            cells.append(("CBM3D", "PolyU", DENOISERS.build({"type": "bm3d"}), polyu))

    results: dict[str, dict[str, dict[str, float]]] = {}
    for row, column, model, bench in cells:
        cell_dir = args.out / f"{row}_{column.replace(' ', '_').replace('=', '').replace('σ', 's')}"
        start = time.monotonic()
        limit = args.bm3d_limit if row == "CBM3D" and args.bm3d_limit else args.limit
        run = run_benchmark(model, bench, out_dir=cell_dir, limit=limit, label=row)
        mean, count = run.mean(), len(run.per_sample)
        results.setdefault(row, {})[column] = {"psnr": mean["psnr"], "ssim": mean["ssim"], "count": count}
        print(f"{row:8s} {column:16s} PSNR {mean['psnr']:.2f} dB  SSIM {mean['ssim']:.4f}  "
              f"({count} images, {time.monotonic() - start:.0f} s this session)", flush=True)
        if row == "shipped" and args.bm3d_limit and not args.skip_bm3d:
            first = run.items[: args.bm3d_limit]
            results.setdefault(f"shipped@{args.bm3d_limit}", {})[column] = {
                "psnr": sum(i["metrics"]["psnr"] for i in first) / len(first),
                "ssim": sum(i["metrics"]["ssim"] for i in first) / len(first), "count": len(first)}

    columns = [f"CBSD68 σ={s}" for s in args.sigmas] + ([] if args.skip_polyu else ["PolyU"])
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    subset = f" (first {args.bm3d_limit} images)" if args.bm3d_limit else ""
    rows = (("shipped", f"shipped ({loaded['label']}), all images"),
            (f"shipped@{args.bm3d_limit}", f"shipped{subset}"), ("CBM3D", f"CBM3D (bm3d package){subset}"))
    for row, label in rows:
        if row in results:
            cells_text = [f"{results[row][c]['psnr']:.2f} / {results[row][c]['ssim']:.4f}" if c in results[row] else "–"
                          for c in columns]
            lines.append(f"| {label} | " + " | ".join(cells_text) + " |")
    for label, numbers in PUBLISHED.items():
        cells_text = [f"{numbers[s]:.2f}" if s in numbers else "–" for s in args.sigmas]
        lines.append(f"| {label} | " + " | ".join(cells_text + ([] if args.skip_polyu else ["–"])) + " |")
    table = "\n".join(lines)
    print(table)
    from noiseshift.image_io import atomic_write_text

    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "table.md", table + "\n", overwrite=True)
    atomic_write_text(args.out / "results.json", json.dumps(results, indent=1), overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
