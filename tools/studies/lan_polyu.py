"""LAN on PolyU at CPU scale: the LAN paper's Table 1 layout (PSNR/SSIM after 5/10/20 iterations).

For each of the first ``--limit`` PolyU pairs (``CroppedImages``, 512×512; the top-left
``--crop``×``--crop`` window is used, as LAN's sample code uses the top-left 256×256 of every
512×512 tile), every method in ``--methods`` adapts the pretrained ``--model`` with each loss in
``--losses`` for ``max(--at)`` steps. One run per (image, method, loss) gives every column: the
adapter's trace records the PSNR after every update (step 0 = pretrained, LAN's logging
convention), and SSIM is computed for the outputs at the ``--at`` steps by re-running the
adapter with that many steps (``--ssim``, slower) or only for the final one (default).

PSNR here is the trace's float PSNR (RGB, data range 1, output clipped, no border crop), which
is PolyU's protocol in noiseshift (``noiseshift benchmark polyu``) and LAN's ``×255``-float
metric. Methods: ``lan``, ``tt_full``, ``tt_first``, ``tt_last`` (LAN's full-/first-/last-layer
baselines); the meta-learning row of the paper has no public code and is not reproduced. RFR
rows (``--rfr``, default M = 10/20/40, the RFR paper's settings) adapt with fresh noise from
``--rfr-noise`` (default ``cbdnet``, RFR's real-noise setting) at its default lr 1e-5; one run
of max(M) steps per image, the PSNR after M steps read from the trace.

Without ``--model`` the script first pretrains a small blind DnCNN (``--depth``, ``--width``, no BN) on
CBSD432 crops with synthetic Gaussian noise, σ ~ U[0, ``--train-sigma``/255] (``--pretrain`` iterations, seeded;
``--save`` keeps it): a synthetic-to-real shift like LAN's SIDD-to-PolyU one, small enough for a
CPU.

Examples::

    python tools/studies/lan_polyu.py --pretrain 400 --save /tmp/dncnn_gauss.safetensors
    python tools/studies/lan_polyu.py --model runs/default/final.safetensors --limit 10 --crop 128
    python tools/studies/lan_polyu.py --model restormer_real.pth --model-type restormer \\
        -M layer_norm_type=BiasFree --limit 100 --crop 256 --device cuda --markdown

On a 2-core CPU a 12-layer DnCNN takes about a second per step at 128×128; the default
(10 images, 128×128, 4 methods × 2 losses × 20 steps) runs in about half an hour.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEFAULT_ROOT = DATA / "real" / "PolyU"
DEFAULT_TRAIN = DATA / "clean" / "CBSD432"
METHODS = ("lan", "tt_full", "tt_first", "tt_last")
LOSSES = ("zsn2n", "nbr2nbr")


def _options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            options[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            options[key] = raw
    return options


def pretrain(train_dir: Path, iterations: int, depth: int, width: int, device: torch.device,
             sigma_max: float = 50.0, seed: int = 0) -> torch.nn.Module:
    """A blind colour DnCNN trained with L2 on random 40×40 crops, σ ~ U[0, sigma_max/255], Adam 1e-3 → 1e-4.

    Without batch normalisation: the residual network then starts as the identity and beats it
    within a few hundred iterations, where the BN variant needs thousands to recover from its
    initial output.
    """
    from noiseshift.api import DENOISERS, NOISE_MODELS
    from noiseshift.image_io import list_images, read_image

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images = [read_image(path) for path in list_images(train_dir)]
    model = DENOISERS.build({"type": "dncnn", "depth": depth, "width": width, "batch_norm": False}).to(device).train()
    noise = NOISE_MODELS.build({"type": "gaussian", "sigma": [0.0, sigma_max / 255]})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations, eta_min=1e-4)
    started = time.perf_counter()
    for step in range(1, iterations + 1):
        crops = []
        for index in torch.randint(len(images), (16,), generator=generator).tolist():
            image = images[index]
            top = int(torch.randint(image.shape[-2] - 40 + 1, (1,), generator=generator))
            left = int(torch.randint(image.shape[-1] - 40 + 1, (1,), generator=generator))
            crop = image[..., top:top + 40, left:left + 40]
            crops.append(crop.flip(-1) if bool(torch.randint(2, (1,), generator=generator)) else crop)
        clean = torch.cat(crops)
        noisy = noise(clean, generator).noisy
        loss = (model(noisy.to(device)) - clean.to(device)).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == iterations:
            print(f"pretrain {step}/{iterations}: loss {float(loss.detach()):.5f} "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="weights file (noiseshift .safetensors, or .pth with --model-type); "
                        "without it a small DnCNN is pretrained first")
    parser.add_argument("--pretrain", type=int, default=400, help="pretraining iterations (without --model)")
    parser.add_argument("--depth", type=int, default=8, help="pretrained DnCNN depth")
    parser.add_argument("--width", type=int, default=32, help="pretrained DnCNN width")
    parser.add_argument("--train-dir", default=str(DEFAULT_TRAIN), help="clean training images (CBSD432)")
    parser.add_argument("--train-sigma", type=float, default=50.0,
                        help="pretraining noise: σ ~ U[0, this/255] (PolyU's real noise is weak: ~15 fits it better)")
    parser.add_argument("--save", help="write the pretrained DnCNN here (.safetensors)")
    parser.add_argument("--model-type", help="architecture of a checkpoint without noiseshift metadata")
    parser.add_argument("-M", dest="model_options", action="append", default=[], metavar="KEY=VALUE",
                        help="constructor option for --model-type (repeatable)")
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="PolyU folder (with CroppedImages/)")
    parser.add_argument("--limit", type=int, default=10, help="first N pairs")
    parser.add_argument("--crop", type=int, default=128, help="top-left crop side (LAN: 256)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--losses", default=",".join(LOSSES))
    parser.add_argument("--at", default="5,10,20", help="iterations to report")
    parser.add_argument("--ssim", action="store_true", help="SSIM at every reported iteration (re-runs; slower)")
    parser.add_argument("--rfr", default="10,20,40",
                        help="RFR rows: its M values (one run of max(M) steps, read from the trace); '' skips RFR")
    parser.add_argument("--rfr-noise", default="cbdnet",
                        help="RFR's noise model: a NOISE_MODELS name (cbdnet: the paper's real-noise setting)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    from noiseshift.api import ADAPTERS, BENCHMARKS, load, psnr, save, ssim

    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(args.root)
    if not (root / "CroppedImages").is_dir():
        print(f"no PolyU CroppedImages under {root}; pass --root", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if args.model:
        extra = {"model_type": args.model_type, "config": _options(args.model_options)} if args.model_type else {}
        backbone = load(args.model, **extra).to(device).eval()
    else:
        backbone = pretrain(Path(args.train_dir), args.pretrain, args.depth, args.width, device, args.train_sigma)
        if args.save:
            save(backbone, args.save)
    at = sorted({int(a) for a in args.at.split(",") if a})
    steps = max(at)
    methods = [m for m in args.methods.split(",") if m]
    losses = [loss for loss in args.losses.split(",") if loss]
    bench = BENCHMARKS.build({"type": "polyu", "root": str(root)})
    samples = []
    for index, sample in enumerate(bench):
        if index >= args.limit:
            break
        window = (..., slice(0, args.crop), slice(0, args.crop))
        samples.append((sample.key, sample.noisy[window].to(device), sample.clean[window].to(device)))

    def score(output: torch.Tensor, clean: torch.Tensor) -> tuple[float, float]:
        output = output.clamp(0, 1)
        return float(psnr(output, clean, 1.0)), float(ssim(output, clean, 1.0))

    with torch.no_grad():
        noisy_scores = [score(noisy, clean) for _, noisy, clean in samples]
        pre_scores = [score(backbone(noisy), clean) for _, noisy, clean in samples]
    print(f"{len(samples)} PolyU pairs, top-left {args.crop}×{args.crop}; {backbone.name} "
          f"({sum(p.numel() for p in backbone.parameters()):,} parameters); noisy "
          f"{statistics.mean(s[0] for s in noisy_scores):.2f} dB", file=sys.stderr)

    # results[(method, loss)][step] = (mean psnr, mean ssim or None)
    results: dict[tuple[str, str], dict[int, tuple[float, float | None]]] = {}
    for method in methods:
        for loss in losses:
            started = time.perf_counter()
            psnrs: dict[int, list[float]] = {k: [] for k in at}
            ssims: dict[int, list[float]] = {k: [] for k in at}
            for _, noisy, clean in samples:
                adapter = ADAPTERS.build({"type": method, "loss": loss, "steps": steps})
                adapter.trace, adapter.reference = [], clean
                output = adapter.wrap(backbone)(noisy)
                by_step = {entry["step"]: entry["psnr"] for entry in adapter.trace if "psnr" in entry}
                for k in at:
                    psnrs[k].append(by_step[k])
                ssims[steps].append(score(output, clean)[1])
                if args.ssim:
                    for k in at[:-1]:
                        shorter = ADAPTERS.build({"type": method, "loss": loss, "steps": k})
                        ssims[k].append(score(shorter.wrap(backbone)(noisy), clean)[1])
            results[(method, loss)] = {
                k: (statistics.mean(psnrs[k]), statistics.mean(ssims[k]) if ssims[k] else None) for k in at
            }
            print(f"{method} {loss}: {time.perf_counter() - started:.0f} s", file=sys.stderr)

    rfr_at = sorted({int(a) for a in args.rfr.split(",") if a})
    if rfr_at:
        started = time.perf_counter()
        rfr_psnrs: dict[int, list[float]] = {k: [] for k in rfr_at}
        rfr_ssims: list[float] = []
        for _, noisy, clean in samples:
            adapter = ADAPTERS.build({"type": "rfr", "steps": max(rfr_at), "noise": {"type": args.rfr_noise}})
            adapter.trace, adapter.reference = [], clean
            output = adapter.wrap(backbone)(noisy)
            by_step = {entry["step"]: entry["psnr"] for entry in adapter.trace if "psnr" in entry}
            for k in rfr_at:
                rfr_psnrs[k].append(by_step[k])
            rfr_ssims.append(score(output, clean)[1])
        results[("rfr", "-")] = {
            k: (statistics.mean(rfr_psnrs[k]), statistics.mean(rfr_ssims) if k == max(rfr_at) else None)
            for k in rfr_at
        }
        print(f"rfr ({args.rfr_noise} noise): {time.perf_counter() - started:.0f} s", file=sys.stderr)

    def cell(value: tuple[float, float | None]) -> str:
        return f"{value[0]:.2f}" + (f" / {value[1]:.3f}" if value[1] is not None else "")

    pre = (statistics.mean(s[0] for s in pre_scores), statistics.mean(s[1] for s in pre_scores))
    header = ["method", "it.", *[f"PolyU {loss}" for loss in losses]]
    rows = [["noisy input", "-", *[cell((statistics.mean(s[0] for s in noisy_scores),
                                        statistics.mean(s[1] for s in noisy_scores)))] * len(losses)],
            ["pretrained", "-", *[cell(pre)] * len(losses)]]
    for method in methods:
        for k in at:
            rows.append([method, str(k), *[cell(results[(method, loss)][k]) for loss in losses]])
    for k in rfr_at:
        rows.append([f"rfr ({args.rfr_noise})", f"M={k}", *[cell(results[("rfr", "-")][k])] * len(losses)])
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(text.ljust(width) for text, width in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
