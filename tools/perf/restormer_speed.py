"""CPU forward time and peak memory of the ``restormer`` denoiser, per preset, size and setting.

Every configuration runs in a fresh subprocess, so its peak resident set size (``ru_maxrss``) is
not inherited from an earlier, larger run. Reported per configuration:

* ``wall`` — median and minimum wall-clock seconds of the timed forward passes: ``--repeats``
  passes after one warm-up pass, in each of ``--rounds`` fresh processes. Rounds interleave the
  configurations, so load that changes over time on a shared machine affects all of them alike;
  the minimum is the least disturbed pass;
* ``cpu`` — median CPU seconds (all threads) of the same passes; with ``--threads 1`` it is the
  steadiest number on a busy machine;
* ``peak`` — peak RSS minus the RSS after model, weights and input were created, i.e. the
  working memory of the forward pass (activations, temporaries); ``rss`` the absolute peak
  (largest over rounds).

Settings (the cross product of the lists given is run):

* ``--variants``: ``optimised`` (the plugin as shipped) and ``reference`` (its layer norm,
  attention, feed-forward and block computed the official way: N×C×H×W → N×HW×C token
  reshapes around every layer norm, explicitly normalised q and k, out-of-place residuals).
  Both give the same output up to float rounding (the plugin's tests check ~1e-6).
* ``--layouts``: ``channels_last`` (the plugin's default on CPUs: the batch is converted to
  channels-last inside ``forward``) or ``nchw`` (``model.channels_last_on_cpu = False``: every
  activation stays contiguous N×C×H×W, the layout the official code uses).
* ``--modes``: ``no_grad`` (what ``noiseshift.inference.denoise`` uses) or ``inference_mode``.

Examples::

    python tools/perf/restormer_speed.py                                  # everything (slow)
    python tools/perf/restormer_speed.py --presets small,tiny --sizes 256,512
    python tools/perf/restormer_speed.py --presets paper --sizes 256 --variants optimised \\
        --layouts nchw --modes no_grad,inference_mode
    python tools/perf/restormer_speed.py --threads 1 --rounds 3 --presets small --sizes 256
    python tools/perf/restormer_speed.py --timeout 900 --markdown         # a table to paste

A configuration that runs past ``--timeout`` seconds is stopped and reported as such; the table
shows what finished.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

_SEED = 0
VARIANTS = ("optimised", "reference")
LAYOUTS = ("nchw", "channels_last")
MODES = ("no_grad", "inference_mode")


# -- the official-style computation, patched in for the "reference" variant -------------------


def _reference_layer_norm(self: Any, x: torch.Tensor) -> torch.Tensor:
    """Official ``LayerNorm``: to_3d (N×HW×C), normalise over the last axis, to_4d."""
    batch, channels, height, width = x.shape
    tokens = x.flatten(2).transpose(1, 2).contiguous()  # einops 'b c h w -> b (h w) c' copies
    variance = tokens.var(-1, keepdim=True, unbiased=False)
    weight, bias = self.body.weight, self.body.bias
    if bias is None:
        out = tokens / torch.sqrt(variance + 1e-5) * weight
    else:
        out = (tokens - tokens.mean(-1, keepdim=True)) / torch.sqrt(variance + 1e-5) * weight + bias
    return out.transpose(1, 2).reshape(batch, channels, height, width)


def _reference_attention(self: Any, x: torch.Tensor) -> torch.Tensor:
    """Official MDTA: split q, k, v, normalise q and k explicitly, attend, project."""
    batch, channels, height, width = x.shape
    q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
    shape = (batch, self.heads, channels // self.heads, height * width)
    q, k, v = q.reshape(shape), k.reshape(shape), v.reshape(shape)
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
    return self.project_out((attn @ v).reshape(batch, channels, height, width))


def _reference_ffn(self: Any, x: torch.Tensor) -> torch.Tensor:
    gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
    return self.project_out(F.gelu(gate) * value)


def _reference_block(self: Any, x: torch.Tensor) -> torch.Tensor:
    x = x + self.attn(self.norm1(x))
    return x + self.ffn(self.norm2(x))


def use_reference_computation(model: torch.nn.Module) -> torch.nn.Module:
    """Patch ``model``'s layer norms, attention, feed-forward and blocks to the official style."""
    from noiseshift_restormer_backbone.restormer import GDFN, MDTA, ChannelLayerNorm, TransformerBlock

    patches = {
        ChannelLayerNorm: _reference_layer_norm,
        MDTA: _reference_attention,
        GDFN: _reference_ffn,
        TransformerBlock: _reference_block,
    }
    for module in model.modules():
        for kind, forward in patches.items():
            if isinstance(module, kind):
                module.forward = types.MethodType(forward, module)  # type: ignore[method-assign]
    return model


# -- one configuration (child process) --------------------------------------------------------


def _current_rss_kib() -> int:
    """Resident set size now, in KiB (Linux ``/proc``; falls back to the peak so far)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * resource.getpagesize() // 1024
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(config: dict[str, Any]) -> None:
    """Build the model, run warm-up + timed forwards, print one JSON line."""
    from noiseshift.api import DENOISERS

    if config["threads"]:
        torch.set_num_threads(config["threads"])
    torch.manual_seed(_SEED)
    model = DENOISERS.build({"type": "restormer", "preset": config["preset"]}).eval()
    if config["variant"] == "reference":
        use_reference_computation(model)
    size = config["size"]
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(_SEED + 1))
    model.channels_last_on_cpu = config["layout"] == "channels_last"
    context = torch.inference_mode if config["mode"] == "inference_mode" else torch.no_grad
    baseline = _current_rss_kib()

    walls, cpus = [], []
    with context():
        for index in range(config["repeats"] + 1):  # the first pass is a warm-up
            wall, cpu = time.perf_counter(), time.process_time()
            output = model(image)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if index:
                walls.append(wall)
                cpus.append(cpu)
            mean = float(output.mean())
            del output
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({
        **config,
        "wall_all_s": walls,
        "cpu_all_s": cpus,
        "baseline_kib": baseline,
        "peak_kib": peak,
        "delta_kib": peak - baseline,
        "output_mean": mean,
        "torch_threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
    }))


# -- the driver ---------------------------------------------------------------------------------


def _run(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(config)]
    label = " ".join(f"{config[k]}" for k in ("preset", "size", "variant", "layout", "mode"))
    print(f"running {label} ...", file=sys.stderr, flush=True)
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**config, "status": f"timed out after {timeout:.0f} s"}
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or [""]
        # A negative code is a signal: -9 usually means the kernel's OOM killer.
        return {**config, "status": f"failed (exit {completed.returncode}): {tail[0][:200]}"}
    return {**json.loads(completed.stdout.strip().splitlines()[-1]), "status": "ok"}


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One configuration's rounds combined: medians and minimum over every timed pass."""
    done = [run for run in runs if run["status"] == "ok"]
    if not done:
        return runs[-1]
    walls = [t for run in done for t in run["wall_all_s"]]
    cpus = [t for run in done for t in run["cpu_all_s"]]
    failed = [run["status"] for run in runs if run["status"] != "ok"]
    return {
        **done[-1],
        "wall_s": statistics.median(walls),
        "wall_min_s": min(walls),
        "cpu_s": statistics.median(cpus),
        "wall_all_s": walls,
        "cpu_all_s": cpus,
        "delta_kib": max(run["delta_kib"] for run in done),
        "peak_kib": max(run["peak_kib"] for run in done),
        "rounds_ok": len(done),
        "status": "ok" if not failed else f"ok in {len(done)} of {len(runs)} rounds ({failed[0]})",
    }


def _table(results: list[dict[str, Any]], markdown: bool) -> str:
    header = ["preset", "size", "variant", "layout", "mode", "wall s (median)", "wall s (min)", "cpu s (median)",
              "peak MiB", "rss MiB"]
    rows = []
    for r in results:
        if "wall_all_s" in r:
            walls, cpus = r["wall_all_s"], r["cpu_all_s"]
            cells = [f"{statistics.median(walls):.2f}", f"{min(walls):.2f}", f"{statistics.median(cpus):.2f}",
                     f"{r['delta_kib'] / 1024:.0f}", f"{r['peak_kib'] / 1024:.0f}"]
        else:
            cells = [r["status"], "", "", "", ""]
        rows.append([r["preset"], f"{r['size']}²", r["variant"], r["layout"], r["mode"], *cells])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in [header, *rows])


def _list(value: str, allowed: Sequence[str] | None = None, kind: type = str) -> list[Any]:
    items = [kind(item.strip()) for item in value.split(",") if item.strip()]
    if allowed is not None:
        bad = [item for item in items if item not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {list(allowed)}")
    return items


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run every requested configuration (or one child run)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="paper,small,tiny", help="comma list (default paper,small,tiny)")
    parser.add_argument("--sizes", default="256,512", help="square image sides, comma list (default 256,512)")
    parser.add_argument("--variants", default=",".join(VARIANTS), type=lambda v: _list(v, VARIANTS))
    parser.add_argument("--layouts", default=",".join(LAYOUTS), type=lambda v: _list(v, LAYOUTS))
    parser.add_argument("--modes", default=",".join(MODES), type=lambda v: _list(v, MODES))
    parser.add_argument("--repeats", type=int, default=3, help="timed passes after one warm-up (median reported)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the whole list this many times, interleaved (fresh process each time)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: torch's choice; 1 gives steadier numbers on a shared machine)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per configuration")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--json", dest="json_path", help="also write all results to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        _child(json.loads(args.child))
        return
    from noiseshift_restormer_backbone import PRESETS

    presets = _list(args.presets, tuple(PRESETS))
    sizes = _list(args.sizes, kind=int)
    if args.repeats < 1 or args.rounds < 1 or any(size < 8 or size % 8 for size in sizes):
        parser.error("--repeats and --rounds must be >= 1 and every size a multiple of 8")
    print(
        f"torch {torch.__version__}, {args.threads or torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs visible, {args.rounds} round(s) of {args.repeats} timed passes + 1 warm-up "
        "per configuration",
        flush=True,
    )
    configs = [
        {"preset": preset, "size": size, "variant": variant, "layout": layout, "mode": mode,
         "repeats": args.repeats, "threads": args.threads}
        for preset, size, variant, layout, mode in itertools.product(
            presets, sizes, args.variants, args.layouts, args.modes
        )
    ]
    runs: list[list[dict[str, Any]]] = [[] for _ in configs]
    # Rounds interleave the configurations, so load that drifts over time (a shared machine)
    # spreads over all of them instead of favouring whichever ran in a quiet moment.
    for _ in range(args.rounds):
        for index, config in enumerate(configs):
            runs[index].append(_run(config, args.timeout))
            print(_table(runs[index][-1:], markdown=False).splitlines()[-1], file=sys.stderr, flush=True)
    results = [_merge(config_runs) for config_runs in runs]
    print()
    print(_table(results, markdown=args.markdown))
    if args.json_path:
        from noiseshift.image_io import atomic_write_text

        atomic_write_text(args.json_path, json.dumps(results, indent=2), overwrite=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
