"""Training crops and their conditions for ADL's merged (source + target) batches.

ADL's adaptive step trains on a batch that mixes one source domain with the target's training
part, so the crops of one batch come from different cameras. Their conditions are collated per
image: for each key the backbone declares, strings become a list of ``N`` names, numbers a
float32 ``(N,)`` tensor, and a value missing in some samples becomes ``None`` at those positions
(a list), so a target crop keeps its sensor and ISO next to a synthetic source crop that has
none. (``noiseshift``'s own ``collate_conditions`` drops such a key for the whole batch instead,
which would hide the target's ISO in exactly the batches ADL mixes.) Backbones that read lists
with ``None`` entries (``modulation_unet`` with ``unknown_sensor="fallback"``) use their default
for those images; others raise their own error naming the missing key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from noiseshift.api import Conditions, InvalidInputError, Sample

__all__ = ["Crop", "center_crop", "collate", "random_crops", "stack"]

Crop = tuple[torch.Tensor, torch.Tensor, Conditions]
"""``(noisy, clean, cond)`` of one crop: ``1×C×P×P`` tensors and the sample's conditions."""


def random_crops(
    samples: Sequence[Sample], picks: Iterable[int], patch: int, generator: torch.Generator
) -> list[Crop]:
    """One aligned random ``patch×patch`` crop, with a random dihedral transform, per pick.

    Args:
        samples: pairs with ``noisy`` and ``clean`` of shape ``1×C×H×W``, ``H, W >= patch``.
        picks: indices into ``samples`` (repeats allowed).
        patch: crop side.
        generator: every draw comes from it.
    """
    crops: list[Crop] = []
    for index in picks:
        sample = samples[index]
        assert sample.clean is not None
        height, width = sample.noisy.shape[-2:]
        top = int(torch.randint(height - patch + 1, (1,), generator=generator))
        left = int(torch.randint(width - patch + 1, (1,), generator=generator))
        turns = int(torch.randint(4, (1,), generator=generator))
        flip = bool(torch.randint(2, (1,), generator=generator))
        pair = []
        for image in (sample.noisy, sample.clean):
            crop = torch.rot90(image[..., top : top + patch, left : left + patch], turns, dims=(-2, -1))
            pair.append(crop.flip(-1) if flip else crop)
        crops.append((pair[0], pair[1], sample.cond or {}))
    return crops


def center_crop(sample: Sample, patch: int | None, multiple: int) -> Crop:
    """The central crop of a pair used for validation (the whole image when ``patch`` is ``None``).

    The side is ``min(patch, H, W)`` rounded down to ``multiple``; without ``patch`` each side is
    rounded down to ``multiple`` (at most ``multiple − 1`` border pixels are dropped).
    """
    assert sample.clean is not None
    height, width = sample.noisy.shape[-2:]
    if patch is None:
        crop_h, crop_w = height - height % multiple, width - width % multiple
    else:
        crop_h = crop_w = min(patch, height, width) // multiple * multiple
    if crop_h < 1 or crop_w < 1:
        raise InvalidInputError(
            f"adl: target sample {sample.key!r} ({height}×{width}) is smaller than the backbone's size multiple {multiple}"
        )
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    window = (..., slice(top, top + crop_h), slice(left, left + crop_w))
    return sample.noisy[window], sample.clean[window], sample.cond or {}


def _is_number(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.is_complex() and value.dtype != torch.bool
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def collate(conds: Sequence[Conditions], keys: Iterable[str]) -> Conditions | None:
    """Batch the conditions of ``N`` crops for the keys a backbone reads (see the module docstring).

    Args:
        conds: one mapping per crop.
        keys: the backbone's ``conditions``.

    Returns:
        The batched conditions, or ``None`` when no crop has any of ``keys``.

    Raises:
        InvalidInputError: a key whose values are neither all strings nor all numbers (missing
            values aside), e.g. per-image maps, which cannot be cropped here.
    """
    batch: dict[str, Any] = {}
    for key in sorted(keys):
        values = [c.get(key) for c in conds]
        present = [v for v in values if v is not None]
        if not present:
            continue
        if all(isinstance(v, str) for v in present):
            batch[key] = values
        elif all(_is_number(v) for v in present):
            floats = [None if v is None else float(v) for v in values]
            batch[key] = floats if None in floats else torch.tensor(floats, dtype=torch.float32)
        else:
            kinds = sorted({type(v).__name__ for v in present})
            raise InvalidInputError(
                f"adl: cannot batch condition {key!r} of the training pairs (value types {kinds}); ADL batches "
                "per-image strings and numbers (sensor, ISO), not maps"
            )
    return batch or None  # type: ignore[return-value]


def stack(crops: Sequence[Crop], keys: Iterable[str]) -> tuple[torch.Tensor, torch.Tensor, Conditions | None]:
    """``(noisy, clean, cond)`` batches of a list of crops of one size."""
    return (
        torch.cat([c[0] for c in crops]),
        torch.cat([c[1] for c in crops]),
        collate([c[2] for c in crops], keys),
    )
