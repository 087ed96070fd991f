"""The ``NoiseModel`` interface: synthesises noisy images from clean ones (the "physics")."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .errors import InvalidInputError
from .types import NoisySample


class NoiseModel:
    """Base class of every noise model.

    Subclasses set ``name`` and ``domain`` and implement ``sample``. Calls are batched and
    vectorised; every random draw comes from the ``generator`` passed in (so the same seed gives
    the same noisy batch), and tensors stay on the input's device.

    Class attributes:
        name: registry name, lowercase snake_case (``"gaussian"``).
        domain: ``"srgb"`` or ``"raw"``, the domain of the images it expects and returns.
        in_channels: expected channel count, or ``None`` for any.
    """

    name: ClassVar[str] = ""
    domain: ClassVar[str] = "srgb"
    in_channels: ClassVar[int | None] = None

    def __call__(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> NoisySample:
        """Make a noisy version of ``clean``.

        Args:
            clean: ``N×C×H×W`` float tensor in ``[0, 1]``.
            generator: source of randomness; must live on ``clean.device``. ``None`` uses torch's
                global generator (not reproducible; pass one in real runs).

        Returns:
            ``NoisySample`` with the noisy batch (same shape, dtype and device as ``clean``),
            the per-pixel σ map when known, and the drawn parameters in ``meta``.
        """
        self.check_clean(clean)
        if generator is not None and generator.device.type != clean.device.type:
            raise InvalidInputError(
                f"noise model {self.name!r}: generator is on {generator.device} but the images "
                f"are on {clean.device}; create it with torch.Generator(device=...)"
            )
        return self.sample(clean, generator)

    def sample(self, clean: torch.Tensor, generator: torch.Generator | None) -> NoisySample:
        """Draw the noise. ``clean`` has already been validated."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor arguments, for logging and configs. Subclasses override when needed."""
        return {}

    def check_clean(self, clean: torch.Tensor) -> None:
        """Raise ``InvalidInputError`` unless ``clean`` is a finite float ``N×C×H×W`` tensor."""
        if not isinstance(clean, torch.Tensor) or clean.dim() != 4:
            shape = tuple(clean.shape) if isinstance(clean, torch.Tensor) else type(clean).__name__
            raise InvalidInputError(f"noise model {self.name!r}: expected an N×C×H×W tensor, got {shape}")
        if not clean.is_floating_point():
            raise InvalidInputError(
                f"noise model {self.name!r}: expected a float tensor in [0, 1], got {clean.dtype}"
            )
        if self.in_channels is not None and clean.shape[1] != self.in_channels:
            raise InvalidInputError(
                f"noise model {self.name!r}: expected {self.in_channels} channels, got {clean.shape[1]}"
            )
        if not torch.isfinite(clean).all():
            raise InvalidInputError(f"noise model {self.name!r}: input contains NaN or inf")

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({options})"
