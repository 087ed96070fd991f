"""ADL's dynamic validation set: how many target pairs validate each step, and which.

Reference:
    Z. Qian, Y. Qi, Y. Law, Y. Fu, J. Lei and Q. Chen, "Adaptive Domain Learning for Cross-domain
    Image Denoising", NeurIPS 2024, §3.1.2 ("Dynamic validation set").

Every source step re-draws a validation part ``V'`` of size ``k`` from the target set ``T``
(``|T| = n``); the rest of ``T`` joins the training batch. ``k`` starts at 20 % of ``n`` and
grows to 50 % by the last step. The paper gives neither the growth law nor the rounding; here:

* ``growth="linear"`` (default): the fraction moves linearly from ``start`` at the first step
  to ``end`` at the last; ``"cosine"``: half a cosine (slow, fast, slow).
* ``k = floor(fraction · n + 0.5)`` (round half up), clamped to ``[1, n − 1]`` so that both
  parts are non-empty; a target set of one pair validates on that pair and trains on the
  source batch alone.

With fewer than 10 target pairs the paper picks ``V'`` "with very diverse system gain" (ISO)
instead of at random. :func:`diverse_iso_subset` does this by stratified sampling: the distinct
ISO values, sorted, are cut into ``k`` contiguous strata of (nearly) equal count, one random
ISO value is drawn in each stratum and one random pair with that ISO. So every draw spans the
ISO range, and the draws still vary from step to step (a fixed "most diverse" subset would be
the fixed validation set the paper warns overfits). When ``k`` exceeds the number of distinct
ISO values, every value gets one pair and the remaining places are filled at random from the
other pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from noiseshift.api import InvalidInputError

__all__ = ["GROWTH_LAWS", "VALIDATION_CHOICES", "diverse_iso_subset", "random_subset", "validation_size"]

GROWTH_LAWS: tuple[str, ...] = ("linear", "cosine")
"""Accepted values of ``val_growth``."""

VALIDATION_CHOICES: tuple[str, ...] = ("auto", "random", "diverse_iso")
"""Accepted values of ``validation``: ``auto`` is ``diverse_iso`` below ``diverse_below`` pairs
(when every pair has an ISO), else ``random``."""


def validation_size(
    step: int, steps: int, n: int, *, start: float = 0.2, end: float = 0.5, growth: str = "linear"
) -> int:
    """Size ``k`` of the validation part at source step ``step`` of ``steps``.

    Args:
        step: 0-based step index (``0`` is also used for seeding the queue).
        steps: number of source steps (``>= 1``).
        n: number of target pairs (``>= 1``).
        start: fraction of ``n`` at the first step.
        end: fraction of ``n`` at the last step.
        growth: ``"linear"`` or ``"cosine"``.

    Returns:
        ``k`` in ``[1, max(1, n − 1)]``.
    """
    if growth not in GROWTH_LAWS:
        raise InvalidInputError(f"adl: val_growth must be one of {list(GROWTH_LAWS)}, got {growth!r}")
    if n < 1:
        raise InvalidInputError(f"adl: the target set is empty (n={n})")
    progress = min(max(step, 0), max(steps - 1, 0)) / max(steps - 1, 1)
    if growth == "cosine":
        progress = 0.5 - 0.5 * math.cos(math.pi * progress)
    fraction = start + (end - start) * progress
    k = math.floor(fraction * n + 0.5)
    return max(1, min(k, n - 1)) if n > 1 else 1


def random_subset(n: int, k: int, generator: torch.Generator) -> list[int]:
    """``k`` distinct indices of ``range(n)`` drawn uniformly, in draw order."""
    return torch.randperm(n, generator=generator)[:k].tolist()


def diverse_iso_subset(isos: Sequence[float], k: int, generator: torch.Generator) -> list[int]:
    """``k`` distinct indices whose ISO values span the range (see the module docstring).

    Args:
        isos: the ISO of every target pair.
        k: how many to pick (``1 <= k <= len(isos)``).
        generator: every draw comes from it.

    Returns:
        ``k`` distinct indices into ``isos``.
    """
    n = len(isos)
    if not 1 <= k <= n:
        raise InvalidInputError(f"adl: cannot pick {k} validation pairs out of {n}")
    levels = sorted(set(float(iso) for iso in isos))
    by_level = {level: [i for i, iso in enumerate(isos) if float(iso) == level] for level in levels}

    def pick(members: list[int]) -> int:
        return members[int(torch.randint(len(members), (1,), generator=generator))]

    if k <= len(levels):
        bounds = [math.floor(j * len(levels) / k + 0.5) for j in range(k + 1)]
        chosen = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            level = levels[lo + int(torch.randint(hi - lo, (1,), generator=generator))]
            chosen.append(pick(by_level[level]))
        return chosen
    chosen = [pick(by_level[level]) for level in levels]
    rest = [i for i in range(n) if i not in set(chosen)]
    order = torch.randperm(len(rest), generator=generator)[: k - len(chosen)].tolist()
    return chosen + [rest[j] for j in order]
