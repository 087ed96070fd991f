"""Periodic validation: a fixed set of noisy/clean images scored with PSNR and SSIM.

The set is either a folder of clean images plus a NoiseModel applied with a fixed seed per
image (image ``i`` uses a generator seeded by ``(seed, i)``, so every validation — and every
run — sees the same noisy inputs), or a folder pair of real noisy/clean images.

Scoring convention: the output is clipped to ``[0, 1]`` and compared in float with
``data_range=1`` (``quantize=True`` scores 8-bit levels instead); PSNR per image over all
channels, SSIM with the Gaussian window (``noiseshift.metrics``), both averaged over images.
In a distributed run rank ``r`` scores images ``r, r+W, …`` and the sums are all-reduced.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from ..denoiser import Denoiser
from ..errors import ImageReadError, InvalidInputError
from ..image_io import list_images, read_image
from ..inference import denoise
from ..metrics import psnr, ssim
from ..noise_model import NoiseModel
from .data import build_noise, derive_seed, match_pairs
from .distributed import DistContext

__all__ = ["ValidationSet", "evaluate"]

_VALIDATION_TAG = 3


class ValidationSet:
    """Noisy/clean validation images, deterministic for a given seed.

    Args:
        root: folder of clean images (with ``noise``), or of clean images matched to
            ``noisy_root`` by stem.
        noise: NoiseModel (or config) applied to each clean image; mutually exclusive with
            ``noisy_root``.
        noisy_root: folder of real noisy images with the same stems as ``root``.
        seed: seed of the per-image noise generators.
        max_images: use only the first ``max_images`` files (sorted by name).
        center_crop: crop every image to its central ``center_crop × center_crop`` square
            (cheaper validation during training; ``None`` scores whole images).
        channels: convert images to 1 or 3 channels on read.
        quantize: score 8-bit levels instead of floats.

    Raises:
        ImageReadError: unreadable files, all named.
        InvalidInputError: neither or both of ``noise`` and ``noisy_root``.
    """

    def __init__(
        self,
        root: str | Path,
        noise: NoiseModel | Mapping[str, Any] | None = None,
        *,
        noisy_root: str | Path | None = None,
        seed: int = 0,
        max_images: int | None = None,
        center_crop: int | None = None,
        channels: int | None = None,
        quantize: bool = False,
    ) -> None:
        if (noise is None) == (noisy_root is None):
            raise InvalidInputError("validation: give either a noise model (val_noise) or noisy_root, not both or neither")
        self.root = Path(root)
        self.noise = build_noise(noise) if noise is not None else None
        if noisy_root is None:
            clean_files = list_images(self.root)
            noisy_files: list[Path] | None = None
        else:
            noisy_files, clean_files = match_pairs(Path(noisy_root), self.root)
        if max_images is not None:
            clean_files = clean_files[:max_images]
            noisy_files = noisy_files[:max_images] if noisy_files is not None else None
        self.clean_files, self.noisy_files = clean_files, noisy_files
        self.seed, self.center_crop, self.channels, self.quantize = int(seed), center_crop, channels, quantize
        failures = []
        for file in [*clean_files, *(noisy_files or [])]:
            try:
                read_image(file, channels=channels)  # type: ignore[arg-type]
            except ImageReadError as exc:
                failures.append(str(exc))
        if failures:
            raise ImageReadError(f"{len(failures)} validation image(s) cannot be read:\n  " + "\n  ".join(failures))

    def __len__(self) -> int:
        return len(self.clean_files)

    def _load(self, file: Path) -> torch.Tensor:
        image = read_image(file, channels=self.channels)  # type: ignore[arg-type]
        if self.center_crop:
            height, width = image.shape[-2:]
            size = min(self.center_crop, height, width)
            top, left = (height - size) // 2, (width - size) // 2
            image = image[..., top : top + size, left : left + size].contiguous()
        return image

    def item(self, index: int) -> tuple[str, torch.Tensor, torch.Tensor]:
        """``(name, noisy, clean)`` of image ``index``, each image ``1×C×H×W``."""
        clean = self._load(self.clean_files[index])
        if self.noisy_files is not None:
            return self.clean_files[index].stem, self._load(self.noisy_files[index]), clean
        assert self.noise is not None
        generator = torch.Generator().manual_seed(derive_seed(self.seed, _VALIDATION_TAG, index))
        return self.clean_files[index].stem, self.noise(clean, generator).noisy, clean

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
        for index in range(len(self)):
            yield self.item(index)

    def describe(self) -> str:
        source = f"noise {self.noise!r}, seed {self.seed}" if self.noise is not None else f"noisy {self.noisy_files[0].parent}"  # type: ignore[index]
        crop = f", center crop {self.center_crop}" if self.center_crop else ""
        return f"{len(self)} images from {self.root} ({source}{crop})"


@torch.no_grad()
def evaluate(
    model: Denoiser, valset: ValidationSet, device: torch.device, dist: DistContext | None = None
) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of ``model`` over ``valset``, sharded over ranks.

    Args:
        model: the network (already on ``device``); it is put in eval mode and restored.
        valset: the images.
        device: where to run.
        dist: the distributed context (``None``: this process scores everything).

    Returns:
        ``{"psnr": mean dB, "ssim": mean SSIM, "images": count}`` — identical on all ranks.
    """
    rank, world = (dist.rank, dist.world_size) if dist is not None else (0, 1)
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64)
    try:
        for index in range(rank, len(valset), world):
            _, noisy, clean = valset.item(index)
            output = denoise(model, noisy.to(device), device=device).clamp(0.0, 1.0).cpu()
            totals[0] += float(psnr(output, clean, 1.0, quantize=valset.quantize))
            size_ok = min(clean.shape[-2:]) >= 11
            totals[1] += float(ssim(output, clean, 1.0, quantize=valset.quantize)) if size_ok else float("nan")
            totals[2] += 1
    finally:
        model.train(was_training)
    if dist is not None:
        totals = dist.all_reduce_sum(totals)
    count = max(float(totals[2]), 1.0)
    return {"psnr": float(totals[0]) / count, "ssim": float(totals[1]) / count, "images": int(totals[2])}
