"""Validated random-parameter options shared by the noise models of this plugin.

A *level* option is either one number (fixed) or a ``[low, high]`` pair from which one value is
drawn per image (or per image and channel), uniformly or log-uniformly. Every draw comes from
the ``torch.Generator`` passed in, on the images' device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from noiseshift.api import InvalidInputError

__all__ = ["SAMPLE_SPACES", "draw_levels", "parse_choice", "parse_range", "range_config"]

SAMPLE_SPACES: tuple[str, ...] = ("uniform", "log_uniform")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_range(
    owner: str,
    option: str,
    value: float | Sequence[float],
    *,
    minimum: float = 0.0,
    strictly_positive: bool = False,
) -> tuple[float, float]:
    """Turn a number or a ``[low, high]`` pair into a validated ``(low, high)`` tuple.

    Args:
        owner: registry name of the component, for the error message.
        option: the option's name, for the error message.
        value: a number (``low == high``) or a pair of numbers.
        minimum: the smallest value allowed.
        strictly_positive: reject ``0`` (log-uniform sampling needs ``low > 0``).

    Returns:
        ``(low, high)`` as floats.

    Raises:
        InvalidInputError: for a malformed value, non-finite bounds, bounds below ``minimum``
            (or ``<= 0`` when ``strictly_positive``) or ``low > high``.
    """
    if _is_number(value):
        low = high = float(value)  # type: ignore[arg-type]
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(_is_number(item) for item in value)
    ):
        low, high = float(value[0]), float(value[1])
    else:
        raise InvalidInputError(
            f"noise model {owner!r}: {option} must be a number or a [low, high] pair, got {value!r}"
        )
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InvalidInputError(f"noise model {owner!r}: {option} must be finite, got {value!r}")
    if low < minimum or (strictly_positive and low <= 0):
        bound = "> 0" if strictly_positive else f">= {minimum}"
        raise InvalidInputError(f"noise model {owner!r}: {option} must be {bound}, got {value!r}")
    if low > high:
        raise InvalidInputError(f"noise model {owner!r}: {option} range has low > high: {value!r}")
    return low, high


def range_config(value: tuple[float, float]) -> float | list[float]:
    """A JSON-friendly form of a parsed range: a number when fixed, else ``[low, high]``."""
    return value[0] if value[0] == value[1] else [value[0], value[1]]


def parse_choice(owner: str, option: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``InvalidInputError``."""
    if value not in choices:
        raise InvalidInputError(
            f"noise model {owner!r}: {option} must be one of {list(choices)}, got {value!r}"
        )
    return value


def draw_levels(
    level: tuple[float, float],
    shape: tuple[int, ...],
    *,
    space: str,
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw values in ``[low, high]``: uniformly or with a uniform logarithm.

    A fixed level (``low == high``) draws nothing from the generator, so fixing one parameter
    does not shift the random stream of the others.

    Args:
        level: ``(low, high)``; ``low > 0`` when ``space == "log_uniform"``.
        shape: output shape (e.g. ``(N,)`` or ``(N, 3)``).
        space: ``"uniform"`` or ``"log_uniform"``.
        generator: the source of randomness (on ``device``), or ``None`` for torch's global one.
        device: where the result lives.
        dtype: floating dtype of the result.

    Returns:
        A tensor of ``shape`` with values in ``[low, high]``.
    """
    low, high = level
    if low == high:
        return torch.full(shape, low, dtype=dtype, device=device)
    uniform = torch.rand(shape, generator=generator, dtype=dtype, device=device)
    if space == "log_uniform":
        log_low, log_high = math.log(low), math.log(high)
        # exp() of a float32 logarithm can land a rounding error outside the bounds.
        return torch.exp(log_low + (log_high - log_low) * uniform).clamp(low, high)
    return low + (high - low) * uniform
