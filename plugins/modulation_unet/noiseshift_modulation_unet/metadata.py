"""ADL's metadata vector: one-hot sensor type concatenated with the normalised ISO.

Reference:
    Z. Qian, Y. Qi, Y. Law, Y. Fu, J. Lei and Q. Chen, "Adaptive Domain Learning for Cross-domain
    Image Denoising", NeurIPS 2024, §3.2 — the channel-wise modulation layers read a vector
    ``(p, s)``: ``p ∈ R^n`` the one-hot encoding of the sensor type and ``s ∈ R^n`` the ISO
    duplicated ``n`` times.

The paper does not say how the ISO is normalised; :class:`MetadataEncoder` offers two rules:

* ``"log2"`` (default): ``log2(iso / 100) / log2(max_iso / 100)``. ISO 100 maps to 0 and
  ``max_iso`` to 1; every doubling of the ISO (one stop of gain) adds the same amount. The
  system gain ``K`` that ISO is proportional to spans two to three orders of magnitude across
  a sensor's range, so a linear scale would squeeze ISO 100 and ISO 800 together near 0.
* ``"linear"``: ``iso / max_iso`` (``max_iso`` maps to 1).

Values outside ``[100, max_iso]`` are extrapolated, not clipped (ISO 50 gives ``-0.125`` with
the defaults), so cameras with a wider range than the training set still get distinct codes.

Per-image metadata comes from ``cond``:

* ``cond["sensor"]``: one ``str`` for the whole batch, or a list/tuple of ``N`` strings.
  Names match the vocabulary case-insensitively, ignoring surrounding white space.
* ``cond["iso"]``: a number for the whole batch, a list/tuple of ``N`` numbers, or a tensor of
  ``1`` or ``N`` elements. ISO values must be finite and positive.

With ``unknown_sensor="fallback"`` the one-hot vector has one extra slot, the *unknown sensor*
slot (the last one): unknown names and a missing sensor use it, and a missing ISO (the key
absent, ``None``, or a ``None`` entry in a list) uses ``default_iso``. With
``unknown_sensor="error"`` (default) those cases raise ``InvalidInputError``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from noiseshift.api import InvalidInputError

__all__ = ["ISO_NORMS", "UNKNOWN_SENSOR_POLICIES", "MetadataEncoder", "REFERENCE_ISO"]

ISO_NORMS: tuple[str, ...] = ("log2", "linear")
"""Accepted values of ``iso_norm``."""

UNKNOWN_SENSOR_POLICIES: tuple[str, ...] = ("error", "fallback")
"""Accepted values of ``unknown_sensor``."""

REFERENCE_ISO: float = 100.0
"""The ISO that the ``"log2"`` rule maps to 0 (the usual base ISO of camera sensors)."""


def _sensor_key(name: str) -> str:
    return name.strip().casefold()


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class MetadataEncoder:
    """Turns ``cond["sensor"]`` and ``cond["iso"]`` into ADL's ``N×D`` metadata vectors.

    ``D = slots + iso_repeat`` where ``slots`` is the number of sensors (plus one for the
    unknown-sensor slot with ``unknown_sensor="fallback"``).

    Args:
        sensors: the sensor vocabulary, in one-hot order. Names must be non-empty and unique
            (case-insensitively). May be empty only with ``unknown_sensor="fallback"``.
        unknown_sensor: ``"error"`` or ``"fallback"`` (see the module docstring).
        iso_norm: ``"log2"`` or ``"linear"`` (see the module docstring).
        max_iso: the ISO that normalises to 1; must exceed 100 for ``"log2"``.
        default_iso: the ISO assumed when it is missing, with ``unknown_sensor="fallback"``.
        iso_repeat: how many times the normalised ISO is repeated; ``None`` means ``slots``
            (the paper's ``n``).
        owner: the name used in error messages.

    Raises:
        InvalidInputError: for an invalid option.
    """

    def __init__(
        self,
        sensors: Sequence[str],
        *,
        unknown_sensor: str = "error",
        iso_norm: str = "log2",
        max_iso: float = 25600.0,
        default_iso: float = 1600.0,
        iso_repeat: int | None = None,
        owner: str = "modulation_unet",
    ) -> None:
        self.owner = owner
        if isinstance(sensors, str) or not isinstance(sensors, Sequence):
            raise InvalidInputError(f"{owner}: sensors must be a list of sensor names, got {sensors!r}")
        names = list(sensors)
        if not all(isinstance(name, str) and name.strip() for name in names):
            raise InvalidInputError(f"{owner}: every sensor name must be a non-empty string, got {names!r}")
        keys = [_sensor_key(name) for name in names]
        duplicates = sorted({name for name, key in zip(names, keys) if keys.count(key) > 1})
        if duplicates:
            raise InvalidInputError(
                f"{owner}: sensor names must be unique (compared case-insensitively), got duplicates {duplicates}"
            )
        if unknown_sensor not in UNKNOWN_SENSOR_POLICIES:
            raise InvalidInputError(
                f"{owner}: unknown_sensor must be one of {list(UNKNOWN_SENSOR_POLICIES)}, got {unknown_sensor!r}"
            )
        if not names and unknown_sensor == "error":
            raise InvalidInputError(
                f"{owner}: sensors is empty; give the sensor vocabulary or use unknown_sensor='fallback'"
            )
        if iso_norm not in ISO_NORMS:
            raise InvalidInputError(f"{owner}: iso_norm must be one of {list(ISO_NORMS)}, got {iso_norm!r}")
        if not _is_number(max_iso) or not math.isfinite(max_iso) or max_iso <= 0:
            raise InvalidInputError(f"{owner}: max_iso must be a finite positive number, got {max_iso!r}")
        if iso_norm == "log2" and max_iso <= REFERENCE_ISO:
            raise InvalidInputError(
                f"{owner}: with iso_norm='log2' max_iso must exceed {REFERENCE_ISO:g} (it maps to 1, "
                f"ISO {REFERENCE_ISO:g} to 0), got {max_iso!r}"
            )
        if not _is_number(default_iso) or not math.isfinite(default_iso) or default_iso <= 0:
            raise InvalidInputError(f"{owner}: default_iso must be a finite positive number, got {default_iso!r}")
        slots = len(names) + (unknown_sensor == "fallback")
        if iso_repeat is None:
            iso_repeat = slots
        if isinstance(iso_repeat, bool) or not isinstance(iso_repeat, int) or iso_repeat < 1:
            raise InvalidInputError(f"{owner}: iso_repeat must be a positive integer or None, got {iso_repeat!r}")

        self.sensors: tuple[str, ...] = tuple(names)
        self.unknown_sensor = unknown_sensor
        self.iso_norm = iso_norm
        self.max_iso = float(max_iso)
        self.default_iso = float(default_iso)
        self.slots = slots
        self.iso_repeat = iso_repeat
        self._index = {key: index for index, key in enumerate(keys)}

    @property
    def dim(self) -> int:
        """Length ``D`` of one metadata vector."""
        return self.slots + self.iso_repeat

    @property
    def fallback_slot(self) -> int | None:
        """Index of the unknown-sensor slot, or ``None`` without ``unknown_sensor="fallback"``."""
        return len(self.sensors) if self.unknown_sensor == "fallback" else None

    # -- ISO ------------------------------------------------------------------------------------

    def normalise_iso(self, iso: torch.Tensor) -> torch.Tensor:
        """Map ISO values (any shape, positive) to the network's scale (same shape)."""
        if self.iso_norm == "log2":
            return torch.log2(iso / REFERENCE_ISO) / math.log2(self.max_iso / REFERENCE_ISO)
        return iso / self.max_iso

    def iso_values(self, cond: Mapping[str, Any] | None, batch: int) -> torch.Tensor:
        """The raw ISO of every image: a float64 ``N``-vector on the CPU.

        Raises:
            InvalidInputError: a missing ISO without fallback, a wrong type or length, or a
                value that is not finite and positive.
        """
        value = None if cond is None else cond.get("iso")
        if value is None:
            return torch.full((batch,), self._missing_iso(), dtype=torch.float64)
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if isinstance(value, torch.Tensor):
            if value.is_complex() or value.dtype == torch.bool:
                raise InvalidInputError(f"{self.owner}: cond['iso'] must be real numbers, got dtype {value.dtype}")
            flat = value.detach().reshape(-1).to(device="cpu", dtype=torch.float64)
            if flat.numel() == 1:
                flat = flat.expand(batch)
            elif flat.numel() != batch:
                raise InvalidInputError(
                    f"{self.owner}: cond['iso'] is a tensor of shape {tuple(value.shape)}; it must hold "
                    f"1 value or one per image (N={batch})"
                )
            values = flat.clone()
        elif _is_number(value):
            values = torch.full((batch,), float(value), dtype=torch.float64)
        elif isinstance(value, (list, tuple)):
            if len(value) != batch:
                raise InvalidInputError(
                    f"{self.owner}: cond['iso'] is a list of {len(value)} value(s) for a batch of "
                    f"N={batch} images; give one ISO per image or a single number"
                )
            values = torch.tensor([self._iso_item(item) for item in value], dtype=torch.float64)
        else:
            raise InvalidInputError(
                f"{self.owner}: cond['iso'] must be a number, a list of N numbers or a tensor, "
                f"got {type(value).__name__}"
            )
        bad = ~(torch.isfinite(values) & (values > 0))
        if bool(bad.any()):
            raise InvalidInputError(
                f"{self.owner}: ISO values must be finite and positive, got {values[bad].tolist()}"
            )
        return values

    def _missing_iso(self) -> float:
        if self.unknown_sensor == "fallback":
            return self.default_iso
        raise InvalidInputError(
            f"{self.owner}: needs cond['iso'] (the ISO of each image, a number or a list of N numbers); "
            f"build the model with unknown_sensor='fallback' to assume ISO {self.default_iso:g} when it is missing"
        )

    def _iso_item(self, item: Any) -> float:
        if item is None:
            return self._missing_iso()
        # One-element tensors / arrays appear when a per-image list was built from tensors.
        one_element = (isinstance(item, torch.Tensor) and item.numel() == 1) or (
            isinstance(item, np.ndarray) and item.size == 1
        )
        if one_element or _is_number(item):
            return float(item)
        raise InvalidInputError(f"{self.owner}: cond['iso'] entries must be numbers, got {item!r}")

    # -- sensor ---------------------------------------------------------------------------------

    def sensor_indices(self, cond: Mapping[str, Any] | None, batch: int) -> list[int]:
        """The one-hot slot of every image (``N`` ints).

        Raises:
            InvalidInputError: a missing or unknown sensor without fallback, or a wrong type or
                length.
        """
        value = None if cond is None else cond.get("sensor")
        if value is None or isinstance(value, str):
            return [self._slot(value)] * batch
        if isinstance(value, (list, tuple)):
            if len(value) != batch:
                raise InvalidInputError(
                    f"{self.owner}: cond['sensor'] is a list of {len(value)} name(s) for a batch of "
                    f"N={batch} images; give one sensor per image or a single string"
                )
            return [self._slot(item) for item in value]
        raise InvalidInputError(
            f"{self.owner}: cond['sensor'] must be a string or a list of N strings, got {type(value).__name__}"
        )

    def _slot(self, name: Any) -> int:
        known = list(self.sensors)
        if name is None:
            if self.fallback_slot is not None:
                return self.fallback_slot
            raise InvalidInputError(
                f"{self.owner}: needs cond['sensor'] (one of the known sensors {known}); build the "
                f"model with unknown_sensor='fallback' to use its unknown-sensor slot instead"
            )
        if not isinstance(name, str):
            raise InvalidInputError(f"{self.owner}: sensor names must be strings, got {name!r}")
        index = self._index.get(_sensor_key(name))
        if index is not None:
            return index
        if self.fallback_slot is not None:
            return self.fallback_slot
        raise InvalidInputError(
            f"{self.owner}: unknown sensor {name!r}; this model knows {known}. Use one of them, or "
            f"build the model with unknown_sensor='fallback' to map other sensors to a shared slot"
        )

    # -- the vector -------------------------------------------------------------------------------

    def encode(
        self,
        cond: Mapping[str, Any] | None,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """The metadata vectors ``(p, s)`` of a batch.

        Args:
            cond: the conditions (``sensor`` and ``iso`` are read; other keys ignored).
            batch: the batch size ``N``.
            device: where the result lives (default CPU).
            dtype: floating dtype of the result.

        Returns:
            ``N×D`` tensor: columns ``[0, slots)`` the one-hot sensor code, the remaining
            ``iso_repeat`` columns the normalised ISO.
        """
        indices = torch.tensor(self.sensor_indices(cond, batch), dtype=torch.long, device=device)
        one_hot = F.one_hot(indices, self.slots).to(dtype)
        iso = self.normalise_iso(self.iso_values(cond, batch)).to(device=device, dtype=dtype)
        return torch.cat([one_hot, iso[:, None].expand(batch, self.iso_repeat)], dim=1)
