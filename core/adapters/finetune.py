"""The ``finetune`` adapter: supervised fine-tuning of one parameter role on target pairs.

This is the baseline every domain-adaptation paper compares against: AINDNet's "+RT" (role
``all``), ADL's fine-tuning baseline, and the partial variants (``first``, ``last``,
``domain``). After ``fit`` the changed tensors can be saved as a domain head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from ..adapter import AdaptedDenoiser, Adapter, FitReport, ProgressCallback, check_pairs
from ..denoiser import Denoiser
from ..errors import InvalidInputError
from ..noise_model import NoiseModel
from ..types import Conditions, Sample


def build_loss(spec: str | dict[str, Any]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A loss from the ``LOSSES`` registry by name or config (classes are instantiated)."""
    from noiseshift.registry import LOSSES

    config = {"type": spec} if isinstance(spec, str) else dict(spec)
    component = LOSSES.lookup(config["type"])
    if isinstance(component, type):
        return LOSSES.build(config)
    if len(config) > 1:
        raise InvalidInputError(f"loss {config['type']!r} is a function and takes no options")
    return component


def build_pixel_loss(spec: str | dict[str, Any], *, owner: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``build_loss`` for supervised adapters: refuses losses that are not ``loss(output, clean)``.

    Self-supervised losses (``loss(denoise_fn, noisy, ...)``) and noise-estimation losses (which
    need a noise map) cannot train on (noisy, clean) pairs alone.
    """
    from noiseshift.registry import LOSSES

    name = spec if isinstance(spec, str) else dict(spec).get("type")
    if not isinstance(name, str):
        raise InvalidInputError(f"{owner}: loss must be a LOSSES name or config, got {spec!r}")
    component = LOSSES.lookup(name)
    if getattr(component, "self_supervised", False) or getattr(component, "needs_noise_map", False):
        raise InvalidInputError(
            f"{owner}: loss {name!r} is not a pixel loss; training on (noisy, clean) pairs needs a pixel "
            "loss such as 'l1' or 'l2'"
        )
    return build_loss(spec)


def training_patch(backbone: Denoiser, samples: Iterable[Sample], requested: int, *, owner: str) -> int:
    """The crop side to train on: ``requested``, at most the smallest image side, rounded down to
    the backbone's ``size_multiple``.

    Raises:
        InvalidInputError: an image smaller than the backbone's size multiple.
    """
    smallest = min(min(s.noisy.shape[-2:]) for s in samples)
    patch = min(requested, smallest)
    patch -= patch % backbone.size_multiple
    if patch < 1:
        raise InvalidInputError(f"{owner}: the smallest training image ({smallest}px) is smaller than the "
                                f"backbone's size multiple {backbone.size_multiple}")
    return patch


def loss_needs_noise_map(spec: str | dict[str, Any]) -> bool:
    """Whether the loss ``spec`` names is called as ``loss(output, clean, aux=..., sigma=...)``.

    Such losses (AINDNet's noise-estimation objectives) declare the class attribute
    ``needs_noise_map = True``; they also see the true noise std map and the backbone's
    ``aux_outputs``.
    """
    from noiseshift.registry import LOSSES

    name = spec if isinstance(spec, str) else dict(spec)["type"]
    return bool(getattr(LOSSES.lookup(name), "needs_noise_map", False))


def _is_number(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.is_complex() and value.dtype != torch.bool
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def collate_conditions(conds: Sequence[Conditions], keys: Iterable[str] | None = None) -> Conditions | None:
    """Batch per-sample conditions the way conditioned backbones read them.

    Per key (``keys``, default every key any sample has): strings become a list of ``N``
    strings (``cond["sensor"]``); numbers (or one-element tensors) a float32 tensor of shape
    ``(N,)`` (``cond["iso"]``); larger tensors are concatenated along the batch dimension. A value
    missing from some samples is ``None`` at their positions (a list then, also for numbers), so
    a target's sensor/ISO survives being batched with synthetic crops that have none; the
    backbone uses its default there (``modulation_unet``'s fallback slot and default ISO).

    Returns:
        The batched conditions, or ``None`` when no sample has any of the keys.

    Raises:
        InvalidInputError: a key whose values mix types, or maps missing from some samples.
    """
    if keys is None:
        keys = {key for cond in conds for key in cond}
    batch: dict[str, Any] = {}
    for key in sorted(keys):
        values = [c.get(key) for c in conds]
        present = [v for v in values if v is not None]
        if not present:
            continue
        if all(isinstance(v, str) for v in present):
            batch[key] = values
        elif all(_is_number(v) for v in present):
            floats = [None if v is None else float(v) for v in values]
            batch[key] = floats if None in floats else torch.tensor(floats, dtype=torch.float32)
        elif all(isinstance(v, torch.Tensor) for v in values):
            batch[key] = torch.cat([v if v.dim() else v.reshape(1) for v in values])
        else:
            kinds = sorted({type(v).__name__ for v in present})
            raise InvalidInputError(
                f"cannot batch condition {key!r}: value types {kinds}"
                + (" with some samples missing it" if len(present) < len(values) else "")
                + " (per-sample strings and numbers can be batched, and tensors given for every sample)"
            )
    return batch or None


def random_crop(sample: Sample, patch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One aligned random ``patch×patch`` crop of a pair, with one of the 8 dihedral transforms.

    Args:
        sample: a pair with ``noisy`` and ``clean`` of shape ``1×C×H×W`` (H, W ≥ patch).
        patch: crop side.
        generator: every draw (position, rotation, flip) comes from it.

    Returns:
        ``(noisy, clean)`` crops, ``1×C×patch×patch``.
    """
    assert sample.clean is not None
    height, width = sample.noisy.shape[-2:]
    top = int(torch.randint(height - patch + 1, (1,), generator=generator))
    left = int(torch.randint(width - patch + 1, (1,), generator=generator))
    rotations = int(torch.randint(4, (1,), generator=generator))
    flip = bool(torch.randint(2, (1,), generator=generator))
    crops = []
    for image in (sample.noisy, sample.clean):
        crop = torch.rot90(image[..., top : top + patch, left : left + patch], rotations, dims=(-2, -1))
        crops.append(crop.flip(-1) if flip else crop)
    return crops[0], crops[1]


def random_pair_batch(
    pairs: list[Sample],
    batch_size: int,
    patch_size: int,
    generator: torch.Generator,
    *,
    return_cond: bool = False,
) -> Any:
    """Draw ``batch_size`` aligned random crops (``random_crop``) of randomly picked pairs.

    Args:
        pairs: samples with ``noisy`` and ``clean`` of shape ``1×C×H×W`` (H, W ≥ patch_size).
        batch_size: crops per batch.
        patch_size: crop side.
        generator: every draw comes from it.
        return_cond: also return the crops' conditions, batched by ``collate_conditions``.

    Returns:
        ``(noisy, clean)``, each ``batch_size×C×patch_size×patch_size``; with ``return_cond``
        ``(noisy, clean, cond)`` where ``cond`` may be ``None``.
    """
    picks = torch.randint(len(pairs), (batch_size,), generator=generator).tolist()
    crops = [random_crop(pairs[index], patch_size, generator) for index in picks]
    noisy, clean = torch.cat([c[0] for c in crops]), torch.cat([c[1] for c in crops])
    if return_cond:
        return noisy, clean, collate_conditions([pairs[index].cond or {} for index in picks])
    return noisy, clean


def backbone_conditions(backbone: Denoiser, cond: Conditions | None) -> Conditions | None:
    """Keep only the condition keys ``backbone`` declares (``None`` when none remain)."""
    if not cond:
        return None
    kept = {key: value for key, value in cond.items() if key in backbone.conditions}
    return kept or None


class FineTune(Adapter):
    """Fine-tune the backbone's parameters of one role on target (noisy, clean) pairs.

    Args:
        role: ``all``, ``first``, ``last`` or ``domain`` (or any extra role the backbone has).
        steps: optimisation steps.
        lr: Adam learning rate.
        batch_size: crops per step.
        patch_size: crop side in pixels (images smaller than this are cropped to their
            smallest side, rounded down to the backbone's size multiple).
        loss: a name (or config) from the ``LOSSES`` registry.
        weight_decay: Adam weight decay.
        norm_train: put the backbone in train mode while fitting. Off by default: with a few
            target pairs, batch-norm statistics re-estimated from tiny batches hurt more than the
            shift they would correct.
        seed: seed of the crop/augmentation generator when ``fit`` gets none.
    """

    name: ClassVar[str] = "finetune"
    needs: ClassVar[frozenset[str]] = frozenset({"target_pairs"})
    per_image: ClassVar[bool] = False
    smoke_config: ClassVar[dict[str, Any]] = {"steps": 3, "batch_size": 2, "patch_size": 16}

    def __init__(
        self,
        *,
        role: str = "all",
        steps: int = 200,
        lr: float = 1e-4,
        batch_size: int = 8,
        patch_size: int = 64,
        loss: str = "l1",
        weight_decay: float = 0.0,
        norm_train: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if steps < 1 or batch_size < 1 or patch_size < 1 or lr <= 0:
            raise InvalidInputError(
                f"finetune: steps, batch_size, patch_size must be >= 1 and lr > 0 "
                f"(got steps={steps}, batch_size={batch_size}, patch_size={patch_size}, lr={lr})"
            )
        self.role = role
        self.steps = steps
        self.lr = lr
        self.batch_size = batch_size
        self.patch_size = patch_size
        self.loss = loss
        self.weight_decay = weight_decay
        self.norm_train = norm_train
        self.seed = seed

    @property
    def trainable(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.role,)

    def config(self) -> dict[str, Any]:
        return {
            "role": self.role, "steps": self.steps, "lr": self.lr, "batch_size": self.batch_size,
            "patch_size": self.patch_size, "loss": self.loss, "weight_decay": self.weight_decay,
            "norm_train": self.norm_train, "seed": self.seed,
        }

    def fit(
        self,
        model: AdaptedDenoiser,
        *,
        target: Iterable[Sample] | None = None,
        source: Mapping[str, Iterable[Sample]] | Iterable[Iterable[Sample]] | None = None,
        noise_model: NoiseModel | None = None,
        generator: torch.Generator | None = None,
        progress: ProgressCallback | None = None,
    ) -> FitReport:
        self.check_needs(target_pairs=target)
        assert target is not None
        backbone = model.backbone
        pairs = check_pairs(target, owner=self.name)
        params = backbone.parameters_for(self.role)
        if not params:
            raise InvalidInputError(
                f"finetune: {backbone.name or type(backbone).__name__} has no parameters in role "
                f"{self.role!r} (roles: {sorted(backbone.parameter_groups())})"
            )
        patch = training_patch(backbone, pairs, self.patch_size, owner=self.name)
        device = params[0].device
        generator = generator or torch.Generator().manual_seed(self.seed)
        loss_fn = build_pixel_loss(self.loss, owner=self.name)
        trainable_ids = {id(p) for p in params}
        flags = [(p, p.requires_grad) for p in backbone.parameters()]
        for param in backbone.parameters():
            param.requires_grad_(id(param) in trainable_ids)
        optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        backbone.train(self.norm_train)
        report = FitReport()
        try:
            for step in range(1, self.steps + 1):
                noisy, clean, cond = random_pair_batch(pairs, self.batch_size, patch, generator, return_cond=True)
                noisy, clean = noisy.to(device), clean.to(device)
                cond = backbone_conditions(backbone, cond)
                optimizer.zero_grad(set_to_none=True)
                value = loss_fn(backbone(noisy, cond), clean)
                value.backward()
                optimizer.step()
                metrics = {"loss": float(value.detach())}
                report.history.append(metrics)
                report.steps = step
                if progress is not None:
                    progress(step, self.steps, metrics)
        finally:
            for param, flag in flags:
                param.requires_grad_(flag)
                param.grad = None
            backbone.eval()
        report.changed = sorted(self.delta(model))
        return report


__all__ = [
    "FineTune", "backbone_conditions", "build_loss", "build_pixel_loss", "collate_conditions", "loss_needs_noise_map",
    "random_crop", "random_pair_batch", "training_patch",
]
