"""AINDNet and AIN transfer learning at CPU scale: the paper's Tables 6 and 5 in miniature.

Kim et al., "Transfer Learning from Synthetic to Real-Noise Denoising with Adaptive Instance
Normalization", CVPR 2020. Two experiments, on one CPU thread by default (the machine is shared):

**(a) Does AIN generalise better?** (paper Table 6.) AINDNet with the ``small`` preset (403,518
parameters) and the paper's own baseline "IN + Concat" (every AIN module replaced by an instance
norm with a learned affine, the estimated noise map concatenated to the input; width 20 so it has
a similar 401,494 parameters, same block layout and estimator) are trained identically from
``configs/ain_transfer/aindnet_small_cbsd432_cbdnet.py`` with the core trainer: CBSD432 crops
with CBDNet camera-pipeline noise (DoRF curves), loss L1 + 0.05·L_ms-asymm. Both are scored on
PolyU (real noise, never seen) and on Kodak24 with CBDNet noise (the training noise, unseen
images), plus the noise estimator's mean absolute error on Kodak24 (paper Table 1's measure).

**(b) Few real pairs** (paper Table 5, PolyU in place of SIDD). PolyU's 100 pairs are split by
scene into a fixed adaptation half and a test half (``noiseshift.domains.split_by_scene``,
seed 0: no test scene is ever adapted on). With k = 0, 1, 2, 4, 8, 16, 32 adaptation pairs (nested
subsets in a fixed random order): *scratch* (an AINDNet-small trained from random weights on the
k pairs, all parameters, L1 — the paper's "(R)"), *+RT* (the synthetic model of (a) re-trained
entirely: core ``finetune`` with ``role=all``) and *+TF* (``ain_transfer``: only the ``domain``
role — AIN modules, estimator, output convolution, 37.8 % of the parameters). +RT and +TF get the
same steps, learning rate, batch and crops. PSNR/SSIM on the test half.

Scoring: RGB, data range 1, float outputs clipped to [0, 1], Gaussian SSIM (PolyU's protocol in
noiseshift). To fit the budget every score is on a central window of each image: ``--eval-crop``
(default 256², a quarter of a PolyU 512² image; Kodak 500² → 256²) in (a), ``--test-crop``
(default 128²) in (b), which scores 19 models.

Budget (measured, see docs/ain_transfer.md): the default run took 1,552 s (26 minutes) on one
thread of a shared, busy 2-core CPU — two 1,000-iteration trainings (433 s each), 6 scratch fits
of 200 steps (46 s each), 12 adaptations of 100 steps (20–23 s each), 25 evaluations.

Outputs (``--out``, written atomically after every finished cell; a rerun skips finished cells
and resumes an interrupted training from its last checkpoint)::

    results.json   every cell's numbers, the options, timings
    results.md     the two tables in markdown
    train_<model>/ the core trainer's work dirs (final.safetensors, log.jsonl, checkpoints)

Example::

    python tools/studies/ain_transfer.py --out /work/runs/ain_study           # the full study
    python tools/studies/ain_transfer.py --quick --out /tmp/ain_quick         # smoke run, ~1 min
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
CONFIG = ROOT / "configs" / "ain_transfer" / "aindnet_small_cbsd432_cbdnet.py"
MODELS = {
    "aindnet": {"type": "aindnet", "preset": "small"},
    "in_concat": {"type": "aindnet", "preset": "small", "modulation": "in_concat", "width": 20},
}
LABELS = {"aindnet": "AINDNet-small (AIN)", "in_concat": "IN + Concat, width 20 (paper's Table 6 baseline)"}
METHODS = ("scratch", "rt", "tf")
METHOD_LABELS = {"scratch": "scratch on k pairs (R)", "rt": "+RT (finetune, role all)", "tf": "+TF (ain_transfer, role domain)"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/ain_study"), help="output folder (resumable)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny budgets, few images, k in {0, 1, 2}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-root", type=Path, default=DATA / "clean" / "CBSD432")
    parser.add_argument("--kodak-root", type=Path, default=DATA / "clean" / "Kodak24")
    parser.add_argument("--polyu-root", type=Path, default=DATA / "real" / "PolyU")
    parser.add_argument("--crf-dir", type=Path, default=DATA / "crf", help="DoRF curves for the CBDNet noise")
    parser.add_argument("--pretrain-iters", type=int, default=1000, help="synthetic-stage iterations per model")
    parser.add_argument("--pairs", default="0,1,2,4,8,16,32", help="numbers of PolyU adaptation pairs")
    parser.add_argument("--adapt-steps", type=int, default=100, help="+RT / +TF steps")
    parser.add_argument("--adapt-lr", type=float, default=3e-4, help="+RT / +TF Adam learning rate")
    parser.add_argument("--scratch-steps", type=int, default=200, help="steps of the from-scratch models")
    parser.add_argument("--scratch-lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=4, help="crops per adaptation step")
    parser.add_argument("--patch-size", type=int, default=64, help="adaptation crop side")
    parser.add_argument("--eval-crop", type=int, default=256, help="(a): central crop scored per image (0: whole)")
    parser.add_argument("--test-crop", type=int, default=128, help="(b): central crop scored per test image (0: whole)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N PolyU / Kodak images")
    args = parser.parse_args(argv)
    if args.quick:
        args.pretrain_iters = min(args.pretrain_iters, 30)
        args.pairs = "0,1,2"
        args.adapt_steps = min(args.adapt_steps, 5)
        args.scratch_steps = min(args.scratch_steps, 10)
        args.eval_crop = min(args.eval_crop or 64, 64)
        args.test_crop = min(args.test_crop or 64, 64)
        args.limit = args.limit or 8
    args.pairs = [int(k) for k in str(args.pairs).split(",")]
    return args


class Study:
    """The cells of the study, their results on disk, and the shared data."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(args.device)
        path = self.out / "results.json"
        self.results: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        self.results.setdefault("cells", {})
        self.results["options"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        self.session_start = time.perf_counter()

    # -- bookkeeping ------------------------------------------------------------------------

    def done(self, name: str) -> bool:
        return name in self.results["cells"]

    def record(self, name: str, **values: Any) -> None:
        from noiseshift.image_io import atomic_write_text

        self.results["cells"][name] = values
        self.results["wall_s_total"] = self.results.get("wall_s_before", 0.0) + time.perf_counter() - self.session_start
        atomic_write_text(self.out / "results.json", json.dumps(self.results, indent=1), overwrite=True)
        atomic_write_text(self.out / "results.md", self.markdown(), overwrite=True)
        print(f"[{self.results['wall_s_total']:7.0f} s] {name}: "
              + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
                          if not isinstance(v, (dict, list))), flush=True)

    # -- data -------------------------------------------------------------------------------

    def polyu(self) -> list[Any]:
        from noiseshift.domains import load_domain

        if not hasattr(self, "_polyu"):
            spec = f"polyu:root={self.args.polyu_root}"
            self._polyu = load_domain(spec).samples
        return self._polyu

    def split(self) -> tuple[list[Any], list[Any]]:
        from noiseshift.domains import split_by_scene

        adapt, test = split_by_scene(self.polyu(), 0.5, seed=self.args.seed)
        order = torch.randperm(len(adapt), generator=torch.Generator().manual_seed(self.args.seed)).tolist()
        adapt = [adapt[i] for i in order]
        if self.args.limit:
            test = test[: self.args.limit]
        return adapt, test

    def kodak(self) -> list[dict[str, torch.Tensor]]:
        """Kodak24 with CBDNet noise, one fixed generator per image (seed, index)."""
        from noiseshift.api import NOISE_MODELS
        from noiseshift.image_io import list_images, read_image

        if not hasattr(self, "_kodak"):
            noise = NOISE_MODELS.build({"type": "cbdnet", "crf_dir": str(self.args.crf_dir)})
            files = list_images(self.args.kodak_root)[: self.args.limit or None]
            items = []
            for index, file in enumerate(files):
                clean = _center(read_image(file), self.args.eval_crop)
                drawn = noise(clean, torch.Generator().manual_seed(self.args.seed * 1000 + index))
                items.append({"noisy": drawn.noisy.clamp(0, 1), "clean": clean, "sigma": drawn.sigma})
            self._kodak = items
        return self._kodak

    # -- models -----------------------------------------------------------------------------

    def pretrain(self, name: str) -> Path:
        """Train one model of (a) with the core trainer (resumes an interrupted run)."""
        from noiseshift.training import Trainer, load_config

        work_dir = self.out / f"train_{name}"
        final = work_dir / "final.safetensors"
        cell = f"train/{name}"
        if self.done(cell) and final.is_file():
            return final
        options = {
            "train_dataloader.dataset.root": str(self.args.train_root),
            "train_noise.crf_dir": str(self.args.crf_dir),
            "val_noise.crf_dir": str(self.args.crf_dir),
            "val_dataset": None,
            "train_cfg.max_iters": self.args.pretrain_iters,
            "seed": self.args.seed,
            "device": self.args.device,
            "checkpoint.interval": max(self.args.pretrain_iters // 4, 1),
        }
        cfg = load_config(CONFIG, options)
        cfg.model = {**cfg.model, **MODELS[name]}
        started = time.perf_counter()
        result = Trainer(cfg, work_dir=work_dir, resume=True, progress=False).train()
        model = self.load(result.final)
        self.record(cell, parameters=sum(p.numel() for p in model.parameters()), iterations=result.iterations,
                    train_s=result.elapsed_s, session_s=time.perf_counter() - started)
        return result.final

    def load(self, path: Path) -> torch.nn.Module:
        from noiseshift.api import load

        return load(path).to(self.device).eval()

    # -- scoring ----------------------------------------------------------------------------

    def score(self, model: torch.nn.Module | None, samples: list[Any], crop: int) -> dict[str, float]:
        """Mean PSNR / SSIM over central crops (``model=None`` scores the noisy input)."""
        from noiseshift.inference import denoise
        from noiseshift.metrics import psnr, ssim

        psnrs, ssims = [], []
        for sample in samples:
            noisy, clean = _center(sample.noisy, crop), _center(sample.clean, crop)
            output = noisy if model is None else denoise(model, noisy.to(self.device)).cpu()
            output = output.clamp(0, 1)
            psnrs.append(float(psnr(output, clean, data_range=1.0)))
            ssims.append(float(ssim(output, clean, data_range=1.0)))
        return {"psnr": sum(psnrs) / len(psnrs), "ssim": sum(ssims) / len(ssims), "images": len(psnrs)}

    def score_kodak(self, model: torch.nn.Module | None) -> dict[str, float]:
        """PSNR / SSIM on Kodak24 + CBDNet noise, and the estimator's MAE against the true σ map."""
        from noiseshift.inference import denoise
        from noiseshift.metrics import psnr, ssim

        psnrs, ssims, maes = [], [], []
        for item in self.kodak():
            noisy, clean = item["noisy"], item["clean"]
            if model is None:
                output = noisy
            else:
                output = denoise(model, noisy.to(self.device)).cpu()
                height, width = noisy.shape[-2:]
                estimate = model.aux_outputs["sigma"][..., :height, :width].cpu()
                maes.append(float((estimate - item["sigma"]).abs().mean()))
            output = output.clamp(0, 1)
            psnrs.append(float(psnr(output, clean, data_range=1.0)))
            ssims.append(float(ssim(output, clean, data_range=1.0)))
        scores = {"psnr": sum(psnrs) / len(psnrs), "ssim": sum(ssims) / len(ssims), "images": len(psnrs)}
        if maes:
            scores["sigma_mae"] = sum(maes) / len(maes)
        return scores

    # -- the experiments --------------------------------------------------------------------

    def experiment_a(self) -> None:
        for name in MODELS:
            self.pretrain(name)
        for name in (None, *MODELS):
            label = name or "noisy"
            if not self.done(f"a/{label}/polyu"):
                model = self.load(self.out / f"train_{name}" / "final.safetensors") if name else None
                self.record(f"a/{label}/polyu", **self.score(model, self.polyu()[: self.args.limit or None], self.args.eval_crop))
            if not self.done(f"a/{label}/kodak"):
                model = self.load(self.out / f"train_{name}" / "final.safetensors") if name else None
                self.record(f"a/{label}/kodak", **self.score_kodak(model))

    def experiment_b(self) -> None:
        from noiseshift.api import ADAPTERS, DENOISERS

        adapt, test = self.split()
        if not self.done("b/split"):
            self.record("b/split", adapt=len(adapt), test=len(test),
                        adapt_keys=[s.key for s in adapt], test_keys=[s.key for s in test])
        if not self.done("b/noisy/0"):
            self.record("b/noisy/0", **self.score(None, test, self.args.test_crop))
        pretrained = self.out / "train_aindnet" / "final.safetensors"
        for k in self.args.pairs:
            for method in METHODS:
                cell = f"b/{method}/{k}"
                if self.done(cell):
                    continue
                if k == 0:
                    if method == "scratch":
                        continue  # nothing to train on: the paper's "–"
                    self.record(cell, **self.score(self.load(pretrained), test, self.args.test_crop), fit_s=0.0, trained_parameters=0)
                    continue
                if method == "scratch":
                    torch.manual_seed(self.args.seed)
                    model = DENOISERS.build(dict(MODELS["aindnet"])).to(self.device)
                    adapter = ADAPTERS.build({"type": "finetune", "role": "all", "steps": self.args.scratch_steps,
                                              "lr": self.args.scratch_lr, "batch_size": self.args.batch_size,
                                              "patch_size": self.args.patch_size})
                else:
                    model = self.load(pretrained)
                    options = {"steps": self.args.adapt_steps, "lr": self.args.adapt_lr,
                               "batch_size": self.args.batch_size, "patch_size": self.args.patch_size}
                    adapter = ADAPTERS.build({"type": "finetune", "role": "all", **options} if method == "rt"
                                             else {"type": "ain_transfer", **options})
                wrapped = adapter.wrap(model)
                started = time.perf_counter()
                report = adapter.fit(wrapped, target=adapt[:k],
                                     generator=torch.Generator().manual_seed(self.args.seed * 100 + k))
                fit_s = time.perf_counter() - started
                trained = sum(v.numel() for v in adapter.delta(wrapped).values())
                self.record(cell, **self.score(wrapped.eval(), test, self.args.test_crop), fit_s=fit_s, trained_parameters=trained,
                            steps=report.steps, last_loss=report.history[-1]["loss"])

    # -- report -----------------------------------------------------------------------------

    def markdown(self) -> str:
        cells = self.results["cells"]
        options = self.results["options"]

        def fmt(cell: str, key: str = "psnr", digits: int = 2) -> str:
            value = cells.get(cell, {}).get(key)
            return "–" if value is None else f"{value:.{digits}f}"

        lines = [
            "# AINDNet / AIN transfer at CPU scale (tools/studies/ain_transfer.py)",
            "",
            f"Options: {json.dumps({k: v for k, v in options.items() if k not in ('out',)})}",
            f"Wall time so far: {self.results.get('wall_s_total', 0.0):.0f} s.",
            "",
            f"## (a) AIN vs IN + Concat, trained on CBSD432 + CBDNet noise ({options['pretrain_iters']} iterations)",
            "",
            "| model | parameters | train s | PolyU PSNR / SSIM (real) | Kodak24 + CBDNet PSNR / SSIM | σ̂ MAE (Kodak24) |",
            "|---|---:|---:|---|---|---:|",
            f"| noisy input | – | – | {fmt('a/noisy/polyu')} / {fmt('a/noisy/polyu', 'ssim', 4)} | "
            f"{fmt('a/noisy/kodak')} / {fmt('a/noisy/kodak', 'ssim', 4)} | – |",
        ]
        for name in MODELS:
            train = cells.get(f"train/{name}", {})
            lines.append(
                f"| {LABELS[name]} | {train.get('parameters', '–'):,} | {train.get('train_s', float('nan')):.0f} | "
                f"{fmt(f'a/{name}/polyu')} / {fmt(f'a/{name}/polyu', 'ssim', 4)} | "
                f"{fmt(f'a/{name}/kodak')} / {fmt(f'a/{name}/kodak', 'ssim', 4)} | {fmt(f'a/{name}/kodak', 'sigma_mae', 4)} |"
                if train else f"| {LABELS[name]} | – | – | – | – | – |"
            )
        split = cells.get("b/split", {})
        pairs = options["pairs"]
        lines += [
            "",
            f"## (b) PSNR on the PolyU test half ({split.get('test', '?')} images, central {options['test_crop']}² "
            f"crops, scenes disjoint from the {split.get('adapt', '?')}-image adaptation half) vs. number of "
            "adaptation pairs k",
            "",
            "| method | " + " | ".join(f"k={k}" for k in pairs) + " |",
            "|---|" + "---:|" * len(pairs),
        ]
        for method in METHODS:
            lines.append(f"| {METHOD_LABELS[method]} | " + " | ".join(fmt(f"b/{method}/{k}") for k in pairs) + " |")
        lines += [
            f"| noisy input | {fmt('b/noisy/0')} |" + " |" * (len(pairs) - 1),
            "",
            "SSIM:",
            "",
            "| method | " + " | ".join(f"k={k}" for k in pairs) + " |",
            "|---|" + "---:|" * len(pairs),
        ]
        for method in METHODS:
            lines.append(f"| {METHOD_LABELS[method]} | " + " | ".join(fmt(f"b/{method}/{k}", "ssim", 4) for k in pairs) + " |")
        rt = [cells[c]["trained_parameters"] for c in cells if c.startswith("b/rt/") and cells[c].get("trained_parameters")]
        tf = [cells[c]["trained_parameters"] for c in cells if c.startswith("b/tf/") and cells[c].get("trained_parameters")]
        fit = {m: [cells[c]["fit_s"] for c in cells if c.startswith(f"b/{m}/") and cells[c].get("fit_s")] for m in METHODS}
        lines += [
            "",
            f"Updated parameters: +RT {f'{rt[0]:,}' if rt else '–'} · +TF {f'{tf[0]:,}' if tf else '–'} "
            "(the domain head). "
            + "Mean fit time per cell: "
            + ", ".join(f"{m} {sum(v) / len(v):.0f} s" for m, v in fit.items() if v) + ".",
            "",
        ]
        return "\n".join(lines)


def _center(image: torch.Tensor, crop: int) -> torch.Tensor:
    """The central ``crop``×``crop`` window (the whole image when ``crop`` is 0 or too large)."""
    height, width = image.shape[-2:]
    if not crop or (crop >= height and crop >= width):
        return image
    top, left = max((height - crop) // 2, 0), max((width - crop) // 2, 0)
    return image[..., top : top + crop, left : left + crop]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    for folder in (args.train_root, args.kodak_root, args.polyu_root, args.crf_dir):
        if not folder.is_dir():
            print(f"error: {folder} not found (the study needs the shared data; see --help)", file=sys.stderr)
            return 2
    study = Study(args)
    study.results["wall_s_before"] = study.results.get("wall_s_total", 0.0)
    study.experiment_a()
    study.experiment_b()
    study.record("done", wall_s=study.results["wall_s_total"])
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
