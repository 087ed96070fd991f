"""Data records that flow between noise models, benchmarks, denoisers and adapters.

Image tensors everywhere in noiseshift are ``float32`` of shape ``N×C×H×W`` with values in
``[0, 1]``: sRGB images have ``C = 3``; packed Bayer raw images have ``C = 4`` in RGGB order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import torch

Domain = Literal["srgb", "raw"]
"""The signal domain of an image: display-referred sRGB, or linear packed Bayer raw."""

CONDITION_KEYS: frozenset[str] = frozenset(
    {"sigma", "sensor", "iso", "exposure_ratio", "nlf", "camera", "domain"}
)
"""The per-image metadata keys the core knows about. Plugins may add others."""


class Conditions(TypedDict, total=False):
    """Per-image metadata a backbone may use (it declares which in ``Denoiser.conditions``).

    Keys:
        sigma: per-pixel noise standard deviation, ``N×1×H×W`` or ``N×C×H×W`` in the image's
            ``[0, 1]`` units (a scalar tensor or float is broadcast).
        sensor: camera/sensor name per image (``str`` or a list of ``N`` strings).
        iso: ISO speed per image (``float`` or an ``N``-vector).
        exposure_ratio: ratio of reference to short exposure (raw low-light sets).
        nlf: noise level function parameters, e.g. ``(a, b)`` of ``σ² = a·x + b``.
        camera: free-form camera description.
        domain: ``"srgb"`` or ``"raw"``.
    """

    sigma: torch.Tensor | float
    sensor: str | list[str]
    iso: float | torch.Tensor
    exposure_ratio: float | torch.Tensor
    nlf: Any
    camera: str
    domain: str


def spatial_condition_keys(cond: Mapping[str, Any] | None, height: int, width: int) -> list[str]:
    """Return the keys of ``cond`` whose values are maps aligned with an ``H×W`` image.

    Tiling and geometric self-ensembles must crop / transform these together with the image.

    Args:
        cond: the conditions, or ``None``.
        height: image height ``H``.
        width: image width ``W``.

    Returns:
        Keys whose values are tensors with at least 3 dims and trailing size ``H×W``.
    """
    if not cond:
        return []
    return [
        key
        for key, value in cond.items()
        if isinstance(value, torch.Tensor)
        and value.dim() >= 3
        and tuple(value.shape[-2:]) == (height, width)
    ]


@dataclass
class NoisySample:
    """What a ``NoiseModel`` returns.

    Attributes:
        noisy: noisy images, ``N×C×H×W`` float32; usually in ``[0, 1]`` (models that do not
            clip say so in their docs).
        sigma: per-pixel noise standard deviation map ``N×C×H×W`` (or ``N×1×H×W``) when the
            model knows it, else ``None``.
        meta: the random parameters drawn for this batch (e.g. ``{"sigma": tensor([...])}``).
    """

    noisy: torch.Tensor
    sigma: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def conditions(self) -> Conditions:
        """The sample's conditions (``sigma`` when known) for a backbone's ``cond`` argument."""
        cond: Conditions = {}
        if self.sigma is not None:
            cond["sigma"] = self.sigma
        return cond


@dataclass
class Sample:
    """One benchmark item.

    Attributes:
        key: a stable identifier (file stem, ``"0001_03"`` for DND image 1 box 3, ...).
        noisy: ``1×C×H×W`` float32 in ``[0, 1]``.
        clean: ``1×C×H×W`` float32 ground truth, or ``None`` for sets scored by a server.
        cond: the sample's conditions (sensor, ISO, noise level, ...).
    """

    key: str
    noisy: torch.Tensor
    clean: torch.Tensor | None = None
    cond: Conditions = field(default_factory=dict)  # type: ignore[assignment]
