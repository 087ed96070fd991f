"""ADL vs fine-tuning on PolyU at CPU scale: the ADL paper's Table 1 and Table 5 layouts.

Leave-one-camera-out on PolyU ``CroppedImages`` (100 pairs of 512×512; cameras Canon5D2,
Canon600D, Canon80D, NikonD800, Sony). For each target camera:

* **target set**: ``--adapt-pairs`` pairs of the camera (whole scenes, chosen by
  ``noiseshift.domains.split_by_scene`` with ``--split-seed``; at most ``--max-adapt`` pairs);
  **test set**: the camera's pairs of the *other* scenes (no test scene is seen in training).
* **source domains**: each other camera is one domain, plus ``synthetic_cbdnet`` — CBSD432 crops
  with CBDNet camera noise (plugin ``cbdnet_noise``).
* **harmful domains** (Table 5): ``harmful_gaussian`` — CBSD432 crops with Gaussian σ = 30/255
  ("Harmful1", the paper uses SIDD ground truth); ``harmful_misaligned`` — CBDNet-noisy CBSD432
  crops whose ground truth is the clean crop rolled by half its size, i.e. another part of the
  scene ("Harmful2", misaligned pairs).

Methods (every one starts from the same initial weights per camera and backbone):

* ``ft`` — **fine-tuning** as in the paper's baseline: pre-train on the pooled source pairs
  (core adapter ``finetune`` on the sources, ``--source-steps``), then fine-tune on the target
  pairs (``finetune``, ``--finetune-steps``). The source-pre-trained model is also scored as
  **source only**.
* ``adl`` — **ADL** (plugin ``adl``): target pre-training (``--adl-pretrain``), adaptive source
  steps (``--adl-steps``), target fine-tuning (``--adl-finetune``); same total step count as
  ``ft`` by default. Per-domain accepted/rejected batch counts are recorded.
* ``target_only`` — ADL's stages 1 and 3 without source steps (training on the target pairs
  alone, ``--adl-pretrain + --adl-finetune`` steps): what the source data has to beat.
* ``ft_h1``, ``ft_h2``, ``adl_h1``, ``adl_h2`` — the same with ``harmful_gaussian`` (h1) or
  ``harmful_misaligned`` (h2) added to the sources (fine-tuning then pre-trains on them too).

Backbones: core ``unet`` and ``modulation_unet`` (sensor + ISO conditions; the synthetic domains
get their own sensor names and a nominal ISO 1600), both small (``--width``, 3 levels),
residual, with the output convolution zero-initialised so every model starts as the identity
(the noisy input, ~36 dB on PolyU) — a few hundred CPU steps from a random output would not
reach the input's PSNR. Scores: PSNR / SSIM (Gaussian) on the central 256×256 of each 512×512
test image (``--test-crop 0`` scores the whole image; the crop keeps the 14 evaluations per camera
within the CPU budget), RGB, data range 1, output clipped, mean over images (noiseshift's PolyU
convention).

Results go to ``--out``: ``cells/<backbone>__<camera>__<method>.json`` per finished cell (a
re-run skips those, so a killed run resumes), and ``results.json`` + ``results.md`` (tables),
all written atomically and refreshed after every cell.

``--selection-check`` instead prints a small synthetic table (no data needed): how often a clean
and a black-ground-truth source domain are accepted for each stage-2 optimiser setting (AdamW
with or without momentum, each ``on_reject`` rule) — the evidence for ADL's defaults.

Examples::

    python tools/studies/adl_polyu.py --selection-check
    python tools/studies/adl_polyu.py --quick --out /tmp/adl_quick
    nohup python tools/studies/adl_polyu.py --out runs/adl_study > runs/adl_study.log 2>&1 &

The default study (Table 1: 5 cameras × 2 backbones × 3 methods; Table 5: ``modulation_unet`` on
the three cameras with the fewest pairs, Canon600D, Canon80D and Sony — ``--harmful-cameras``)
takes about 15 minutes on one CPU thread (13.0 min measured on the shared 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEFAULT_ROOT = DATA / "real" / "PolyU"
DEFAULT_TRAIN = DATA / "clean" / "CBSD432"
CAMERAS = ("Canon5D2", "Canon600D", "Canon80D", "NikonD800", "Sony")
SYNTHETIC = "synthetic_cbdnet"
HARMFUL = {"h1": "harmful_gaussian", "h2": "harmful_misaligned"}
NOMINAL_ISO = 1600.0
BACKBONES = ("unet", "modulation_unet")
METHODS = ("ft", "adl", "target_only")
HARMFUL_METHODS = ("ft_h1", "adl_h1", "ft_h2", "adl_h2")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- data ------------------------------------------------------------------------------------


def load_polyu(root: Path) -> list[Any]:
    from noiseshift.api import BENCHMARKS

    bench = BENCHMARKS.build({"type": "polyu", "root": str(root)})
    return sorted(bench, key=lambda s: s.key)


def split_target(samples: list[Any], camera: str, adapt_pairs: int, max_adapt: int, seed: int) -> tuple[list[Any], list[Any]]:
    """``(adapt, test)`` pairs of one camera: whole scenes on each side, ``adapt`` capped at ``max_adapt``."""
    from noiseshift.domains import filter_samples, scene_of, split_by_scene

    own = filter_samples(samples, sensor=camera)
    adapt, test = split_by_scene(own, fraction=min(0.5, adapt_pairs / len(own)), seed=seed)
    if len(adapt) > max_adapt:
        # Keep whole scenes out of the test side; extra pairs of an adaptation scene are unused.
        adapt = adapt[:max_adapt]
    assert not {scene_of(s.key) for s in adapt} & {scene_of(s.key) for s in test}
    return adapt, test


def synthetic_domains(train_dir: Path, count: int, size: int, seed: int) -> dict[str, list[Any]]:
    """CBDNet-noise, Gaussian-30 and misaligned domains from random CBSD432 crops (one image each)."""
    from noiseshift.api import NOISE_MODELS, Sample
    from noiseshift.image_io import list_images, read_image

    generator = torch.Generator().manual_seed(seed)
    paths = list_images(train_dir)
    order = torch.randperm(len(paths), generator=generator).tolist()
    cbdnet = NOISE_MODELS.build({"type": "cbdnet", "jpeg_quality": [60, 100]})
    gaussian = NOISE_MODELS.build({"type": "gaussian", "sigma": 30 / 255})
    names = [SYNTHETIC, HARMFUL["h1"], HARMFUL["h2"]]
    domains: dict[str, list[Any]] = {name: [] for name in names}
    for index in range(3 * count):
        name = names[index // count]
        image = read_image(paths[order[index % len(paths)]])
        top = int(torch.randint(image.shape[-2] - size + 1, (1,), generator=generator))
        left = int(torch.randint(image.shape[-1] - size + 1, (1,), generator=generator))
        clean = image[..., top : top + size, left : left + size].contiguous()
        if name == HARMFUL["h1"]:
            noisy = gaussian(clean, generator).noisy.clamp(0, 1)
        else:
            noisy = cbdnet(clean, generator).noisy.clamp(0, 1)
        if name == HARMFUL["h2"]:
            clean = torch.roll(clean, (size // 2, size // 2), dims=(-2, -1))
        domains[name].append(Sample(f"{name}_{index:03d}", noisy, clean, {"sensor": name, "iso": NOMINAL_ISO}))
    return domains


# -- models ----------------------------------------------------------------------------------


def build_backbone(name: str, width: int, seed: int) -> Any:
    from noiseshift.api import DENOISERS

    torch.manual_seed(seed)
    if name == "unet":
        model = DENOISERS.build({"type": "unet", "width": width, "depth": 3})
    elif name == "modulation_unet":
        model = DENOISERS.build({
            "type": "modulation_unet", "in_channels": 3, "out_channels": 3,
            "sensors": [*CAMERAS, SYNTHETIC, *HARMFUL.values()], "width": width, "levels": 3,
            "mlp_hidden": 16, "residual": True,
        })
    else:
        raise SystemExit(f"unknown backbone {name!r}; choose from {BACKBONES}")
    with torch.no_grad():
        for param in model.parameters_for("last"):
            param.zero_()  # residual branch off at start: the model begins as the identity
    return model.eval()


def evaluate(model: Any, samples: list[Any]) -> dict[str, Any]:
    from noiseshift.api import psnr, ssim
    from noiseshift.inference import denoise

    psnrs, ssims = [], []
    model.eval()
    with torch.no_grad():
        for sample in samples:
            cond = {k: v for k, v in sample.cond.items() if k in model.conditions} or None
            output = denoise(model, sample.noisy, cond).clamp(0, 1)
            psnrs.append(float(psnr(output, sample.clean, 1.0)))
            ssims.append(float(ssim(output, sample.clean, 1.0)))
    return {"psnr": statistics.mean(psnrs), "ssim": statistics.mean(ssims), "n": len(samples)}


def noisy_scores(samples: list[Any]) -> dict[str, Any]:
    from noiseshift.api import psnr, ssim

    return {
        "psnr": statistics.mean(float(psnr(s.noisy, s.clean, 1.0)) for s in samples),
        "ssim": statistics.mean(float(ssim(s.noisy, s.clean, 1.0)) for s in samples),
        "n": len(samples),
    }


# -- methods ---------------------------------------------------------------------------------


def run_ft(model: Any, sources: dict[str, list[Any]], target: list[Any], test: list[Any], args: argparse.Namespace,
           seed: int) -> dict[str, Any]:
    from noiseshift.api import ADAPTERS

    pooled = [s for samples in sources.values() for s in samples]
    common = {"lr": args.lr, "batch_size": args.batch, "patch_size": args.patch, "loss": "l1"}
    pretrain = ADAPTERS.build({"type": "finetune", "steps": args.source_steps, **common})
    report = pretrain.fit(pretrain.wrap(model), target=pooled, generator=torch.Generator().manual_seed(seed))
    source_only = evaluate(model, test)
    tune = ADAPTERS.build({"type": "finetune", "steps": args.finetune_steps, **common})
    tuned = tune.fit(tune.wrap(model), target=target, generator=torch.Generator().manual_seed(seed + 1))
    return {
        "source_only": source_only, "result": evaluate(model, test),
        "loss": {"source": report.history[-1]["loss"], "target": tuned.history[-1]["loss"]},
    }


def run_adl(model: Any, sources: dict[str, list[Any]], target: list[Any], test: list[Any], args: argparse.Namespace,
            seed: int, *, adapt: bool = True) -> dict[str, Any]:
    from noiseshift.api import ADAPTERS

    adl = ADAPTERS.build({
        "type": "adl", "pretrain_steps": args.adl_pretrain, "steps": args.adl_steps if adapt else 0,
        "finetune_steps": args.adl_finetune, "lr": args.lr, "batch_size": args.batch, "patch_size": args.patch,
        "val_patch": args.val_patch, "score": args.adl_score, "criterion": args.adl_criterion,
        "adapt_beta1": args.adl_beta1, "on_reject": args.adl_on_reject,
    })
    report = adl.fit(adl.wrap(model), target=target, source=sources, generator=torch.Generator().manual_seed(seed))
    extra = {k: report.extra[k] for k in ("domains", "accepted", "rejected", "validation", "val_size", "seed_psnr", "queue")}
    return {"result": evaluate(model, test), "adl": extra, "config": adl.config()}


# -- tables ----------------------------------------------------------------------------------


def cell_text(result: dict[str, Any] | None) -> str:
    return "–" if result is None else f"{result['psnr']:.2f} / {result['ssim']:.4f}"


def average(results: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    if not results or any(r is None for r in results):
        return None
    return {"psnr": statistics.mean(r["psnr"] for r in results), "ssim": statistics.mean(r["ssim"] for r in results)}


def markdown(record: dict[str, Any]) -> str:
    cells: dict[str, Any] = record["cells"]
    cameras: list[str] = record["config"]["cameras"]
    side = record["config"]["test_crop"]
    crop_text = f"central {side}×{side} of each 512×512 crop" if side else "whole 512×512 crops"
    lines = [
        "# ADL vs fine-tuning on PolyU (CPU scale)", "",
        f"Command: `{record['command']}`", "",
        f"Elapsed: {record['elapsed_s'] / 60:.1f} min of wall time for the cells run in this invocation "
        f"({record['finished']}/{record['planned']} cells finished). PSNR (dB) / SSIM on the test scenes of each "
        f"target camera ({crop_text}, RGB, data range 1, Gaussian SSIM).", "",
        "Test/adaptation pairs per camera: " + ", ".join(
            f"{c} {record['splits'][c]['adapt']}/{record['splits'][c]['test']}" for c in cameras) + " (adapt/test).", "",
    ]

    def get(backbone: str, camera: str, method: str, key: str = "result") -> dict[str, Any] | None:
        cell = cells.get(f"{backbone}__{camera}__{method}")
        return None if cell is None else cell.get(key)

    header = "| method | " + " | ".join(cameras) + " | avg |"
    rule = "|---|" + "---|" * (len(cameras) + 1)
    noisy = [record["noisy"][c] for c in cameras]
    for backbone in record["config"]["backbones"]:
        lines += [f"## Table 1 layout — {backbone}", "", header, rule]
        rows = [("noisy input", noisy)]
        rows.append(("source only (pre-trained on sources)", [get(backbone, c, "ft", "source_only") for c in cameras]))
        rows.append(("fine-tuning (sources → target)", [get(backbone, c, "ft") for c in cameras]))
        rows.append(("target only", [get(backbone, c, "target_only") for c in cameras]))
        rows.append(("ADL", [get(backbone, c, "adl") for c in cameras]))
        for label, results in rows:
            lines.append(f"| {label} | " + " | ".join(cell_text(r) for r in results) + f" | {cell_text(average(results))} |")
        lines.append("")
    harmful_cameras: list[str] = record["config"]["harmful_cameras"]
    header5 = "| method | " + " | ".join(harmful_cameras) + " | avg |"
    rule5 = "|---|" + "---|" * (len(harmful_cameras) + 1)
    for backbone in record["config"]["harmful_backbones"]:
        if not harmful_cameras:
            break
        lines += [f"## Table 5 layout — harmful source data, {backbone}", "", header5, rule5]
        rows = [
            ("target only (\"Base\")", [get(backbone, c, "target_only") for c in harmful_cameras]),
            ("FT, clean sources", [get(backbone, c, "ft") for c in harmful_cameras]),
            ("ADL, clean sources", [get(backbone, c, "adl") for c in harmful_cameras]),
            ("FT + Harmful1 (Gaussian σ30)", [get(backbone, c, "ft_h1") for c in harmful_cameras]),
            ("ADL + Harmful1 (Gaussian σ30)", [get(backbone, c, "adl_h1") for c in harmful_cameras]),
            ("FT + Harmful2 (misaligned)", [get(backbone, c, "ft_h2") for c in harmful_cameras]),
            ("ADL + Harmful2 (misaligned)", [get(backbone, c, "adl_h2") for c in harmful_cameras]),
        ]
        for label, results in rows:
            lines.append(f"| {label} | " + " | ".join(cell_text(r) for r in results) + f" | {cell_text(average(results))} |")
        lines.append("")
    lines += ["## ADL: source batches accepted / rejected per domain", "",
              "| backbone | target | sources | " + " | ".join(
                  [*CAMERAS, SYNTHETIC, *HARMFUL.values()]) + " |",
              "|---|---|---|" + "---|" * (len(CAMERAS) + 3)]
    for key, cell in cells.items():
        if "adl" not in cell or not cell["adl"]["accepted"] + cell["adl"]["rejected"]:
            continue
        backbone, camera, method = key.split("__")
        counts = cell["adl"]["domains"]
        row = [f"{counts[d]['accepted']}/{counts[d]['rejected']}" if d in counts else "" for d in
               [*CAMERAS, SYNTHETIC, *HARMFUL.values()]]
        lines.append(f"| {backbone} | {camera} | {method} | " + " | ".join(row) + " |")
    lines.append("")
    return "\n".join(lines)


# -- selection check (synthetic, no PolyU needed) ------------------------------------------------


def selection_check(seeds: int = 8) -> str:
    """Accepted fractions of a clean and a black-ground-truth source domain, per stage-2 optimiser setting.

    The setup of the plugin's test ``test_corrupted_domain_is_rejected_and_clean_domain_accepted``
    (under-exposed noisy 32×32 pairs, a 3-layer DnCNN started as the identity, 20 + 40 steps),
    pooled over ``seeds`` seeds, for AdamW with and without momentum in stage 2 and each
    ``on_reject`` rule. Returns a markdown table.
    """
    from noiseshift.api import ADAPTERS, DENOISERS, Sample

    def pairs(seed_range: range, black: bool = False) -> list[Any]:
        generator = torch.Generator().manual_seed(seed_range[0] + 999)
        out = []
        for seed in seed_range:
            base = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
            image = torch.nn.functional.interpolate(base, size=(32, 32), mode="bicubic", align_corners=False)
            clean = (0.1 + 0.8 * image).clamp(0, 1)
            noisy = (0.7 * clean + 0.03 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
            out.append(Sample(f"p{seed}", noisy, torch.zeros_like(clean) if black else clean, {}))
        return out

    target = pairs(range(6))
    source = {"clean": pairs(range(100, 116)), "black": pairs(range(200, 208), black=True)}
    lines = ["| stage-2 β₁ | on_reject | score | clean accepted | black-GT accepted |", "|---|---|---|---|---|"]
    for beta1 in (0.0, 0.9):
        for on_reject in ("weights", "skip", "weights_and_optimizer"):
            for score in ("psnr", "gain"):
                totals = {name: [0, 0] for name in source}
                for seed in range(seeds):
                    torch.manual_seed(seed)
                    model = DENOISERS.build({"type": "dncnn", "depth": 3, "width": 8, "batch_norm": False}).eval()
                    with torch.no_grad():
                        for param in model.parameters_for("last"):
                            param.zero_()
                    adl = ADAPTERS.build({
                        "type": "adl", "pretrain_steps": 20, "steps": 40, "finetune_steps": 0, "batch_size": 8,
                        "patch_size": 32, "lr": 1e-3, "score": score, "adapt_beta1": beta1, "on_reject": on_reject,
                    })
                    report = adl.fit(adl.wrap(model), target=target, source=source,
                                     generator=torch.Generator().manual_seed(seed))
                    for name, counts in report.extra["domains"].items():
                        totals[name][0] += counts["accepted"]
                        totals[name][1] += counts["accepted"] + counts["rejected"]
                cells = [f"{a}/{n} ({100 * a / n:.0f} %)" for a, n in (totals["clean"], totals["black"])]
                lines.append(f"| {beta1} | {on_reject} | {score} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="output folder (cells/, results.json, results.md); required for the study")
    parser.add_argument("--selection-check", action="store_true",
                        help="instead of the study: print the synthetic clean-vs-black-GT acceptance table "
                             "for ADL's stage-2 optimiser settings (about a minute)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: 2 cameras, a few steps, small crops")
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="PolyU folder (with CroppedImages/)")
    parser.add_argument("--train-dir", default=str(DEFAULT_TRAIN), help="clean images for the synthetic domains")
    parser.add_argument("--cameras", default=",".join(CAMERAS), help="target cameras (leave-one-out)")
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--methods", default=",".join(METHODS), help=f"Table 1 methods, from {METHODS}")
    parser.add_argument("--harmful-backbones", default="modulation_unet",
                        help="backbones that also run the Table 5 methods (empty: none)")
    parser.add_argument("--harmful-methods", default=",".join(HARMFUL_METHODS),
                        help=f"Table 5 methods, from {HARMFUL_METHODS}")
    parser.add_argument("--harmful-cameras", default="Canon600D,Canon80D,Sony",
                        help="target cameras of the Table 5 methods (default: the three smallest, for the CPU budget)")
    parser.add_argument("--adapt-pairs", type=int, default=4, help="target pairs for adaptation (whole scenes, at least)")
    parser.add_argument("--max-adapt", type=int, default=6, help="at most this many adaptation pairs")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=8, help="backbone width (channels at full resolution)")
    parser.add_argument("--source-steps", type=int, default=240, help="fine-tuning: source pre-training steps")
    parser.add_argument("--finetune-steps", type=int, default=80, help="fine-tuning: target steps")
    parser.add_argument("--adl-pretrain", type=int, default=80, help="ADL stage 1 steps")
    parser.add_argument("--adl-steps", type=int, default=160, help="ADL stage 2 (adaptive source) steps")
    parser.add_argument("--adl-finetune", type=int, default=80, help="ADL stage 3 steps")
    parser.add_argument("--adl-score", default="psnr", choices=("psnr", "gain"), help="ADL's queue score")
    parser.add_argument("--adl-criterion", default="queue_mean", choices=("queue_mean", "previous", "none"),
                        help="ADL's acceptance rule ('none': keep every step, the no-selection ablation)")
    parser.add_argument("--adl-beta1", type=float, default=0.0, help="ADL's AdamW momentum in stage 2")
    parser.add_argument("--adl-on-reject", default="weights_and_optimizer",
                        choices=("weights_and_optimizer", "skip", "weights"),
                        help="what ADL restores on a rejection")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=8, help="crops per step (ADL: per source batch)")
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--val-patch", type=int, default=128, help="ADL validation: central crop side")
    parser.add_argument("--synthetic", type=int, default=48, help="crops per synthetic / harmful domain")
    parser.add_argument("--synthetic-size", type=int, default=128)
    parser.add_argument("--test-crop", type=int, default=256, help="score the central crop of this side (0: whole 512×512)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.selection_check:
        print(selection_check())
        return 0
    if not args.out:
        parser.error("--out is required")
    if args.quick:
        args.cameras = args.harmful_cameras = "Canon600D,Sony"
        args.source_steps, args.finetune_steps = 6, 3
        args.adl_pretrain, args.adl_steps, args.adl_finetune = 3, 6, 3
        args.patch, args.val_patch, args.synthetic, args.synthetic_size, args.test_crop = 32, 64, 4, 64, 128
        args.width = 4

    from noiseshift.image_io import atomic_write_text

    root, out = Path(args.root), Path(args.out)
    if not (root / "CroppedImages").is_dir():
        print(f"no PolyU CroppedImages under {root}; pass --root", file=sys.stderr)
        return 2
    (out / "cells").mkdir(parents=True, exist_ok=True)
    cameras = [c for c in args.cameras.split(",") if c]
    backbones = [b for b in args.backbones.split(",") if b]
    methods = [m for m in args.methods.split(",") if m]
    harmful_backbones = [b for b in args.harmful_backbones.split(",") if b and b in backbones]
    unknown = sorted(set(methods) - set(METHODS)) + sorted(set(cameras) - set(CAMERAS))
    if unknown:
        print(f"unknown methods/cameras {unknown}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    samples = load_polyu(root)
    synthetic = synthetic_domains(Path(args.train_dir), args.synthetic, args.synthetic_size, args.seed)
    log(f"loaded {len(samples)} PolyU pairs and {sum(map(len, synthetic.values()))} synthetic crops "
        f"({time.perf_counter() - started:.0f} s)")

    def crop(sample: Any) -> Any:
        if not args.test_crop:
            return sample
        from noiseshift.api import Sample

        h, w = sample.noisy.shape[-2:]
        top, left = (h - args.test_crop) // 2, (w - args.test_crop) // 2
        window = (..., slice(top, top + args.test_crop), slice(left, left + args.test_crop))
        return Sample(sample.key, sample.noisy[window], sample.clean[window], sample.cond)

    plan = [(b, c, m) for c in cameras for b in backbones for m in methods]
    harmful_cameras = [c for c in args.harmful_cameras.split(",") if c in cameras]
    harmful_methods = [m for m in args.harmful_methods.split(",") if m in HARMFUL_METHODS]
    plan += [(b, c, m) for c in harmful_cameras for b in harmful_backbones for m in harmful_methods]
    splits, noisy = {}, {}
    data = {}
    for camera in cameras:
        adapt, test = split_target(samples, camera, args.adapt_pairs, args.max_adapt, args.split_seed)
        test = [crop(s) for s in test]
        others = {c: [s for s in samples if s.cond.get("sensor") == c] for c in CAMERAS if c != camera}
        data[camera] = (adapt, test, others)
        splits[camera] = {"adapt": len(adapt), "test": len(test), "adapt_keys": [s.key for s in adapt]}
        noisy[camera] = noisy_scores(test)

    record: dict[str, Any] = {
        "command": " ".join(["python tools/studies/adl_polyu.py", *(argv if argv is not None else sys.argv[1:])]),
        "config": {**vars(args), "cameras": cameras, "backbones": backbones, "methods": methods,
                   "harmful_backbones": harmful_backbones, "harmful_cameras": harmful_cameras,
                   "torch": torch.__version__},
        "splits": splits, "noisy": noisy, "cells": {}, "planned": len(plan), "finished": 0, "elapsed_s": 0.0,
    }

    def save() -> None:
        record["elapsed_s"] = time.perf_counter() - started
        record["finished"] = len(record["cells"])
        atomic_write_text(out / "results.json", json.dumps(record, indent=1), overwrite=True)
        atomic_write_text(out / "results.md", markdown(record), overwrite=True)

    for backbone, camera, method in plan:
        key = f"{backbone}__{camera}__{method}"
        path = out / "cells" / f"{key}.json"
        if path.is_file():
            record["cells"][key] = json.loads(path.read_text())
            continue
        adapt, test, others = data[camera]
        sources = {**others, SYNTHETIC: synthetic[SYNTHETIC]}
        if method.endswith(("_h1", "_h2")):
            harmful = HARMFUL[method[-2:]]
            sources[harmful] = synthetic[harmful]
        seed = args.seed + 1000 * CAMERAS.index(camera)
        model = build_backbone(backbone, args.width, seed)
        cell_started = time.perf_counter()
        if method.startswith("ft"):
            cell = run_ft(model, sources, adapt, test, args, seed)
        else:
            cell = run_adl(model, sources, adapt, test, args, seed, adapt=method != "target_only")
        cell["wall_s"] = time.perf_counter() - cell_started
        cell["sources"] = sorted(sources)
        atomic_write_text(path, json.dumps(cell, indent=1), overwrite=True)
        record["cells"][key] = cell
        save()
        extra = ""
        if "adl" in cell and cell["adl"]["domains"]:
            extra = " " + ", ".join(f"{d}: {v['accepted']}/{v['rejected']}" for d, v in cell["adl"]["domains"].items())
        log(f"{key}: {cell['result']['psnr']:.2f} dB (noisy {noisy[camera]['psnr']:.2f}) in {cell['wall_s']:.0f} s{extra}")
    save()
    log(f"done: {len(record['cells'])}/{len(plan)} cells, {(time.perf_counter() - started) / 60:.1f} min")
    print(markdown(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
