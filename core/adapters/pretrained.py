"""The ``pretrained`` adapter: no adaptation at all, the baseline row of every table."""

from __future__ import annotations

from typing import ClassVar

from ..adapter import Adapter


class Pretrained(Adapter):
    """Use the backbone as it is. ``fit`` does nothing and ``delta`` is empty."""

    name: ClassVar[str] = "pretrained"
