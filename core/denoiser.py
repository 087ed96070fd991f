"""The ``Denoiser`` interface: a backbone network (or a classical method) that maps noisy to clean."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from .errors import InvalidInputError
from .types import Conditions

PARAMETER_ROLES: tuple[str, ...] = ("first", "last", "domain", "all")
"""The roles every ``Denoiser.parameter_groups()`` provides (it may add more)."""


def _record_constructor_config(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap ``__init__`` so the instance remembers the arguments it was built with.

    The outermost constructor call wins (a subclass calling ``super().__init__`` does not
    overwrite its own record), and defaults are filled in, so ``type(m)(**m.config())``
    rebuilds an identical architecture.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: Denoiser, *args: Any, **kwargs: Any) -> None:
        outermost = "_config" not in self.__dict__
        if outermost:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            config: dict[str, Any] = {}
            for name, value in list(bound.arguments.items())[1:]:
                kind = signature.parameters[name].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    config.update(value)
                elif kind is not inspect.Parameter.VAR_POSITIONAL:
                    config[name] = value
            object.__setattr__(self, "_config", config)
        init(self, *args, **kwargs)

    return wrapper


class Denoiser(nn.Module):
    """Base class of every backbone.

    Subclasses set the class attributes, build their layers in ``__init__`` (constructor
    defaults are the paper's configuration) and implement ``forward`` and
    ``parameter_groups``. Constructor arguments must be JSON-serialisable: they are written into
    saved weights so ``noiseshift.load(path)`` can rebuild the model.

    Class attributes:
        name: registry name, lowercase snake_case (``"dncnn"``).
        in_channels / out_channels: channels of the input and output images.
        size_multiple: height and width the network needs to be divisible by; the core pads.
        conditions: the ``cond`` keys the backbone reads (e.g. ``{"sigma"}``); others are ignored.
        domain: ``"srgb"``, ``"raw"`` or ``"any"``.
        trainable: ``False`` for classical, parameter-free methods (BM3D, NLM).

    Auxiliary outputs:
        A backbone that computes more than the image (AINDNet's estimated noise map) assigns
        ``self.aux_outputs = {"sigma": ...}`` inside ``forward``; losses and inspection read it
        through ``forward_with_aux`` (or ``aux_outputs`` after the call, which is what the trainer
        does so that a DDP-wrapped model still synchronises its gradients). Most backbones have
        none and inherit the empty mapping.
    """

    name: ClassVar[str] = ""
    in_channels: int = 3
    out_channels: int = 3
    size_multiple: int = 1
    conditions: ClassVar[frozenset[str]] = frozenset()
    domain: ClassVar[str] = "any"
    trainable: ClassVar[bool] = True
    aux_outputs: Mapping[str, torch.Tensor] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _record_constructor_config(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def config(self) -> dict[str, Any]:
        """The constructor arguments this instance was built with (defaults included)."""
        return dict(self.__dict__.get("_config", {}))

    def forward(self, noisy: torch.Tensor, cond: Conditions | None = None) -> torch.Tensor:
        """Denoise a batch.

        Args:
            noisy: ``N×in_channels×H×W`` float32 in ``[0, 1]``; ``H`` and ``W`` are multiples of
                ``size_multiple`` (``noiseshift.inference`` pads for callers).
            cond: per-image metadata; keys outside ``conditions`` are ignored.

        Returns:
            ``N×out_channels×H×W`` float32, the estimate of the clean image (not clipped).
        """
        raise NotImplementedError

    def forward_with_aux(
        self, noisy: torch.Tensor, cond: Conditions | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Denoise and return the auxiliary outputs of this call too.

        Returns:
            ``(output, aux)``: the ``forward`` output and a copy of ``aux_outputs`` (e.g.
            ``{"sigma": N×C×H×W}`` for AINDNet; ``{}`` for most backbones).
        """
        self.aux_outputs = MappingProxyType({})
        output = self(noisy, cond)
        return output, dict(self.aux_outputs)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by role.

        Returns:
            At least ``first`` (input layer), ``last`` (output layer), ``domain`` (the
            domain-specific part: normalisation / modulation affine parameters, noise estimator,
            output layer) and ``all``. Parameter-free denoisers return empty lists.
        """
        raise NotImplementedError

    # -- helpers for subclasses and callers -------------------------------------------------

    def groups_from_modules(
        self,
        first: nn.Module | Iterable[nn.Module],
        last: nn.Module | Iterable[nn.Module],
        domain: Iterable[nn.Module | nn.Parameter],
        **extra: Iterable[nn.Module | nn.Parameter],
    ) -> dict[str, list[nn.Parameter]]:
        """Build ``parameter_groups()`` from modules (and loose parameters) per role."""

        def collect(items: nn.Module | Iterable[nn.Module | nn.Parameter]) -> list[nn.Parameter]:
            if isinstance(items, nn.Module):
                items = [items]
            params: list[nn.Parameter] = []
            seen: set[int] = set()
            for item in items:
                candidates = [item] if isinstance(item, nn.Parameter) else list(item.parameters())
                for param in candidates:
                    if id(param) not in seen:
                        seen.add(id(param))
                        params.append(param)
            return params

        groups = {"first": collect(first), "last": collect(last), "domain": collect(domain)}
        groups.update({role: collect(items) for role, items in extra.items()})
        groups["all"] = list(self.parameters())
        return groups

    def parameters_for(self, role: str) -> list[nn.Parameter]:
        """The parameters of one role, with a clear error for unknown roles."""
        groups = self.parameter_groups()
        if role not in groups:
            raise InvalidInputError(
                f"{type(self).__name__} has no parameter role {role!r}; it has {sorted(groups)}"
            )
        return groups[role]

    def select_conditions(self, cond: Mapping[str, Any] | None) -> Conditions:
        """The part of ``cond`` this backbone declared in ``conditions``."""
        if not cond:
            return {}
        return {key: value for key, value in cond.items() if key in self.conditions}  # type: ignore[return-value]

    def check_input(self, noisy: torch.Tensor) -> None:
        """Raise ``InvalidInputError`` unless ``noisy`` is a float ``N×in_channels×H×W`` tensor."""
        if not isinstance(noisy, torch.Tensor):
            raise InvalidInputError(f"{self.name or type(self).__name__}: expected a tensor, got {type(noisy).__name__}")
        if noisy.dim() != 4:
            raise InvalidInputError(
                f"{self.name or type(self).__name__}: expected N×C×H×W, got shape {tuple(noisy.shape)}"
            )
        if noisy.shape[1] != self.in_channels:
            raise InvalidInputError(
                f"{self.name or type(self).__name__}: expected {self.in_channels} input channels, "
                f"got {noisy.shape[1]} (shape {tuple(noisy.shape)})"
            )
        if not noisy.is_floating_point():
            raise InvalidInputError(
                f"{self.name or type(self).__name__}: expected a float tensor in [0, 1], got {noisy.dtype}"
            )
