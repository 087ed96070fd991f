"""Cost of LAN against full-trainable test-time fine-tuning (``tt_full``): time per step and memory.

The LAN paper's Table 2 reports LAN's runtime and memory as a share of full fine-tuning at
256×256 (74–93 %). This script measures the same ratio for this project's implementation, on
the built-in ``dncnn`` and ``unet`` (constructor defaults, i.e. the paper-size DnCNN) and, when
the ``restormer_backbone`` plugin is installed, ``restormer`` (``small`` preset by default), for
both self-supervised losses.

Every configuration (backbone × loss × method) runs in a fresh subprocess, so that its peak
memory is not inherited from an earlier one. Weights are random (cost does not depend on them).
Reported per configuration:

* ``step`` — median wall-clock seconds per adaptation step over ``--steps`` steps, after
  ``--warmup`` untimed steps (the time between the adapter's progress callbacks, i.e. loss,
  backward and optimiser step; the final prediction is not included);
* ``cpu`` — median CPU seconds per step (all threads); steadier than wall time on a busy machine;
* ``mem`` — peak memory of the adaptation: on CPU the peak resident set size minus the resident
  size after the model and the input were created; on CUDA ``torch.cuda.max_memory_allocated``
  minus the memory allocated before the call;
* ``LAN / full`` — LAN's time and memory as a percentage of ``tt_full``'s (the paper's Table 2).

Examples::

    python tools/perf/tta_cost.py                                  # dncnn, unet, restormer small; 256×256
    python tools/perf/tta_cost.py --backbones dncnn --losses zsn2n --steps 5
    python tools/perf/tta_cost.py --threads 1 --markdown           # steadier on a shared CPU
    python tools/perf/tta_cost.py --device cuda --markdown         # a table to paste
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

METHODS = ("lan", "tt_full")
LOSSES = ("zsn2n", "nbr2nbr")
DEFAULT_BACKBONES = ("dncnn", "unet", "restormer")
BACKBONE_CONFIGS: dict[str, dict[str, Any]] = {"dncnn": {}, "unet": {}, "restormer": {"preset": "small"}}


def _current_rss_kib() -> int:
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError):  # not Linux: fall back to the peak so far
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(config: dict[str, Any]) -> None:
    """Run one configuration and print its measurements as one JSON line."""
    from noiseshift.api import ADAPTERS, DENOISERS

    if config.get("threads"):
        torch.set_num_threads(config["threads"])
    torch.manual_seed(0)
    device = torch.device(config["device"])
    backbone = DENOISERS.build({"type": config["backbone"], **config["backbone_config"]}).to(device).eval()
    size = config["size"]
    noisy = torch.rand(1, backbone.in_channels, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    total = config["warmup"] + config["steps"]
    adapter = ADAPTERS.build({"type": config["method"], "loss": config["loss"], "steps": total})
    model = adapter.wrap(backbone)
    stamps: list[tuple[float, float]] = []

    def progress(step: int, steps: int, metrics: Any) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        stamps.append((time.perf_counter(), time.process_time()))

    adapter.progress = progress
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = _current_rss_kib() * 1024
    start = (time.perf_counter(), time.process_time())
    with torch.no_grad():  # as noiseshift.inference.denoise calls it; the adapter enables grad inside
        model(noisy)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    marks = [start, *stamps]
    walls = [b[0] - a[0] for a, b in zip(marks, marks[1:])][config["warmup"]:]
    cpus = [b[1] - a[1] for a, b in zip(marks, marks[1:])][config["warmup"]:]
    trainable = sum(p.numel() for p in backbone.parameters())
    print(json.dumps({
        "step_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "mem_bytes": peak - base,
        "params": trainable,
    }))


def _run(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    try:
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(config)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _available_backbones(names: list[str]) -> list[str]:
    from noiseshift.api import DENOISERS

    available = set(DENOISERS.names(qualified=False))
    missing = [name for name in names if name not in available]
    for name in missing:
        print(f"skipping {name}: not registered (install its plugin)", file=sys.stderr)
    return [name for name in names if name in available]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--backbones", default=",".join(DEFAULT_BACKBONES))
    parser.add_argument("--restormer-preset", default="small", help="restormer preset (default: small)")
    parser.add_argument("--losses", default=",".join(LOSSES))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default); 1 gives steadier CPU times on a shared machine")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per configuration")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args(argv)
    if args.child:
        _child(json.loads(args.child))
        return 0

    backbones = _available_backbones([b for b in args.backbones.split(",") if b])
    losses = [loss for loss in args.losses.split(",") if loss]
    print(f"torch {torch.__version__}, device {args.device}, {args.threads or torch.get_num_threads()} threads, "
          f"{args.size}×{args.size}, median of {args.steps} steps after {args.warmup} warm-up", file=sys.stderr)
    rows = []
    for backbone in backbones:
        backbone_config = dict(BACKBONE_CONFIGS.get(backbone, {}))
        if backbone == "restormer":
            backbone_config["preset"] = args.restormer_preset
        for loss in losses:
            measured = {}
            for method in METHODS:
                config = {"backbone": backbone, "backbone_config": backbone_config, "loss": loss, "method": method,
                          "size": args.size, "steps": args.steps, "warmup": args.warmup, "device": args.device,
                          "threads": args.threads}
                measured[method] = _run(config, args.timeout)
                print(f"{backbone} {loss} {method}: {measured[method]}", file=sys.stderr)
            rows.append((backbone, backbone_config, loss, measured))

    header = ("| backbone | params | loss | LAN s/step | full s/step | LAN cpu s | full cpu s | LAN MiB | full MiB "
              "| LAN / full time | LAN / full cpu | LAN / full memory |")
    print(header if args.markdown else header.replace("|", " ").strip())
    if args.markdown:
        print("|" + "---|" * (header.count("|") - 1))
    for backbone, backbone_config, loss, measured in rows:
        lan, full = measured["lan"], measured["tt_full"]
        name = backbone + (f" ({backbone_config['preset']})" if "preset" in backbone_config else "")
        if "error" in lan or "error" in full:
            cells = [name, "-", loss, lan.get("error", ""), full.get("error", "")] + ["-"] * 7
        else:
            cells = [
                name, f"{lan['params']:,}", loss, f"{lan['step_s']:.3f}", f"{full['step_s']:.3f}",
                f"{lan['cpu_s']:.3f}", f"{full['cpu_s']:.3f}",
                f"{lan['mem_bytes'] / 2**20:.0f}", f"{full['mem_bytes'] / 2**20:.0f}",
                f"{100 * lan['step_s'] / full['step_s']:.1f} %", f"{100 * lan['cpu_s'] / full['cpu_s']:.1f} %",
                f"{100 * lan['mem_bytes'] / full['mem_bytes']:.1f} %",
            ]
        print("| " + " | ".join(cells) + " |" if args.markdown else "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
