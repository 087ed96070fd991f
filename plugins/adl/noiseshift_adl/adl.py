"""ADL — Adaptive Domain Learning (Qian, Qi, Law, Fu, Lei & Chen, NeurIPS 2024).

Reference:
    Z. Qian, Y. Qi, Y. Law, Y. Fu, J. Lei and Q. Chen, "Adaptive Domain Learning for Cross-domain
    Image Denoising", NeurIPS 2024 (arXiv 2411.01472), §3.1 and Algorithm 1. No official code
    was found; everything follows the paper's text.

Three stages, on any trainable backbone (``role`` chooses which parameters train):

1. **Target pre-training**: ``pretrain_steps`` L1 steps on crops of the small target set ``T``.
2. **Adaptive source learning**, ``steps`` times: pick one source domain, draw a batch ``S'``
   from it; split ``T`` into a validation part ``V'`` (size ``k``, 20 % of ``T`` growing to 50 %,
   see :mod:`.validation`) and a training part whose crops join the batch; take one optimiser
   step; score the PSNR on ``V'``; keep the step only if the PSNR beats the mean of a bounded
   priority queue of past scores (:mod:`.score_queue`), which is seeded with the score of the model
   before the first step; otherwise restore the weights.
3. **Target fine-tuning**: ``finetune_steps`` L1 steps on ``T``.

What the paper leaves open, and what is chosen here (all options; docs/adl.md has the table):

* ``queue_size`` ``M`` (default 8) and which element leaves a full queue (``queue_pop``:
  ``"smallest"``, the paper's "first element of a queue ranked ascending", or ``"oldest"``).
* The validation-size growth law (``val_growth``: ``"linear"`` default, ``"cosine"``) and its
  rounding (half up, clamped so both parts are non-empty).
* What ``V'`` is scored on: the central ``val_patch``×``val_patch`` crop of each validation
  pair (fixed for the whole fit so scores differ only by the subset), or the whole image when
  ``val_patch`` is ``None`` (default). Output clipped to ``[0, 1]``, data range 1, mean of
  per-image PSNRs (capped at 100 dB).
* The diverse-gain choice of ``V'`` (``validation="auto"``: below ``diverse_below = 10``
  target pairs, when every pair has ``cond["iso"]``) by stratified sampling over ISO values.
* How the source domain is picked (``domain_sampling``: ``"uniform"`` over domains, default, or
  ``"proportional"`` to their size), and the target part of the batch (``target_batch``:
  ``None`` = one crop of every training-part pair, as the paper merges all of ``T_train``, or a
  fixed number of crops drawn from it).
* Optimiser: AdamW (the paper's), one for all three stages, constant learning rate (the paper
  gives no schedule); ``finetune_lr`` for stage 3 (default ``lr``). The paper trains from
  scratch with ``lr = 3e-3`` for 300k iterations; the default here (``1e-4``) suits a
  pretrained backbone.
* ``adapt_beta1`` (default ``0``): AdamW's momentum is switched off during stage 2, so the
  candidate ``θ'`` is one step along *this* batch's (AdamW-scaled) gradient, as in the paper's
  Eq. 1 ``θ' = θ − α∇L(S')``. With momentum 0.9 the step is mostly the previous batches'
  direction and the criterion judges them instead of ``S'``: in the tests a black-ground-truth
  domain was then accepted nearly as often as a clean one (8–19 % against 10–38 %); without it,
  1–4 % against 78–95 % (docs/adl.md).
* ``on_reject``: what a rejection restores. ``"weights_and_optimizer"`` (default): the weights,
  buffers and AdamW state exactly as before the step — a rejected batch is as if never drawn.
  (With momentum on, ``adapt_beta1 > 0``, this can lock a run: a stale momentum that fails every
  candidate step is restored after every failure; without momentum the candidate depends only on
  the new batch.) ``"skip"``: the same, then AdamW advanced as by a zero gradient (moments
  decayed, step counted), which cannot lock. ``"weights"``: the weights only, the paper's literal
  "retrieve the network parameter"; AdamW's second moment then keeps the rejected batches'
  squared gradients, which on PolyU, where most source batches are rejected, damped the final
  fine-tuning so much that ADL ended up to 1.5 dB below training on the target alone.
* ``score``: what enters the queue. ``"psnr"`` (default, the paper): the mean PSNR on ``V'``.
  Because ``V'`` is re-drawn every step, the queue then mixes scores of different subsets (the
  paper calls it a "soft" trend criterion), and with a handful of target pairs whose PSNRs
  differ by dB the subset drawn weighs as much as the step. ``"gain"``: the mean over ``V'`` of
  each pair's PSNR minus that pair's PSNR under the model at the start of stage 2 — the same
  queue rule with the difficulty of the drawn pairs taken out (the queue is seeded with 0).
* ``criterion``: ``"queue_mean"`` (the paper), ``"previous"`` (the hard criterion the paper
  argues against: beat the previous model on the same ``V'``; one extra evaluation per step) or
  ``"none"`` (keep every step: the paper's "no ADL selection" ablation).

Conditions: when the backbone declares condition keys (``modulation_unet`` reads ``sensor`` and
``iso``), every crop carries its sample's ``cond`` and the merged batch gets them collated per
image (:mod:`.batches`), in all three stages and in validation.

``FitReport.extra["domains"]`` holds, per source domain, how many batches were accepted and
rejected; each stage-2 history entry carries the running counts as ``accepted/<name>`` and
``rejected/<name>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from noiseshift.api import (
    AdaptedDenoiser,
    Adapter,
    Denoiser,
    FitReport,
    InvalidInputError,
    NoiseModel,
    Sample,
    build_pixel_loss,
    check_pairs,
    named_domains,
    training_patch,
)
from noiseshift.metrics import psnr

from .batches import Crop, center_crop, random_crops, stack
from .score_queue import POP_RULES, ScoreQueue
from .validation import GROWTH_LAWS, VALIDATION_CHOICES, diverse_iso_subset, random_subset, validation_size

__all__ = ["ADL", "CRITERIA", "DOMAIN_SAMPLING", "ON_REJECT", "PSNR_CAP", "SCORES"]

CRITERIA: tuple[str, ...] = ("queue_mean", "previous", "none")
"""Accepted values of ``criterion``."""

SCORES: tuple[str, ...] = ("psnr", "gain")
"""Accepted values of ``score``."""

ON_REJECT: tuple[str, ...] = ("weights_and_optimizer", "skip", "weights")
"""Accepted values of ``on_reject``."""

DOMAIN_SAMPLING: tuple[str, ...] = ("uniform", "proportional")
"""Accepted values of ``domain_sampling``."""

PSNR_CAP: float = 100.0
"""Validation PSNRs are capped here (a perfect output would score ``inf``)."""


def _check_choice(option: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise InvalidInputError(f"adl: {option} must be one of {list(choices)}, got {value!r}")
    return value


def _check_int(option: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"adl: {option} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_positive(option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidInputError(f"adl: {option} must be a positive number, got {value!r}")
    return float(value)


def _check_fraction(option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise InvalidInputError(f"adl: {option} must be a fraction in (0, 1), got {value!r}")
    return float(value)


class _Snapshot:
    """The backbone's tensors (and optionally the optimiser state) before one step, to undo it."""

    def __init__(self, backbone: Denoiser, optimizer: torch.optim.Optimizer | None) -> None:
        self.state = {name: tensor.detach().clone() for name, tensor in backbone.state_dict().items()}
        self.optimizer = None
        if optimizer is not None:
            self.optimizer = {
                param: {key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in state.items()}
                for param, state in optimizer.state.items()
            }

    def restore(self, backbone: Denoiser, optimizer: torch.optim.Optimizer, *, skip: bool = False) -> None:
        """Put the tensors (bit-exact) and, when captured, the optimiser state back.

        With ``skip`` the restored Adam state is then advanced as by a zero gradient: both moments
        decay by their ``betas`` and the step count grows by one.
        """
        with torch.no_grad():
            for name, tensor in backbone.state_dict().items():
                tensor.copy_(self.state[name])
        if self.optimizer is None:
            return
        optimizer.state.clear()
        optimizer.state.update(self.optimizer)
        if skip:
            for group in optimizer.param_groups:
                beta1, beta2 = group["betas"]
                for param in group["params"]:
                    state = optimizer.state.get(param)
                    if not state:
                        continue
                    state["exp_avg"].mul_(beta1)
                    state["exp_avg_sq"].mul_(beta2)
                    state["step"] += 1


class ADL(Adapter):
    """Adaptive domain learning: train on source domains only where a target validation set says it helps.

    Args:
        role: the backbone parameters that train (``"all"``, as in the paper).
        pretrain_steps: stage-1 steps on the target set (``0`` skips the stage).
        steps: stage-2 adaptive source steps ``T`` (``0`` skips the stage).
        finetune_steps: stage-3 steps on the target set (``0`` skips the stage).
        lr: AdamW learning rate of stages 1 and 2 (paper: ``3e-3`` from scratch).
        finetune_lr: stage-3 learning rate (``None``: ``lr``).
        weight_decay: AdamW weight decay (torch's AdamW default ``0.01``; the paper gives none).
        batch_size: crops per step from the target set (stages 1, 3) or the chosen source
            domain (stage 2).
        target_batch: stage-2 target crops: ``None`` = one per training-part pair, or a count.
        patch_size: crop side (rounded down to the backbone's size multiple and to the smallest
            image side of all domains).
        loss: a pixel loss from ``LOSSES`` (paper: L1).
        val_patch: side of the central validation crop; ``None`` scores whole images.
        val_start: validation fraction of the target set at the first source step (paper 0.2).
        val_end: validation fraction at the last source step (paper 0.5).
        val_growth: ``"linear"`` or ``"cosine"`` growth from ``val_start`` to ``val_end``.
        validation: ``"auto"``, ``"random"`` or ``"diverse_iso"`` choice of ``V'``.
        diverse_below: ``"auto"`` uses the diverse-ISO choice below this many target pairs (paper 10).
        queue_size: the queue bound ``M``.
        queue_pop: ``"smallest"`` or ``"oldest"`` leaves a full queue.
        criterion: ``"queue_mean"``, ``"previous"`` or ``"none"``.
        score: what the criterion compares: ``"psnr"`` (the paper's mean PSNR on ``V'``) or
            ``"gain"`` (mean per-pair PSNR gain over the model at the start of stage 2).
        on_reject: ``"weights_and_optimizer"``, ``"skip"`` or ``"weights"`` (see the module docstring).
        adapt_beta1: AdamW's first-moment decay during stage 2 (``0``: no momentum, see the module
            docstring); stages 1 and 3 use AdamW's default 0.9.
        domain_sampling: ``"uniform"`` or ``"proportional"``.
        norm_train: train mode (batch-norm statistics) during the optimiser steps; validation
            always runs in eval mode.
        seed: seed of the generator when ``fit`` gets none.

    Raises:
        InvalidInputError: for an invalid or unknown option.
    """

    name: ClassVar[str] = "adl"
    needs: ClassVar[frozenset[str]] = frozenset({"target_pairs", "source_pairs"})
    per_image: ClassVar[bool] = False
    smoke_config: ClassVar[dict[str, Any]] = {
        "pretrain_steps": 2, "steps": 3, "finetune_steps": 2, "batch_size": 2, "patch_size": 16, "lr": 1e-3,
    }

    def __init__(
        self,
        *,
        role: str = "all",
        pretrain_steps: int = 200,
        steps: int = 1000,
        finetune_steps: int = 200,
        lr: float = 1e-4,
        finetune_lr: float | None = None,
        weight_decay: float = 0.01,
        batch_size: int = 8,
        target_batch: int | None = None,
        patch_size: int = 64,
        loss: str | Mapping[str, Any] = "l1",
        val_patch: int | None = None,
        val_start: float = 0.2,
        val_end: float = 0.5,
        val_growth: str = "linear",
        validation: str = "auto",
        diverse_below: int = 10,
        queue_size: int = 8,
        queue_pop: str = "smallest",
        criterion: str = "queue_mean",
        score: str = "psnr",
        on_reject: str = "weights_and_optimizer",
        adapt_beta1: float = 0.0,
        domain_sampling: str = "uniform",
        norm_train: bool = False,
        seed: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if not isinstance(role, str) or not role:
            raise InvalidInputError(f"adl: role must be a parameter role name, got {role!r}")
        self.role = role
        self.pretrain_steps = _check_int("pretrain_steps", pretrain_steps, 0)
        self.steps = _check_int("steps", steps, 0)
        self.finetune_steps = _check_int("finetune_steps", finetune_steps, 0)
        if self.pretrain_steps + self.steps + self.finetune_steps == 0:
            raise InvalidInputError("adl: pretrain_steps, steps and finetune_steps are all 0; nothing to do")
        self.lr = _check_positive("lr", lr)
        self.finetune_lr = None if finetune_lr is None else _check_positive("finetune_lr", finetune_lr)
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
            raise InvalidInputError(f"adl: weight_decay must be a number >= 0, got {weight_decay!r}")
        self.weight_decay = float(weight_decay)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.target_batch = None if target_batch is None else _check_int("target_batch", target_batch, 0)
        self.patch_size = _check_int("patch_size", patch_size, 1)
        self.loss = loss if isinstance(loss, str) else dict(loss)
        self.val_patch = None if val_patch is None else _check_int("val_patch", val_patch, 1)
        self.val_start = _check_fraction("val_start", val_start)
        self.val_end = _check_fraction("val_end", val_end)
        self.val_growth = _check_choice("val_growth", val_growth, GROWTH_LAWS)
        self.validation = _check_choice("validation", validation, VALIDATION_CHOICES)
        self.diverse_below = _check_int("diverse_below", diverse_below, 0)
        self.queue_size = _check_int("queue_size", queue_size, 1)
        self.queue_pop = _check_choice("queue_pop", queue_pop, POP_RULES)
        self.criterion = _check_choice("criterion", criterion, CRITERIA)
        self.score = _check_choice("score", score, SCORES)
        self.on_reject = _check_choice("on_reject", on_reject, ON_REJECT)
        if isinstance(adapt_beta1, bool) or not isinstance(adapt_beta1, (int, float)) or not 0.0 <= adapt_beta1 < 1.0:
            raise InvalidInputError(f"adl: adapt_beta1 must be in [0, 1), got {adapt_beta1!r}")
        self.adapt_beta1 = float(adapt_beta1)
        self.domain_sampling = _check_choice("domain_sampling", domain_sampling, DOMAIN_SAMPLING)
        self.norm_train = bool(norm_train)
        self.seed = _check_int("seed", seed, 0)
        self._loss_fn = build_pixel_loss(self.loss, owner="adl")

    @property
    def trainable(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.role,)

    def config(self) -> dict[str, Any]:
        return {
            "role": self.role, "pretrain_steps": self.pretrain_steps, "steps": self.steps,
            "finetune_steps": self.finetune_steps, "lr": self.lr, "finetune_lr": self.finetune_lr,
            "weight_decay": self.weight_decay, "batch_size": self.batch_size, "target_batch": self.target_batch,
            "patch_size": self.patch_size, "loss": self.loss, "val_patch": self.val_patch,
            "val_start": self.val_start, "val_end": self.val_end, "val_growth": self.val_growth,
            "validation": self.validation, "diverse_below": self.diverse_below, "queue_size": self.queue_size,
            "queue_pop": self.queue_pop, "criterion": self.criterion, "score": self.score, "on_reject": self.on_reject,
            "adapt_beta1": self.adapt_beta1,
            "domain_sampling": self.domain_sampling, "norm_train": self.norm_train, "seed": self.seed,
        }

    def wrap(self, backbone: Denoiser) -> AdaptedDenoiser:
        if isinstance(backbone, Denoiser) and not getattr(backbone, "trainable", True):
            raise InvalidInputError(
                f"adapter 'adl' trains the backbone, but {backbone.name or type(backbone).__name__!r} is a "
                "parameter-free denoiser (trainable=False); use a network backbone"
            )
        return super().wrap(backbone)

    # -- helpers ----------------------------------------------------------------------------------

    def _validation_mode(self, pairs: list[Sample]) -> str:
        isos = [s.cond.get("iso") if s.cond else None for s in pairs]
        have_iso = all(isinstance(v, (int, float, torch.Tensor)) and not isinstance(v, bool) for v in isos)
        if self.validation == "diverse_iso":
            if not have_iso:
                missing = [s.key for s, v in zip(pairs, isos) if v is None or isinstance(v, bool)]
                raise InvalidInputError(
                    f"adl: validation='diverse_iso' needs cond['iso'] on every target pair; missing on {missing[:5]}"
                )
            return "diverse_iso"
        if self.validation == "auto" and have_iso and len(pairs) < self.diverse_below:
            return "diverse_iso"
        return "random"

    def _step(
        self,
        backbone: Denoiser,
        optimizer: torch.optim.Optimizer,
        crops: Sequence[Crop],
        device: torch.device,
    ) -> float:
        noisy, clean, cond = stack(crops, backbone.conditions)
        backbone.train(self.norm_train)
        optimizer.zero_grad(set_to_none=True)
        value = self._loss_fn(backbone(noisy.to(device), cond), clean.to(device))
        value.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(value.detach())

    def _psnrs(self, backbone: Denoiser, crops: Sequence[Crop], device: torch.device) -> torch.Tensor:
        """Per-crop PSNR (dB, capped at ``PSNR_CAP``, float64, input order); NaN where the output is not finite."""
        backbone.eval()
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, crop in enumerate(crops):
            groups.setdefault(tuple(crop[0].shape), []).append(index)
        scores = torch.full((len(crops),), float("nan"), dtype=torch.float64)
        with torch.no_grad():
            for members in groups.values():
                noisy, clean, cond = stack([crops[i] for i in members], backbone.conditions)
                output = backbone(noisy.to(device), cond)
                finite = torch.isfinite(output).flatten(1).all(dim=1).cpu()
                values = psnr(output.nan_to_num().clamp(0, 1), clean.to(device), 1.0, reduction="none")
                values = values.cpu().clamp(max=PSNR_CAP).where(finite, torch.tensor(float("nan"), dtype=torch.float64))
                scores[members] = values
        return scores

    def _optimizer(self, params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        return torch.optim.AdamW(params, lr=lr, weight_decay=self.weight_decay)

    # -- fit --------------------------------------------------------------------------------------

    def fit(
        self,
        model: AdaptedDenoiser,
        *,
        target: Iterable[Sample] | None = None,
        source: Mapping[str, Iterable[Sample]] | Iterable[Iterable[Sample]] | None = None,
        noise_model: NoiseModel | None = None,
        generator: torch.Generator | None = None,
        progress: Callable[[int, int, Mapping[str, float]], None] | None = None,
    ) -> FitReport:
        """Run the three stages on ``model.backbone`` in place (see the module docstring).

        Args:
            model: the wrapped backbone returned by ``wrap``.
            target: the small target set: ``Sample`` pairs (``noisy`` and ``clean``, ``1×C×H×W``
                in ``[0, 1]``), with ``cond`` (``sensor``, ``iso``) when the backbone reads it.
            source: ``{name: pairs}`` or a list of pair lists (named ``source0``, ...).
            noise_model: unused.
            generator: every random draw (domains, crops, validation splits) comes from it.
            progress: ``progress(step, total, metrics)`` after every optimiser step.

        Returns:
            A ``FitReport``; ``extra`` holds per-domain ``accepted`` / ``rejected`` counts, the
            validation mode, sizes and the queue (see the module docstring).

        Raises:
            InvalidInputError: an empty target, a target or source pair without a matching
                clean image, an empty source domain, a backbone without parameters in ``role``.
        """
        self.check_needs(target_pairs=target, source_pairs=source)
        assert target is not None and source is not None
        backbone = model.backbone
        pairs = check_pairs(target, owner="adl")
        domains = named_domains(source, owner="adl")
        names = list(domains)
        params = backbone.parameters_for(self.role)
        if not params:
            raise InvalidInputError(
                f"adl: {backbone.name or type(backbone).__name__} has no parameters in role {self.role!r} "
                f"(roles: {sorted(backbone.parameter_groups())})"
            )
        patch = training_patch(backbone, [*pairs, *(s for samples in domains.values() for s in samples)],
                               self.patch_size, owner="adl")
        val_crops = [center_crop(s, self.val_patch, backbone.size_multiple) for s in pairs]
        mode = self._validation_mode(pairs)
        isos = [float(s.cond["iso"]) for s in pairs] if mode == "diverse_iso" else []
        generator = generator or torch.Generator().manual_seed(self.seed)
        device = params[0].device
        n = len(pairs)

        def choose(k: int) -> list[int]:
            return diverse_iso_subset(isos, k, generator) if mode == "diverse_iso" else random_subset(n, k, generator)

        def size_at(t: int) -> int:
            return validation_size(t, self.steps, n, start=self.val_start, end=self.val_end, growth=self.val_growth)

        sizes = torch.tensor([len(domains[name]) for name in names], dtype=torch.float64)
        weights = sizes if self.domain_sampling == "proportional" else torch.ones_like(sizes)
        counts = {name: {"accepted": 0, "rejected": 0, "pairs": len(domains[name])} for name in names}
        total = self.pretrain_steps + self.steps + self.finetune_steps
        report = FitReport()
        queue = ScoreQueue(self.queue_size, self.queue_pop)
        seed_psnr = float("nan")
        seed_score = float("nan")
        val_sizes: list[int] = []

        def record(metrics: dict[str, float]) -> None:
            report.steps += 1
            metrics = {"step": float(report.steps), **metrics}
            report.history.append(metrics)
            if progress is not None:
                progress(report.steps, total, metrics)

        trainable_ids = {id(p) for p in params}
        flags = [(p, p.requires_grad) for p in backbone.parameters()]
        modes = [(m, m.training) for m in backbone.modules()]
        for param in backbone.parameters():
            param.requires_grad_(id(param) in trainable_ids)
        try:
            # One AdamW for the whole fit (the paper describes one training run): a fresh optimiser
            # at stage 2 would make every step after a (fully restored) rejection an Adam *first*
            # step, a sign-of-gradient jolt of size lr on every weight that the criterion rejects
            # again, and so on.
            optimizer = self._optimizer(params, self.lr)
            # Stage 1: target pre-training.
            for _ in range(self.pretrain_steps):
                picks = torch.randint(n, (self.batch_size,), generator=generator).tolist()
                loss = self._step(backbone, optimizer, random_crops(pairs, picks, patch, generator), device)
                record({"stage": 1.0, "loss": loss})

            # Stage 2: adaptive source learning.
            if self.steps:
                betas = [group["betas"] for group in optimizer.param_groups]
                for group in optimizer.param_groups:
                    group["betas"] = (self.adapt_beta1, group["betas"][1])
                reference = torch.zeros(n, dtype=torch.float64)
                if self.score == "gain":
                    reference = self._psnrs(backbone, val_crops, device)

                def evaluate(indices: list[int]) -> tuple[float, float]:
                    """(mean PSNR, criterion score) on the validation pairs ``indices``; NaN if not finite."""
                    values = self._psnrs(backbone, [val_crops[i] for i in indices], device)
                    return float(values.mean()), float((values - reference[indices]).mean())

                seed_psnr, seed_score = evaluate(choose(size_at(0)))
                if seed_score == seed_score:  # a NaN seed (diverged model) leaves the queue empty: -inf threshold
                    queue.push(seed_score)
                for t in range(self.steps):
                    domain = int(torch.multinomial(weights, 1, generator=generator))
                    name = names[domain]
                    k = size_at(t)
                    val_sizes.append(k)
                    chosen = choose(k)
                    held_out = set(chosen)
                    train_part = [i for i in range(n) if i not in held_out]
                    if self.target_batch is None:
                        target_picks = train_part
                    elif train_part and self.target_batch:
                        draws = torch.randint(len(train_part), (self.target_batch,), generator=generator).tolist()
                        target_picks = [train_part[j] for j in draws]
                    else:
                        target_picks = []
                    samples = domains[name]
                    source_picks = torch.randint(len(samples), (self.batch_size,), generator=generator).tolist()
                    crops = random_crops(pairs, target_picks, patch, generator) + random_crops(
                        samples, source_picks, patch, generator
                    )
                    before = evaluate(chosen)[1] if self.criterion == "previous" else None
                    snapshot = None
                    if self.criterion != "none":
                        snapshot = _Snapshot(backbone, None if self.on_reject == "weights" else optimizer)
                    loss = self._step(backbone, optimizer, crops, device)
                    value, score = evaluate(chosen)
                    if self.criterion == "queue_mean":
                        threshold = queue.mean()
                    elif self.criterion == "previous":
                        threshold = float(before)  # type: ignore[arg-type]
                    else:
                        threshold = float("-inf")
                    accepted = score == score and score > threshold
                    if accepted:
                        if self.criterion == "queue_mean":
                            queue.push(score)
                        counts[name]["accepted"] += 1
                    else:
                        assert snapshot is not None
                        snapshot.restore(backbone, optimizer, skip=self.on_reject == "skip")
                        counts[name]["rejected"] += 1
                    metrics = {
                        "stage": 2.0, "loss": loss, "psnr": value, "score": score, "threshold": threshold,
                        "accepted": float(accepted), "domain": float(domain), "val_size": float(k),
                    }
                    for other in names:
                        metrics[f"accepted/{other}"] = float(counts[other]["accepted"])
                        metrics[f"rejected/{other}"] = float(counts[other]["rejected"])
                    record(metrics)
                for group, pair in zip(optimizer.param_groups, betas):
                    group["betas"] = pair

            # Stage 3: target fine-tuning.
            if self.finetune_steps:
                for group in optimizer.param_groups:
                    group["lr"] = self.finetune_lr or self.lr
                for _ in range(self.finetune_steps):
                    picks = torch.randint(n, (self.batch_size,), generator=generator).tolist()
                    loss = self._step(backbone, optimizer, random_crops(pairs, picks, patch, generator), device)
                    record({"stage": 3.0, "loss": loss})
        finally:
            for param, flag in flags:
                param.requires_grad_(flag)
                param.grad = None
            for module, training in modes:
                module.training = training

        accepted_total = sum(c["accepted"] for c in counts.values())
        rejected_total = sum(c["rejected"] for c in counts.values())
        report.changed = sorted(self.delta(model))
        report.extra = {
            "domains": counts,
            "accepted": accepted_total,
            "rejected": rejected_total,
            "stages": {"pretrain": self.pretrain_steps, "adapt": self.steps, "finetune": self.finetune_steps},
            "criterion": self.criterion,
            "validation": mode,
            "val_size": {"first": val_sizes[0], "last": val_sizes[-1]} if val_sizes else None,
            "score": self.score,
            "seed_psnr": seed_psnr if self.steps else None,
            "queue": queue.values,
        }
        return report
