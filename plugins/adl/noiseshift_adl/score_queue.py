"""ADL's soft acceptance criterion: a bounded priority queue of validation PSNRs.

Reference:
    Z. Qian, Y. Qi, Y. Law, Y. Fu, J. Lei and Q. Chen, "Adaptive Domain Learning for Cross-domain
    Image Denoising", NeurIPS 2024, §3.1.2 ("Dynamic average PSNR", Eq. 2, Algorithm 1).

The queue ``Q`` holds at most ``M`` PSNR values ranked in ascending order. It is seeded with the
validation PSNR of the model before the first source step; a step is kept when its validation
PSNR is greater than the mean of ``Q``, and then its PSNR is pushed, after the first element is
popped if ``Q`` is full. "First element" of a queue ranked ascending is the smallest value
(``pop="smallest"``, the paper's wording), so ``Q`` keeps the ``M`` best scores seen and its mean
never decreases. ``pop="oldest"`` (first in, first out) is offered as an alternative reading: the
mean then follows the recent trend instead of the best history.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

from noiseshift.api import InvalidInputError

__all__ = ["POP_RULES", "ScoreQueue"]

POP_RULES: tuple[str, ...] = ("smallest", "oldest")
"""Accepted values of ``ScoreQueue(pop=...)``."""


class ScoreQueue:
    """A queue of at most ``size`` finite scores with a mean threshold.

    Args:
        size: the bound ``M`` (>= 1).
        pop: which element leaves a full queue on push: ``"smallest"`` (paper) or ``"oldest"``.

    Raises:
        InvalidInputError: for a bound below 1 or an unknown pop rule.
    """

    def __init__(self, size: int, pop: str = "smallest") -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidInputError(f"adl: queue_size must be a positive integer, got {size!r}")
        if pop not in POP_RULES:
            raise InvalidInputError(f"adl: queue_pop must be one of {list(POP_RULES)}, got {pop!r}")
        self.size = size
        self.pop = pop
        self._sorted: list[float] = []
        self._arrival: deque[float] = deque()

    def __len__(self) -> int:
        return len(self._sorted)

    @property
    def values(self) -> list[float]:
        """The scores in ascending order."""
        return list(self._sorted)

    def mean(self) -> float:
        """Mean of the scores; ``-inf`` for an empty queue (so anything finite beats it)."""
        return sum(self._sorted) / len(self._sorted) if self._sorted else -math.inf

    def accepts(self, score: float) -> bool:
        """Whether ``score`` beats the mean strictly (Eq. 2). NaN never does."""
        return bool(score > self.mean())

    def push(self, score: float) -> None:
        """Add ``score``, first removing one element when the queue is full.

        Raises:
            InvalidInputError: for a value that is not a finite number.
        """
        score = float(score)
        if not math.isfinite(score):
            raise InvalidInputError(f"adl: only finite PSNRs enter the queue, got {score}")
        if len(self._sorted) == self.size:
            if self.pop == "smallest":
                leaving = self._sorted.pop(0)
                self._arrival.remove(leaving)
            else:
                leaving = self._arrival.popleft()
                self._sorted.pop(bisect.bisect_left(self._sorted, leaving))
        bisect.insort(self._sorted, score)
        self._arrival.append(score)
