"""AIN transfer learning as an adapter: fine-tune only a backbone's ``domain`` role on target pairs.

AINDNet's transfer stage (Kim et al., CVPR 2020, §3.2): a denoiser trained on synthetic noise is
adapted to real noise with a few real (noisy, clean) pairs by updating only the parameters that
carry the noise domain — every AIN module, the noise-level estimator and the last convolution —
with an L1 loss; the rest (convolutions of the residual blocks, heads, skips, up-sampling) stays
frozen. The paper's "+RT" baseline re-trains everything (core ``finetune`` with ``role=all``).

Here the recipe is backbone-agnostic: ``ain_transfer`` trains exactly the backbone's ``domain``
parameter role, which every trainable noiseshift backbone defines (see
``Denoiser.parameter_groups``): on ``aindnet`` the paper's set; on ``dncnn`` the batch-norm
affines and the output convolution; on ``unet`` the normalisation affines and the output
convolution (with ``norm="none"``: the last decoder block and the output convolution); on
``restormer`` the layer norms, the attention temperatures and the output convolution; on
``modulation_unet`` the sensor/ISO modulation MLPs and the output convolution. What changed is
saved as a small domain head (``Adapter.delta``): for the paper's AINDNet 5.19 M of 13.76 M
parameters (37.7 %), so a new camera costs a head, not a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import torch

from noiseshift.api import AdaptedDenoiser, Denoiser, FineTune, FitReport, InvalidInputError, NoiseModel, Sample

__all__ = ["AINTransfer"]


class AINTransfer(FineTune):
    """AIN transfer learning: supervised fine-tuning of the backbone's ``domain`` role with L1.

    The loop is the core ``finetune`` adapter's (random aligned crops with a random dihedral
    transform, Adam, the backbone's conditions passed through) with the role fixed to
    ``domain``; ``fit`` fails early with a clear message when a backbone has no such role, an
    empty one, or no parameters at all.

    Paper settings: Adam, L1, 256×256 patches (the defaults here). The paper gives no learning
    rate, batch size or iteration count; ``lr=1e-4``, ``batch_size=8`` and ``steps=500`` are
    this implementation's choices (tools/studies/ain_transfer.py uses 100 steps of 4 crops of
    64 pixels with ``lr=3e-4`` at CPU scale).

    Args:
        steps: optimisation steps.
        lr: Adam learning rate.
        batch_size: crops per step.
        patch_size: crop side (smaller target images are cropped to their smallest side,
            rounded down to the backbone's size multiple).
        loss: a ``LOSSES`` name or config (``l1`` as in the paper's Eq. 7).
        weight_decay: Adam weight decay.
        norm_train: put the backbone in train mode while fitting (batch-norm statistics; off).
        seed: seed of the crop generator when ``fit`` gets none.

    ``FitReport.extra`` holds the number of trained and total parameters, their ratio, the
    number of head tensors, and the first and last losses.
    """

    name: ClassVar[str] = "ain_transfer"
    needs: ClassVar[frozenset[str]] = frozenset({"target_pairs"})
    per_image: ClassVar[bool] = False
    trainable: ClassVar[tuple[str, ...]] = ("domain",)  # type: ignore[assignment]
    smoke_config: ClassVar[dict[str, Any]] = {"steps": 2, "batch_size": 2, "patch_size": 16}

    def __init__(
        self,
        *,
        steps: int = 500,
        lr: float = 1e-4,
        batch_size: int = 8,
        patch_size: int = 256,
        loss: str = "l1",
        weight_decay: float = 0.0,
        norm_train: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(
            role="domain", steps=steps, lr=lr, batch_size=batch_size, patch_size=patch_size, loss=loss,
            weight_decay=weight_decay, norm_train=norm_train, seed=seed,
        )

    def config(self) -> dict[str, Any]:
        config = super().config()
        config.pop("role")
        return config

    def wrap(self, backbone: Denoiser) -> AdaptedDenoiser:
        """Bind to ``backbone`` after checking it has a non-empty ``domain`` role."""
        self.domain_parameters(backbone)
        return super().wrap(backbone)

    def domain_parameters(self, backbone: Denoiser) -> list[torch.nn.Parameter]:
        """The parameters ``fit`` trains, with a clear error when there are none.

        Raises:
            InvalidInputError: ``backbone`` is not a Denoiser, is parameter-free, has no
                ``domain`` role, or an empty one.
        """
        if not isinstance(backbone, Denoiser):
            raise InvalidInputError(f"ain_transfer wraps a Denoiser, got {type(backbone).__name__}")
        label = backbone.name or type(backbone).__name__
        if not getattr(backbone, "trainable", True) or not any(True for _ in backbone.parameters()):
            raise InvalidInputError(
                f"ain_transfer: {label} is parameter-free (trainable=False): there are no domain "
                f"parameters to fine-tune"
            )
        groups = backbone.parameter_groups()
        if "domain" not in groups:
            raise InvalidInputError(
                f"ain_transfer: {label} defines no 'domain' parameter role (roles: {sorted(groups)}); "
                f"ain_transfer fine-tunes exactly that role — add it to {type(backbone).__name__}."
                f"parameter_groups() (normalisation/modulation affines, noise estimator, output layer), "
                f"or use finetune with -O role=..."
            )
        if not groups["domain"]:
            raise InvalidInputError(
                f"ain_transfer: {label}'s 'domain' parameter role is empty; nothing to fine-tune"
            )
        return groups["domain"]

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
        """Fine-tune ``model.backbone``'s ``domain`` role on ``target`` pairs in place.

        Args:
            model: the wrapped backbone from ``wrap``.
            target: target-domain ``Sample`` pairs (``clean`` set, ``1×C×H×W``).
            source: ignored (the source domain lives in the pretrained weights).
            noise_model: ignored.
            generator: randomness of the crops (default: seeded by ``seed``).
            progress: ``progress(step, steps, {"loss": ...})`` after every step.

        Returns:
            The ``FitReport`` (history of losses, changed tensor names, ``extra`` statistics).
        """
        params = self.domain_parameters(model.backbone)
        report = super().fit(
            model, target=target, source=source, noise_model=noise_model, generator=generator, progress=progress
        )
        trained = sum(p.numel() for p in params)
        total = sum(p.numel() for p in model.backbone.parameters())
        losses = [entry["loss"] for entry in report.history]
        report.extra.update(
            role="domain",
            trained_parameters=trained,
            total_parameters=total,
            trained_fraction=trained / total if total else 0.0,
            head_tensors=len(report.changed),
            first_loss=losses[0] if losses else None,
            last_loss=losses[-1] if losses else None,
        )
        return report
