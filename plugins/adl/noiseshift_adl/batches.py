"""Training crops and their conditions for ADL's merged (source + target) batches.

ADL's adaptive step trains on a batch that mixes one source domain with the target's training
part, so the crops of one batch come from different cameras. Their conditions are collated per
image by ``noiseshift``'s ``collate_conditions`` for the keys the backbone declares: a value
missing in some samples becomes ``None`` at those positions, so a target crop keeps its sensor
and ISO next to a synthetic source crop that has none. Backbones that read lists with ``None``
entries (``modulation_unet`` with ``unknown_sensor="fallback"``) use their default for those
images; others raise their own error naming the missing key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from noiseshift.api import Conditions, InvalidInputError, Sample, collate_conditions, random_crop

__all__ = ["Crop", "center_crop", "random_crops", "stack"]

Crop = tuple[torch.Tensor, torch.Tensor, Conditions]
"""``(noisy, clean, cond)`` of one crop: ``1×C×P×P`` tensors and the sample's conditions."""


def random_crops(
    samples: Sequence[Sample], picks: Iterable[int], patch: int, generator: torch.Generator
) -> list[Crop]:
    """One aligned random ``patch×patch`` crop (``noiseshift``'s ``random_crop``) per pick.

    Args:
        samples: pairs with ``noisy`` and ``clean`` of shape ``1×C×H×W``, ``H, W >= patch``.
        picks: indices into ``samples`` (repeats allowed).
        patch: crop side.
        generator: every draw comes from it.
    """
    return [(*random_crop(samples[index], patch, generator), samples[index].cond or {}) for index in picks]


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


def stack(crops: Sequence[Crop], keys: Iterable[str]) -> tuple[torch.Tensor, torch.Tensor, Conditions | None]:
    """``(noisy, clean, cond)`` batches of a list of crops of one size."""
    return (
        torch.cat([c[0] for c in crops]),
        torch.cat([c[1] for c in crops]),
        collate_conditions([c[2] for c in crops], keys),
    )
