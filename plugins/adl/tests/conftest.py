"""Small synthetic domains shared by the ADL tests (no data files needed)."""

from __future__ import annotations

import torch

from noiseshift.api import Sample


def smooth_image(seed: int, size: int = 32, channels: int = 3) -> torch.Tensor:
    """A textured but smooth ``1×C×size×size`` image in ``[0.1, 0.9]`` (bicubic up-sampled noise)."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(1, channels, 8, 8, generator=generator)
    image = torch.nn.functional.interpolate(base, size=(size, size), mode="bicubic", align_corners=False)
    return (0.1 + 0.8 * image).clamp(0, 1)


def dark_pairs(
    seeds: range, *, corrupt: str | None = None, size: int = 32, channels: int = 3, cond: dict | None = None,
    prefix: str = "p",
) -> list[Sample]:
    """Under-exposed noisy pairs: ``noisy = 0.7·clean + N(0, 0.03²)``.

    ``corrupt="black"`` replaces the ground truth by zeros, ``"roll"`` shifts it by half the image
    (a misaligned pair).
    """
    generator = torch.Generator().manual_seed(seeds[0] + 999)
    pairs = []
    for seed in seeds:
        clean = smooth_image(seed, size, channels)
        noisy = (0.7 * clean + 0.03 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
        if corrupt == "black":
            clean = torch.zeros_like(clean)
        elif corrupt == "roll":
            clean = torch.roll(clean, (size // 2, size // 2), dims=(-2, -1))
        pairs.append(Sample(f"{prefix}{seed}", noisy, clean, dict(cond or {})))
    return pairs


import pytest  # noqa: E402


@pytest.fixture
def make_pairs():
    """The ``dark_pairs`` factory (tests run with ``--import-mode=importlib`` and cannot import this file)."""
    return dark_pairs
