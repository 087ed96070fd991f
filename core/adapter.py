"""The ``Adapter`` interface: turns a pretrained Denoiser into one that fits a target noise domain.

Two families share the interface:

* **data-driven** adapters (fine-tuning, AIN transfer, ADL) run ``fit`` once on target (and
  source) pairs, then denoise with the adapted weights. They can save only what they changed
  as a small "domain head" (``delta()``) that loads on top of the base weights.
* **test-time** adapters (RFR, LAN and LAN's baselines) adapt on each image inside ``forward``
  and are *episodic*: the backbone is bit-identical before and after every call.
  ``TestTimeAdapter`` implements that contract once, in the structure of the best
  test-time-adaptation code: configure what trains, collect the parameters, set up the
  optimiser, take adaptation steps, predict, reset.

An adapter object holds hyper-parameters only; ``wrap(backbone)`` binds it to a backbone and
returns an ``AdaptedDenoiser``, itself a ``Denoiser``, so tiling, self-ensembles, benchmarks and
other adapters treat it like any backbone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from .denoiser import Denoiser
from .errors import InvalidInputError
from .noise_model import NoiseModel
from .types import Conditions, Sample

ADAPTER_NEEDS: frozenset[str] = frozenset({"target_pairs", "source_pairs", "noise_model"})
"""What an adapter may need besides the backbone."""

ProgressCallback = Callable[[int, int, Mapping[str, float]], None]
"""``progress(step, total, metrics)``: called after every adaptation / fitting step."""


@dataclass
class FitReport:
    """What ``Adapter.fit`` did.

    Attributes:
        steps: optimisation steps taken.
        history: one dict of metrics (``loss``, optionally ``psnr``) per step.
        changed: names of the backbone parameters that were updated.
        extra: adapter-specific statistics (e.g. ADL's accepted/rejected batches per domain).
    """

    steps: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def check_pairs(samples: Iterable[Sample], *, owner: str, what: str = "target") -> list[Sample]:
    """The samples as a list, validated as supervised (noisy, clean) pairs.

    Args:
        samples: the pairs.
        owner: the adapter's name, for error messages.
        what: which set they are (``"target"``, ``"source 'Sony'"``), for error messages.

    Raises:
        InvalidInputError: an empty set, a sample without a clean image or with a clean image of
            another shape than its noisy one.
    """
    pairs = list(samples)
    if not pairs:
        raise InvalidInputError(f"{owner}: the {what} set is empty; it needs (noisy, clean) pairs")
    for sample in pairs:
        if sample.clean is None:
            raise InvalidInputError(
                f"{owner}: {what} sample {sample.key!r} has no clean image; it needs (noisy, clean) pairs"
            )
        if sample.clean.shape != sample.noisy.shape:
            raise InvalidInputError(
                f"{owner}: {what} sample {sample.key!r} has noisy {tuple(sample.noisy.shape)} "
                f"but clean {tuple(sample.clean.shape)}"
            )
    return pairs


def named_domains(
    source: Mapping[str, Iterable[Sample]] | Iterable[Iterable[Sample]], *, owner: str = "adapter"
) -> dict[str, list[Sample]]:
    """Source domains as ``{name: [pairs]}``, each validated by ``check_pairs``.

    Args:
        source: ``{name: samples}`` (names kept) or a sequence of sample iterables (named
            ``source0``, ``source1``, ...).
        owner: the name used in error messages.

    Raises:
        InvalidInputError: no domains, an empty domain, a sample without a clean image or with a
            clean image of another shape.
    """
    if isinstance(source, Mapping):
        items = [(str(name), samples) for name, samples in source.items()]
    else:
        items = [(f"source{index}", samples) for index, samples in enumerate(source)]
    if not items:
        raise InvalidInputError(f"{owner}: no source domains given")
    return {name: check_pairs(samples, owner=owner, what=f"source {name!r}") for name, samples in items}


class Adapter:
    """Base class of every adapter.

    Class attributes (the adapter's capabilities, declared as data):
        name: registry name, lowercase snake_case (``"finetune"``).
        needs: subset of ``{"target_pairs", "source_pairs", "noise_model"}``.
        per_image: ``True`` for test-time adapters that adapt inside ``forward``.
        trainable: the parameter roles it updates (``("all",)``, ``("domain",)``; ``()`` when it
            updates no backbone weights, e.g. LAN's input offset).
    """

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    per_image: ClassVar[bool] = False
    trainable: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any) -> None:
        if options:
            raise InvalidInputError(
                f"adapter {self.name!r} got unknown options {sorted(options)}"
            )

    def config(self) -> dict[str, Any]:
        """The adapter's hyper-parameters (JSON-serialisable), saved with domain heads."""
        return {}

    def wrap(self, backbone: Denoiser) -> AdaptedDenoiser:
        """Bind this adapter to ``backbone``; the result is a ``Denoiser``."""
        if not isinstance(backbone, Denoiser):
            raise InvalidInputError(
                f"adapter {self.name!r} wraps a Denoiser, got {type(backbone).__name__}"
            )
        for role in self.trainable:
            backbone.parameters_for(role)  # fails early with a clear message
        return AdaptedDenoiser(backbone, self)

    # -- data-driven adapters -------------------------------------------------------------

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
        """Adapt ``model.backbone`` in place from data (no-op for test-time adapters).

        Args:
            model: the wrapped backbone returned by ``wrap``.
            target: target-domain pairs (``Sample`` with ``clean`` set); needed when
                ``"target_pairs" in needs``.
            source: the source domains, ``{name: pairs}`` or one iterable of pairs per domain
                (see ``named_domains``).
            noise_model: a synthetic noise model, when ``"noise_model" in needs``.
            generator: randomness for crops, batches and noise.
            progress: called after every step.
        """
        return FitReport()

    def delta(self, model: AdaptedDenoiser) -> dict[str, torch.Tensor]:
        """The backbone tensors this adapter changes (the "domain head"), by state-dict name."""
        names = set()
        for role in self.trainable:
            ids = {id(p) for p in model.backbone.parameters_for(role)}
            names |= {name for name, p in model.backbone.named_parameters() if id(p) in ids}
        state = model.backbone.state_dict()
        return {name: state[name].detach().clone() for name in sorted(names)}

    # -- test-time adapters ----------------------------------------------------------------

    def adapt_and_denoise(
        self, backbone: Denoiser, noisy: torch.Tensor, cond: Conditions | None
    ) -> torch.Tensor:
        """Denoise one batch, adapting first if this is a test-time adapter."""
        return backbone(noisy, cond)

    def check_needs(self, **provided: Any) -> None:
        """Raise ``InvalidInputError`` naming what this adapter needs and did not get."""
        missing = sorted(need for need in self.needs if provided.get(need) is None)
        if missing:
            raise InvalidInputError(
                f"adapter {self.name!r} needs {', '.join(missing)} (it declares needs="
                f"{sorted(self.needs)})"
            )

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({options})"


class AdaptedDenoiser(Denoiser):
    """A backbone bound to an adapter; behaves as a ``Denoiser`` (name ``"<adapter>(<backbone>)"``)."""

    def __init__(self, backbone: Denoiser, adapter: Adapter) -> None:
        super().__init__()
        self.backbone = backbone
        self.adapter = adapter
        self.in_channels = backbone.in_channels
        self.out_channels = backbone.out_channels
        self.size_multiple = backbone.size_multiple

    @property
    def conditions(self) -> frozenset[str]:  # type: ignore[override]
        return self.backbone.conditions

    @property
    def display_name(self) -> str:
        return f"{self.adapter.name}({self.backbone.name})"

    def forward(self, noisy: torch.Tensor, cond: Conditions | None = None) -> torch.Tensor:
        return self.adapter.adapt_and_denoise(self.backbone, noisy, cond)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return self.backbone.parameter_groups()


class TestTimeAdapter(Adapter):
    """Base of episodic, per-image adapters (the ``TTAMethod`` structure).

    Subclasses implement ``configure`` (which tensors train, including extra ones such as LAN's
    input offset), ``loss`` (one self-supervised objective evaluation), and may override
    ``setup_optimizer`` and ``predict``. ``adapt_and_denoise`` runs ``steps`` iterations, then
    restores the backbone's parameters, buffers, ``requires_grad`` flags and train/eval mode,
    whatever happened (exceptions included), so no state leaks from one image to the next.

    Attributes:
        steps: adaptation iterations per image.
        lr: learning rate of the default Adam optimiser.
        progress: optional callback ``progress(step, steps, metrics)``; set by the CLI.
        trace: when not ``None``, a list that receives one metrics dict per step:
            ``{"step": k, "loss": …}`` for ``k = 1 … steps`` (``loss`` is the objective
            evaluated for update ``k``, i.e. after ``k − 1`` updates), plus ``"psnr"`` when a
            ``reference`` matches the input (see below).
        reference: optional ground truth (``N×C×H×W`` in ``[0, 1]``) of the image being adapted,
            set per image by whoever records a trace (the benchmark runner with
            ``trace=True``). When it matches the input (same size, or the input is padded at the
            bottom/right by less than the backbone's ``size_multiple``, as
            ``noiseshift.inference`` pads), every trace entry also gets ``"psnr"``: the PSNR in
            dB (data range 1, the output clipped to ``[0, 1]``, float, no border crop) of
            ``predict`` after ``k`` updates, and the trace starts with ``{"step": 0, "psnr": …}``
            for the unadapted model. Costs one extra forward pass per step. Only set it when
            this adapter sees the whole, untransformed image (no self-ensemble); tiles of
            another size get no PSNR.
        current_step: the 1-based index of the update being computed, readable from ``loss``
            (e.g. for a regulariser ramped over the iterations); ``0`` outside the loop.
    """

    __test__ = False  # keep pytest from collecting this class by its name
    per_image: ClassVar[bool] = True

    def __init__(self, *, steps: int = 20, lr: float = 5e-4, seed: int = 0, **options: Any) -> None:
        super().__init__(**options)
        if steps < 0:
            raise InvalidInputError(f"adapter {self.name!r}: steps must be >= 0, got {steps}")
        if lr <= 0:
            raise InvalidInputError(f"adapter {self.name!r}: lr must be > 0, got {lr}")
        self.steps = int(steps)
        self.lr = float(lr)
        self.seed = int(seed)
        self.progress: ProgressCallback | None = None
        self.trace: list[dict[str, float]] | None = None
        self.reference: torch.Tensor | None = None
        self.current_step = 0

    def config(self) -> dict[str, Any]:
        return {"steps": self.steps, "lr": self.lr, "seed": self.seed}

    def configure(
        self, backbone: Denoiser, noisy: torch.Tensor, cond: Conditions | None
    ) -> list[torch.Tensor]:
        """Set ``requires_grad`` on what trains and return those tensors (leaf tensors)."""
        raise NotImplementedError

    def setup_optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=self.lr)

    def loss(
        self,
        backbone: Denoiser,
        noisy: torch.Tensor,
        cond: Conditions | None,
        params: list[torch.Tensor],
        generator: torch.Generator,
    ) -> torch.Tensor:
        """One evaluation of the self-supervised objective (a scalar with a graph)."""
        raise NotImplementedError

    def predict(
        self,
        backbone: Denoiser,
        noisy: torch.Tensor,
        cond: Conditions | None,
        params: list[torch.Tensor],
    ) -> torch.Tensor:
        """The output after adaptation."""
        return backbone(noisy, cond)

    def adapt_and_denoise(
        self, backbone: Denoiser, noisy: torch.Tensor, cond: Conditions | None
    ) -> torch.Tensor:
        generator = torch.Generator(device=noisy.device).manual_seed(self.seed)
        reference = self._matching_reference(backbone, noisy)
        with episode(backbone):
            for param in backbone.parameters():
                param.requires_grad_(False)
            try:
                with torch.enable_grad():
                    params = self.configure(backbone, noisy, cond)
                    optimizer = self.setup_optimizer(params) if params and self.steps else None
                    if reference is not None and self.trace is not None:
                        self.trace.append({"step": 0, "psnr": self._psnr(backbone, noisy, cond, params, reference)})
                    for step in range(1, self.steps + 1):
                        assert optimizer is not None
                        self.current_step = step
                        optimizer.zero_grad(set_to_none=True)
                        value = self.loss(backbone, noisy, cond, params, generator)
                        value.backward()
                        optimizer.step()
                        metrics = {"step": step, "loss": float(value.detach())}
                        if reference is not None:
                            metrics["psnr"] = self._psnr(backbone, noisy, cond, params, reference)
                        if self.trace is not None:
                            self.trace.append(metrics)
                        if self.progress is not None:
                            self.progress(step, self.steps, metrics)
            finally:
                self.current_step = 0
            with torch.no_grad():
                return self.predict(backbone, noisy, cond, params).detach()

    def _matching_reference(self, backbone: Denoiser, noisy: torch.Tensor) -> torch.Tensor | None:
        """``reference`` on ``noisy``'s device when it is the ground truth of this input, else ``None``."""
        reference = self.reference
        if not isinstance(reference, torch.Tensor) or reference.dim() != 4 or noisy.dim() != 4:
            return None
        if reference.shape[0] not in (1, noisy.shape[0]) or reference.shape[1] != backbone.out_channels:
            return None
        multiple = max(int(getattr(backbone, "size_multiple", 1)), 1)
        for have, want in zip(noisy.shape[-2:], reference.shape[-2:]):
            if not 0 <= have - want < multiple:
                return None
        return reference.to(device=noisy.device, dtype=torch.float32)

    def _psnr(
        self,
        backbone: Denoiser,
        noisy: torch.Tensor,
        cond: Conditions | None,
        params: list[torch.Tensor],
        reference: torch.Tensor,
    ) -> float:
        """PSNR (dB, data range 1, output clipped, batch mean) of the current ``predict``."""
        from .metrics import psnr

        with torch.no_grad():
            output = self.predict(backbone, noisy, cond, params)
        height, width = reference.shape[-2:]
        output = output[..., :height, :width].to(torch.float32)
        if not torch.isfinite(output).all():
            return float("nan")
        return float(psnr(output.clamp(0, 1), reference.expand_as(output), data_range=1.0))


class episode:
    """Context manager that snapshots a module and restores it exactly on exit.

    Restores parameter values, buffers, ``requires_grad`` flags and train/eval mode. Used by
    test-time adapters so that adapting on one image can never change the next one.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __enter__(self) -> nn.Module:
        self._state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        self._flags = [p.requires_grad for p in self.module.parameters()]
        self._modes = [m.training for m in self.module.modules()]
        return self.module

    def __exit__(self, *exc_info: object) -> None:
        with torch.no_grad():
            self.module.load_state_dict(self._state, strict=True)
        for param, flag in zip(self.module.parameters(), self._flags):
            param.requires_grad_(flag)
            param.grad = None
        for submodule, mode in zip(self.module.modules(), self._modes):
            submodule.training = mode
