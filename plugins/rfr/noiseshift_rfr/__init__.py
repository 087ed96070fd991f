"""noiseshift-rfr: Restore-from-Restored single-image test-time fine-tuning.

Registers the adapter ``rfr`` (:class:`RFR`): the pretrained backbone's own output is re-noised
with a configurable noise model (Gaussian, or CBDNet's camera noise from the ``cbdnet_noise``
plugin for real photographs) and the backbone is fine-tuned to restore it, for a few steps per
image; episodic. See docs/adapters.md.
"""

from __future__ import annotations

from collections.abc import Callable

from noiseshift.api import hookimpl

from .rfr import DEFAULT_NOISE, RFR

__all__ = ["DEFAULT_NOISE", "RFR"]


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    register(RFR)
