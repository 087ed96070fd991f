"""noiseshift-adl: ADL (adaptive domain learning) — learn from source domains only where it helps.

Registers the adapter ``adl`` (:class:`ADL`): target pre-training, then source steps that are
kept only when the PSNR on a dynamic target validation set beats the mean of a bounded queue of
past scores (else the weights are restored), then target fine-tuning. Works on any trainable
backbone and passes sensor/ISO conditions to backbones that read them (``modulation_unet``).
See docs/adl.md.
"""

from __future__ import annotations

from collections.abc import Callable

from noiseshift.api import hookimpl

from .adl import ADL, CRITERIA, DOMAIN_SAMPLING, ON_REJECT
from .score_queue import ScoreQueue
from .validation import diverse_iso_subset, validation_size

__all__ = ["ADL", "CRITERIA", "DOMAIN_SAMPLING", "ON_REJECT", "ScoreQueue", "diverse_iso_subset", "validation_size"]


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    register(ADL)
