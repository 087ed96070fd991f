"""The training engine: one loop for a laptop CPU, one GPU, or ``torchrun`` with many.

``Trainer(cfg).train()`` builds everything from a resolved config (``training.config``):

* the model from ``DENOISERS`` (``model = dict(type=...)``), seeded by ``seed`` so every rank
  builds the same weights (DDP also broadcasts rank 0's);
* the data (``training.data``): every sample a pure function of ``(seed, position)``;
* the optimiser (any ``torch.optim`` class by name) and a stateless LR schedule
  (``training.optim``), gradient clipping, an optional EMA (``training.ema``);
* periodic validation with PSNR/SSIM (``training.validation``), the best model kept as
  ``best.safetensors``;
* checkpoints every ``checkpoint.interval`` iterations (``training.checkpoint``), a JSON-lines
  log (``training.logger``), a rich progress bar; rank 0 alone writes files.

A run killed at any point and restarted with ``resume=True`` continues from its last complete
checkpoint and ends with the weights an uninterrupted run produces (bitwise on CPU): model,
optimiser, EMA and RNG state are restored exactly, the learning rate is a function of the
iteration, and the data of iteration ``t`` depends only on ``(seed, t)``.

Work-dir layout::

    <work_dir>/config.py                 resolved config (config_resume_<k>.py if a resume changed it)
    <work_dir>/log.jsonl                 JSON lines (see training.logger)
    <work_dir>/checkpoints/iter_<t>.*    model / optimiser+EMA+RNG tensors / JSON state
    <work_dir>/best.safetensors          best validation PSNR (EMA weights when EMA is on)
    <work_dir>/final.safetensors         the model at the end (EMA weights when EMA is on)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from mmengine.config import Config
from torch.utils.data import DataLoader

from ..adapters.finetune import build_loss, loss_needs_noise_map
from ..denoiser import Denoiser
from ..errors import InvalidInputError, NoiseshiftError, OutputExistsError
from ..weights import save
from .checkpoint import find_latest_checkpoint, list_checkpoints, load_checkpoint, prune_checkpoints, save_checkpoint
from .config import config_digest, config_text, load_config, resolve, save_config
from .data import IterationSampler, SyntheticDataset, build_dataset
from .distributed import DistContext
from .ema import ModelEMA
from .logger import JsonLinesLogger
from .optim import LRSchedule, build_optimizer
from .validation import ValidationSet, evaluate

__all__ = ["Hook", "TrainResult", "Trainer", "TrainingError", "train"]

Hook = Callable[["Trainer", int], None]
"""``hook(trainer, iterations_done)``: called after every iteration (after its checkpoint)."""


class TrainingError(NoiseshiftError, RuntimeError):
    """Training cannot go on (the loss or the gradients became NaN/inf)."""


@dataclass
class TrainResult:
    """What a finished run produced.

    Attributes:
        work_dir: the run's folder.
        iterations: iterations completed.
        final: path of ``final.safetensors`` (``None`` on ranks other than 0, which write nothing).
        best: path of ``best.safetensors`` (``None`` without validation).
        best_metrics: ``{"psnr", "ssim", "iter"}`` of the best validation, or ``None``.
        last_metrics: the last validation's scores, or ``None``.
        elapsed_s: training wall time over all sessions of the run (resumes included).
        resumed_from: the iteration this session started at (0 for a fresh run).
    """

    work_dir: Path
    iterations: int
    final: Path | None
    best: Path | None = None
    best_metrics: dict[str, float] | None = None
    last_metrics: dict[str, float] | None = None
    elapsed_s: float = 0.0
    resumed_from: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Train a denoiser from a config.

    Args:
        cfg: a resolved ``Config``, a config file path, or a plain dict config.
        work_dir: the run's folder; default ``cfg.work_dir``, else ``work_dirs/<config name>``.
        resume: continue from the newest complete checkpoint in ``work_dir`` (a fresh start
            when there is none). Without it, a ``work_dir`` that already holds a run is an error.
        cfg_options: overrides (``{"optimizer.lr": 1e-4}`` or ``["optimizer.lr=1e-4"]``) when
            ``cfg`` is a path.
        hooks: called as ``hook(trainer, iterations_done)`` after every iteration.
        progress: show a rich progress bar (default ``cfg.progress``).

    Raises:
        InvalidInputError: an invalid config.
        OutputExistsError: ``work_dir`` holds a run and ``resume`` is off.
    """

    def __init__(
        self,
        cfg: Config | str | Path | Mapping[str, Any],
        *,
        work_dir: str | Path | None = None,
        resume: bool = False,
        cfg_options: Mapping[str, Any] | Iterable[str] | None = None,
        hooks: Iterable[Hook] = (),
        progress: bool | None = None,
    ) -> None:
        if isinstance(cfg, (str, Path)):
            cfg = load_config(cfg, cfg_options)
        elif cfg_options:
            raise InvalidInputError("cfg_options apply to a config file; edit the Config object directly")
        elif isinstance(cfg, Mapping) and not isinstance(cfg, Config):
            cfg = resolve(Config(dict(cfg)))
        else:
            cfg = resolve(cfg, source=str(getattr(cfg, "filename", None) or "config"))
        name = Path(cfg.filename).stem if cfg.filename else "run"
        self.cfg = cfg
        self.work_dir = Path(work_dir or cfg.work_dir or Path("work_dirs") / name)
        self.cfg.work_dir = str(self.work_dir)
        self.resume = resume
        self.hooks = list(hooks)
        self.show_progress = cfg.progress if progress is None else progress
        self.iteration = 0

    # -- building ---------------------------------------------------------------------------

    def _build_model(self) -> Denoiser:
        from noiseshift.registry import DENOISERS

        torch.manual_seed(self.cfg.seed)
        model = DENOISERS.build(dict(self.cfg.model))
        if not getattr(model, "trainable", True) or not any(p.requires_grad for p in model.parameters()):
            raise InvalidInputError(f"model {self.cfg.model['type']!r} has no trainable parameters")
        return model

    def _build_data(self, model: Denoiser, start_iter: int) -> tuple[Any, DataLoader]:
        loader_cfg = self.cfg.train_dataloader
        dataset_cfg = dict(loader_cfg["dataset"])
        needs_map = loss_needs_noise_map(self.cfg.train_cfg["loss"])
        defaults: dict[str, Any] = {"seed": self.cfg.seed, "return_sigma": "sigma" in model.conditions or needs_map}
        if model.in_channels in (1, 3):
            defaults["channels"] = model.in_channels
        if dataset_cfg["type"] == SyntheticDataset.name and "noise" not in dataset_cfg:
            if self.cfg.train_noise is None:
                raise InvalidInputError("a 'synthetic' training dataset needs train_noise = dict(type=...)")
            defaults["noise"] = dict(self.cfg.train_noise)
        dataset = build_dataset(dataset_cfg, **defaults)
        sampler = IterationSampler(
            start_iter=start_iter, max_iters=self.cfg.train_cfg["max_iters"], batch_size=loader_cfg["batch_size"],
            rank=self.dist.rank, world_size=self.dist.world_size,
        )
        workers = loader_cfg["num_workers"]
        loader = DataLoader(
            dataset, batch_size=loader_cfg["batch_size"], sampler=sampler, num_workers=workers,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
            prefetch_factor=4 if workers else None,
            # The loader draws its worker base seed from this generator rather than from torch's
            # global RNG, whose state the checkpoints restore; samples never use that seed.
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )
        return dataset, loader

    def _build_valset(self, model: Denoiser) -> ValidationSet | None:
        spec = self.cfg.val_dataset
        if spec is None:
            return None
        options = dict(spec)
        if "noisy_root" not in options:
            if self.cfg.val_noise is None:
                raise InvalidInputError("val_dataset without noisy_root needs val_noise = dict(type=...)")
            options["noise"] = dict(self.cfg.val_noise)
        if model.in_channels in (1, 3):
            options.setdefault("channels", model.in_channels)
        try:
            return ValidationSet(**options)
        except TypeError as exc:
            raise InvalidInputError(f"val_dataset: {exc}") from exc

    def _check_work_dir(self) -> tuple[Any, dict[str, Any]] | None:
        checkpoints = self.work_dir / "checkpoints"
        found = find_latest_checkpoint(checkpoints)
        if not self.resume and (list_checkpoints(checkpoints) or (self.work_dir / "log.jsonl").exists()):
            raise OutputExistsError(
                f"{self.work_dir} already holds a training run; pass --resume to continue it "
                "or choose another --work-dir"
            )
        return found

    # -- the loop ---------------------------------------------------------------------------

    def train(self) -> TrainResult:
        """Run (or resume) training to ``train_cfg.max_iters``; see the module docstring."""
        cfg = self.cfg
        self.dist, self.device = DistContext.from_env(cfg.device)
        deterministic = torch.are_deterministic_algorithms_enabled()
        try:
            return self._train()
        finally:
            torch.use_deterministic_algorithms(deterministic)
            self.dist.close()

    def _train(self) -> TrainResult:
        cfg, dist, device = self.cfg, self.dist, self.device
        train_cfg = cfg.train_cfg
        max_iters = int(train_cfg["max_iters"])
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        found = self._check_work_dir()
        dist.barrier()

        model = self._build_model().to(device)
        self.model = model
        ema_cfg = train_cfg["ema"]
        if isinstance(ema_cfg, (int, float)) and not isinstance(ema_cfg, bool):
            ema_cfg = {"decay": float(ema_cfg)}
        try:
            self.ema = ModelEMA(model, **ema_cfg) if ema_cfg else None
        except TypeError as exc:
            raise InvalidInputError(f"train_cfg.ema: {exc} (use a decay or dict(decay=..., warmup=...))") from exc
        self.optimizer = build_optimizer(model.parameters(), cfg.optimizer)
        schedule = LRSchedule(cfg.lr_schedule, cfg.optimizer["lr"], max_iters)
        loss_fn = build_loss(train_cfg["loss"])
        if isinstance(loss_fn, torch.nn.Module):
            loss_fn = loss_fn.to(device)
        max_norm = _grad_clip(train_cfg["grad_clip"])
        # Losses such as AINDNet's estimation loss also see the true noise map and the model's
        # auxiliary outputs (its noise-level estimate).
        needs_noise_map = loss_needs_noise_map(train_cfg["loss"])

        start, best, elapsed_before = 0, None, 0.0
        if found is not None and self.resume:
            paths, document = found
            load_checkpoint(paths, document, model=model, optimizer=self.optimizer, ema=self.ema)
            start, best, elapsed_before = int(document["iteration"]), document.get("best"), float(document.get("elapsed_s", 0.0))
        self.iteration = start
        digest = config_digest(cfg)
        # Data errors (unreadable images) surface before anything is written to the work dir.
        dataset, loader = self._build_data(model, start)
        valset = self._build_valset(model)
        train_model = dist.wrap(model, device)
        # On resume drop what the killed run logged after its checkpoint (everything when it
        # died before the first checkpoint and this is a fresh start).
        logger = self._open_log((start if found is not None else -1) if self.resume else None)
        if dist.is_main:
            self._save_config(start, found is not None and self.resume)
        val_interval = int(train_cfg["val_interval"])
        checkpoint_interval = int(cfg.checkpoint["interval"])
        log_interval = max(int(cfg.log_interval), 1)
        eval_model: Denoiser = self.ema.module if self.ema is not None else model

        from rich.console import Console

        console = Console(stderr=True, highlight=False)
        say = _printer(dist.is_main, console)
        if start:
            say(f"resuming {self.work_dir} from iteration {start}")
            logger.log("resume", start, from_checkpoint=start)
        else:
            logger.log("start", 0, config=cfg.filename, world_size=dist.world_size, device=str(device))
        say(f"data: {dataset.describe()}")
        if valset is not None:
            say(f"validation: {valset.describe()}")
        say(f"model: {cfg.model['type']} ({sum(p.numel() for p in model.parameters()):,} parameters) on {device}, "
            f"world size {dist.world_size}, {max_iters} iterations")

        history: list[dict[str, float]] = []
        last_metrics: dict[str, float] | None = None
        loss_sum, loss_count = torch.zeros((), dtype=torch.float64), 0
        session_start = time.monotonic()
        window_start, window_iters = time.monotonic(), 0

        def elapsed() -> float:
            return elapsed_before + time.monotonic() - session_start

        def validate(done: int) -> None:
            nonlocal best, last_metrics
            self._sync_buffers()
            metrics = evaluate(eval_model, valset, device, dist)  # type: ignore[arg-type]
            improved = best is None or metrics["psnr"] > best["psnr"]
            if improved:
                best = {"psnr": metrics["psnr"], "ssim": metrics["ssim"], "iter": done}
                if dist.is_main:
                    save(eval_model, self.work_dir / "best.safetensors", overwrite=True,
                         extra={"iteration": done, "val": metrics, "ema": self.ema is not None,
                                "config": str(cfg.filename)})
            last_metrics = metrics
            history.append({"iter": done, **metrics})
            logger.log("val", done, **metrics, best=improved)
            say(f"val @ {done}: PSNR {metrics['psnr']:.3f} dB, SSIM {metrics['ssim']:.4f}"
                f"{' (best)' if improved else ''}")

        progress = _Progress(self.show_progress and dist.is_main, start, max_iters, console)
        model.train()
        batches = iter(loader)
        try:
            with progress:
                for iteration in range(start, max_iters):
                    batch = next(batches)
                    lr = schedule.apply(self.optimizer, iteration)
                    noisy = batch["noisy"].to(device, non_blocking=True)
                    clean = batch["clean"].to(device, non_blocking=True)
                    sigma = batch["sigma"].to(device, non_blocking=True) if "sigma" in batch else None
                    cond = {"sigma": sigma} if sigma is not None and "sigma" in model.conditions else None
                    if needs_noise_map:
                        model.aux_outputs = MappingProxyType({})
                        output = train_model(noisy, cond)
                        loss = loss_fn(output, clean, aux=dict(model.aux_outputs), sigma=sigma)
                    else:
                        loss = loss_fn(train_model(noisy, cond), clean)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    grads = [p.grad for p in model.parameters() if p.grad is not None]
                    grad_norm = torch.nn.utils.get_total_norm(grads)
                    # The gradients are all-reduced already and the loss is reduced here, so
                    # every rank sees the same values and all stop together.
                    step_loss = dist.all_reduce_sum(loss.detach().double().cpu().reshape(1))[0] / dist.world_size
                    if not (torch.isfinite(grad_norm) and torch.isfinite(step_loss)):
                        raise TrainingError(
                            f"iteration {iteration + 1}: training diverged, the loss is {float(step_loss)} and "
                            f"the gradient norm {float(grad_norm)} (not finite); lower optimizer.lr, set "
                            "train_cfg.grad_clip or check the data"
                        )
                    if max_norm is not None:
                        torch.nn.utils.clip_grads_with_norm_(model.parameters(), max_norm, grad_norm)
                    self.optimizer.step()
                    if self.ema is not None:
                        self.ema.update(model)
                    done = iteration + 1
                    self.iteration = done
                    loss_sum += step_loss
                    loss_count += 1
                    window_iters += 1

                    if done % log_interval == 0 or done == max_iters:
                        mean_loss = float(loss_sum) / loss_count
                        rate = (time.monotonic() - window_start) / max(window_iters, 1)
                        logger.log("train", done, loss=mean_loss, lr=lr, grad_norm=float(grad_norm), s_per_iter=rate)
                        progress.note(f"loss {mean_loss:.4g}  lr {lr:.3g}  {rate:.2f} s/it")
                        if not self.show_progress:
                            say(f"iter {done}/{max_iters}: loss {mean_loss:.5g}, lr {lr:.3g}, {rate:.2f} s/it")
                        loss_sum, loss_count = torch.zeros((), dtype=torch.float64), 0
                        window_start, window_iters = time.monotonic(), 0
                    if valset is not None and val_interval and done % val_interval == 0 and done != max_iters:
                        validate(done)
                    if done == max_iters and valset is not None:
                        validate(done)
                    if (checkpoint_interval and done % checkpoint_interval == 0) or done == max_iters:
                        self._checkpoint(done, best, elapsed(), digest, logger)
                    progress.advance(done)
                    for hook in self.hooks:
                        hook(self, done)
        except BaseException:
            logger.close()
            raise
        finally:
            del batches

        final = None
        if dist.is_main:
            final = save(eval_model, self.work_dir / "final.safetensors", overwrite=True,
                         extra={"iteration": max_iters, "ema": self.ema is not None, "config": str(cfg.filename),
                                **({"val": last_metrics} if last_metrics else {})})
        total = elapsed()
        logger.log("end", max_iters, elapsed_s=total, best=best)
        logger.close()
        say(f"done: {max_iters} iterations in {total:.0f} s" +
            (f"; best val PSNR {best['psnr']:.3f} dB at {best['iter']}" if best else ""))
        dist.barrier()
        best_path = self.work_dir / "best.safetensors"
        return TrainResult(
            work_dir=self.work_dir, iterations=max_iters, final=final,
            best=best_path if best is not None else None, best_metrics=best, last_metrics=last_metrics,
            elapsed_s=total, resumed_from=start, history=history,
        )

    # -- helpers ----------------------------------------------------------------------------

    def _open_log(self, truncate_after: int | None) -> JsonLinesLogger:
        path = self.work_dir / "log.jsonl" if self.dist.is_main else None
        return JsonLinesLogger(path, truncate_after=truncate_after)

    def _save_config(self, start: int, resuming: bool) -> None:
        target = self.work_dir / "config.py"
        if resuming and target.is_file():
            previous = target.read_text(encoding="utf-8")
            if config_text(self.cfg) not in previous:
                save_config(self.cfg, self.work_dir / f"config_resume_{start:08d}.py", overwrite=True)
            return
        save_config(self.cfg, target, overwrite=True)

    def _sync_buffers(self) -> None:
        """Give every rank rank 0's buffers (batch-norm statistics drift apart per rank)."""
        if not self.dist.distributed:
            return
        buffers = list(self.model.buffers())
        if self.ema is not None:
            buffers += list(self.ema.module.buffers())
        self.dist.broadcast_(buffers)

    def _checkpoint(self, done: int, best: dict[str, Any] | None, elapsed_s: float, digest: str,
                    logger: JsonLinesLogger) -> None:
        self._sync_buffers()
        if self.dist.is_main:
            paths = save_checkpoint(
                self.work_dir / "checkpoints", done, model=self.model, optimizer=self.optimizer, ema=self.ema,
                training={"best": best, "elapsed_s": elapsed_s, "config_sha256": digest,
                          "world_size": self.dist.world_size, "seed": self.cfg.seed},
            )
            prune_checkpoints(paths.directory, int(self.cfg.checkpoint["keep"]))
            logger.log("checkpoint", done, path=str(paths.model))
        self.dist.barrier()


def train(
    config: str | Path | Config,
    *,
    work_dir: str | Path | None = None,
    resume: bool = False,
    cfg_options: Mapping[str, Any] | Iterable[str] | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train from a config file: ``Trainer(config, ...).train()``."""
    return Trainer(config, work_dir=work_dir, resume=resume, cfg_options=cfg_options, progress=progress).train()


def _grad_clip(spec: Any) -> float | None:
    if spec is None or spec is False:
        return None
    if isinstance(spec, Mapping):
        spec = spec.get("max_norm")
    if isinstance(spec, bool) or not isinstance(spec, (int, float)) or spec <= 0:
        raise InvalidInputError(f"train_cfg.grad_clip must be None, a positive max norm or dict(max_norm=...), got {spec!r}")
    return float(spec)


def _printer(enabled: bool, console: Any) -> Callable[[str], None]:
    def say(message: str) -> None:
        if enabled:
            console.print(message, markup=False)

    return say


class _Progress:
    """A rich progress bar on rank 0 (inactive elsewhere or when disabled)."""

    def __init__(self, enabled: bool, start: int, total: int, console: Any) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[note]}"), console=console,
        )
        self.task = self.bar.add_task("train", total=total, completed=start, note="")

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)  # type: ignore[arg-type]

    def advance(self, done: int) -> None:
        if self.enabled:
            self.bar.update(self.task, completed=done)

    def note(self, text: str) -> None:
        if self.enabled:
            self.bar.update(self.task, note=text)
