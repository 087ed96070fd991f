"""Training data: cached images, synthetic noise on the fly, noisy/clean pairs, and the sampler.

Reproducibility contract: **every training sample is a pure function of ``(seed, position)``**.
The position of slot ``s`` of iteration ``t`` is ``p = t · global_batch + s`` (``global_batch``
= per-process batch size × world size); rank ``r`` of a distributed run takes the slots
``r·B … r·B + B − 1`` of every iteration (``IterationSampler``). From ``p`` a dataset derives

* which image: epoch ``p // n_images`` has its own permutation of the images, seeded by
  ``(seed, epoch)``, and ``p`` picks entry ``p % n_images`` of it (every image once per epoch);
* a ``torch.Generator`` seeded by ``(seed, p)`` that draws the crop position, the dihedral
  transform (4 rotations × flip) and then the noise.

No long-lived random state exists, so a resumed run only needs its iteration number to see
exactly the samples an uninterrupted run sees, and the samples do not depend on the number of
DataLoader workers (or on which worker produced them).

Images are read once when the dataset is built: every file that cannot be read is reported by
name in one ``ImageReadError`` (nothing is skipped silently), and images smaller than the crop
are named in an ``InvalidInputError``. With ``cache='auto'`` (the default) the decoded images are
kept in memory when they fit in ``cache_limit_mb`` (default 4096 MB): 8-bit images as ``uint8``
(CBSD432 is about 200 MB decoded), 16-bit ones as ``uint16``, float ones as ``float32`` — always
lossless. Otherwise each sample re-reads its file. Forked DataLoader workers share the cache
copy-on-write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import ImageReadError, InvalidInputError
from ..image_io import list_images, read_image
from ..noise_model import NoiseModel

__all__ = [
    "DATASETS",
    "ImageStore",
    "IterationSampler",
    "PairedFolderDataset",
    "SyntheticDataset",
    "build_dataset",
    "derive_seed",
    "sample_generator",
]

_PERMUTATION_TAG = 1
_SAMPLE_TAG = 2


def derive_seed(*keys: int) -> int:
    """A 63-bit seed mixed from non-negative integers (order-sensitive, well spread).

    Uses numpy's ``SeedSequence`` hashing, so nearby keys (``(0, 1)`` and ``(0, 2)``) give
    unrelated seeds.
    """
    if any(not isinstance(k, (int, np.integer)) or k < 0 for k in keys):
        raise InvalidInputError(f"derive_seed: keys must be non-negative integers, got {keys}")
    words = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return ((int(words[0]) << 32) | int(words[1])) & ((1 << 63) - 1)


def sample_generator(seed: int, position: int) -> torch.Generator:
    """The CPU generator of training sample ``position``: crop, transform and noise draws."""
    return torch.Generator().manual_seed(derive_seed(seed, _SAMPLE_TAG, position))


class ImageStore:
    """The decoded images of a list of files, read and checked once, cached when they fit.

    Args:
        files: image files (any format ``read_image`` reads).
        channels: convert to 1 or 3 channels on read (``None`` keeps the file's).
        cache: ``True`` (always keep in memory), ``False`` (re-read per access) or ``"auto"``
            (keep when the decoded total is at most ``cache_limit_mb``).
        cache_limit_mb: the ``"auto"`` budget in MiB.

    Raises:
        ImageReadError: one or more files cannot be read; all of them are named.
    """

    def __init__(
        self,
        files: Sequence[Path],
        *,
        channels: int | None = None,
        cache: bool | str = "auto",
        cache_limit_mb: float = 4096,
    ) -> None:
        if cache not in (True, False, "auto"):
            raise InvalidInputError(f"cache must be True, False or 'auto', got {cache!r}")
        if channels not in (None, 1, 3):
            raise InvalidInputError(f"channels must be None, 1 or 3, got {channels!r}")
        self.files = [Path(f) for f in files]
        self.channels = channels
        keep = cache is not False
        limit = float("inf") if cache is True else float(cache_limit_mb) * 2**20
        cached: list[torch.Tensor] = []
        shapes: list[tuple[int, int, int]] = []
        failures: list[str] = []
        total = 0
        for file in self.files:
            try:
                image = read_image(file, channels=channels)  # type: ignore[arg-type]
            except ImageReadError as exc:
                failures.append(str(exc))
                continue
            shapes.append(tuple(image.shape[1:]))  # type: ignore[arg-type]
            if keep:
                packed = _pack(image[0])
                total += packed.numel() * packed.element_size()
                if total > limit:
                    keep, cached = False, []
                else:
                    cached.append(packed)
        if failures:
            listing = "\n  ".join(failures[:20])
            more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
            raise ImageReadError(
                f"{len(failures)} of {len(self.files)} training image(s) cannot be read:\n  {listing}{more}"
            )
        self.shapes = shapes
        self._cache: list[torch.Tensor] | None = cached if keep else None
        self.decoded_bytes = total if keep else None

    @property
    def cached(self) -> bool:
        """Whether the decoded images are held in memory."""
        return self._cache is not None

    def __len__(self) -> int:
        return len(self.files)

    def get(self, index: int) -> torch.Tensor:
        """Image ``index`` as a ``C×H×W`` tensor (``uint8``/``uint16``/``float32``; see ``unit``)."""
        if self._cache is not None:
            return self._cache[index]
        return _pack(read_image(self.files[index], channels=self.channels)[0])  # type: ignore[arg-type]

    def describe(self) -> str:
        """One line saying what is cached, for logs."""
        if self._cache is None:
            return f"{len(self)} images, read from disk per sample (not cached)"
        return f"{len(self)} images cached in memory ({self.decoded_bytes / 2**20:.0f} MiB decoded)"


def _pack(image: torch.Tensor) -> torch.Tensor:
    """Store a ``[0, 1]`` float image in the smallest lossless dtype (uint8, uint16 or float32)."""
    for levels, dtype in ((255.0, torch.uint8), (65535.0, torch.uint16)):
        packed = torch.round(image * levels)
        # read_image computes v / levels in float32; this division reproduces it bit for bit.
        if torch.equal(packed / levels, image):
            return packed.to(dtype).contiguous()
    return image.contiguous()


def unit(image: torch.Tensor) -> torch.Tensor:
    """A stored image (``uint8``/``uint16``/``float32``) as ``float32`` in ``[0, 1]``."""
    if image.dtype == torch.uint8:
        return image.to(torch.float32) / 255.0
    if image.dtype == torch.uint16:
        return image.to(torch.float32) / 65535.0
    return image.to(torch.float32)


def _dihedral(image: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    out = torch.rot90(image, turns, dims=(-2, -1)) if turns else image
    return out.flip(-1) if flip else out


class _CropDataset(Dataset):
    """Shared machinery: image order per epoch, the crop and the dihedral transform."""

    name: ClassVar[str] = ""

    def __init__(self, *, patch_size: int, seed: int, augment: bool) -> None:
        if not isinstance(patch_size, int) or patch_size < 1:
            raise InvalidInputError(f"{self.name}: patch_size must be a positive integer, got {patch_size!r}")
        self.patch_size = patch_size
        self.seed = int(seed)
        self.augment = augment
        self._orders: dict[int, list[int]] = {}

    def _count(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        """The number of images (one epoch); positions beyond it wrap into later epochs."""
        return self._count()

    def image_index(self, position: int) -> int:
        """The image sample ``position`` is cropped from (a fresh permutation every epoch)."""
        count = self._count()
        epoch, offset = divmod(position, count)
        order = self._orders.get(epoch)
        if order is None:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, _PERMUTATION_TAG, epoch))
            order = torch.randperm(count, generator=generator).tolist()
            if len(self._orders) > 4:
                self._orders.clear()
            self._orders[epoch] = order
        return order[offset]

    def _window(self, shape: tuple[int, ...], generator: torch.Generator) -> tuple[int, int, int, bool]:
        height, width = shape[-2:]
        size = self.patch_size
        top = int(torch.randint(height - size + 1, (1,), generator=generator))
        left = int(torch.randint(width - size + 1, (1,), generator=generator))
        if self.augment:
            turns = int(torch.randint(4, (1,), generator=generator))
            flip = bool(torch.randint(2, (1,), generator=generator))
        else:
            turns, flip = 0, False
        return top, left, turns, flip

    def _crop(self, image: torch.Tensor, window: tuple[int, int, int, bool]) -> torch.Tensor:
        top, left, turns, flip = window
        size = self.patch_size
        return _dihedral(unit(image[:, top : top + size, left : left + size]), turns, flip).contiguous()

    def _check_sizes(self, stores: Sequence[ImageStore]) -> None:
        small = sorted(
            {
                f"{file.name} ({shape[1]}×{shape[2]})"
                for store in stores
                for file, shape in zip(store.files, store.shapes)
                if min(shape[1:]) < self.patch_size
            }
        )
        if small:
            raise InvalidInputError(
                f"{self.name}: {len(small)} image(s) are smaller than patch_size={self.patch_size}: "
                f"{', '.join(small[:10])}{' ...' if len(small) > 10 else ''}"
            )


class SyntheticDataset(_CropDataset):
    """Clean images → random crop → random rotation/flip → a NoiseModel, all on the fly.

    ``dataset[p]`` (``p`` a sample position, see the module docstring) returns a dict:

    * ``noisy``: ``C×P×P`` float32, the crop with noise (not clipped unless the model clips);
    * ``clean``: ``C×P×P`` float32 in ``[0, 1]``;
    * ``sigma``: ``C×P×P`` float32 noise std map — only when ``return_sigma`` and the noise
      model provides one;
    * ``index``: the source image's index in ``files``.

    Args:
        root: folder of clean images (PNG/JPEG/TIFF/BMP).
        noise: a ``NoiseModel`` or its config (``dict(type='gaussian', sigma=[0, 50/255])``).
        patch_size: crop side ``P`` in pixels.
        seed: the run's seed.
        augment: draw one of the 8 dihedral transforms per sample.
        channels: convert images to 1 or 3 channels on read (``None`` keeps the file's).
        cache: ``True``, ``False`` or ``"auto"`` (see ``ImageStore``).
        cache_limit_mb: budget of ``cache="auto"`` in MiB.
        recursive: also read images in sub-folders.
        return_sigma: add the σ map (for backbones that take ``cond['sigma']``).
    """

    name: ClassVar[str] = "synthetic"

    def __init__(
        self,
        root: str | Path,
        noise: NoiseModel | Mapping[str, Any],
        patch_size: int = 64,
        *,
        seed: int = 0,
        augment: bool = True,
        channels: int | None = None,
        cache: bool | str = "auto",
        cache_limit_mb: float = 4096,
        recursive: bool = False,
        return_sigma: bool = False,
    ) -> None:
        super().__init__(patch_size=patch_size, seed=seed, augment=augment)
        self.root = Path(root)
        self.noise = build_noise(noise)
        self.return_sigma = return_sigma
        self.store = ImageStore(list_images(self.root, recursive=recursive), channels=channels,
                                cache=cache, cache_limit_mb=cache_limit_mb)
        self._check_sizes([self.store])

    def _count(self) -> int:
        return len(self.store)

    def __getitem__(self, position: int) -> dict[str, torch.Tensor | int]:
        index = self.image_index(position)
        generator = sample_generator(self.seed, position)
        image = self.store.get(index)
        clean = self._crop(image, self._window(tuple(image.shape), generator))
        drawn = self.noise(clean[None], generator)
        item: dict[str, torch.Tensor | int] = {"noisy": drawn.noisy[0], "clean": clean, "index": index}
        if self.return_sigma and drawn.sigma is not None:
            item["sigma"] = drawn.sigma[0].expand_as(clean).contiguous()
        return item

    def describe(self) -> str:
        return f"synthetic: {self.root} ({self.store.describe()}), noise {self.noise!r}, {self.patch_size}px crops"


class PairedFolderDataset(_CropDataset):
    """Aligned noisy/clean image pairs (matched by file stem) → the same crop and transform.

    ``dataset[p]`` returns ``{"noisy", "clean", "index"}`` as ``SyntheticDataset`` does.

    Args:
        noisy_root: folder of noisy images.
        clean_root: folder of clean images with the same stems (extensions may differ).
        patch_size: crop side in pixels.
        seed: the run's seed.
        augment: draw one of the 8 dihedral transforms per sample.
        channels: convert images to 1 or 3 channels on read.
        cache: ``True``, ``False`` or ``"auto"`` (see ``ImageStore``).
        cache_limit_mb: budget of ``cache="auto"`` in MiB (for both folders together).

    Raises:
        InvalidInputError: stems present in one folder only, or pairs of different sizes.
    """

    name: ClassVar[str] = "paired_folder"

    def __init__(
        self,
        noisy_root: str | Path,
        clean_root: str | Path,
        patch_size: int = 64,
        *,
        seed: int = 0,
        augment: bool = True,
        channels: int | None = None,
        cache: bool | str = "auto",
        cache_limit_mb: float = 4096,
    ) -> None:
        super().__init__(patch_size=patch_size, seed=seed, augment=augment)
        self.noisy_root, self.clean_root = Path(noisy_root), Path(clean_root)
        noisy_files, clean_files = match_pairs(self.noisy_root, self.clean_root)
        options = {"channels": channels, "cache": cache, "cache_limit_mb": float(cache_limit_mb) / 2}
        self.noisy_store = ImageStore(noisy_files, **options)  # type: ignore[arg-type]
        self.clean_store = ImageStore(clean_files, **options)  # type: ignore[arg-type]
        mismatched = [
            f"{n.name} {a[1]}×{a[2]} vs {c.name} {b[1]}×{b[2]}"
            for n, c, a, b in zip(noisy_files, clean_files, self.noisy_store.shapes, self.clean_store.shapes)
            if a != b
        ]
        if mismatched:
            raise InvalidInputError(f"paired_folder: noisy and clean sizes differ: {', '.join(mismatched[:10])}")
        self._check_sizes([self.noisy_store])

    def _count(self) -> int:
        return len(self.noisy_store)

    def __getitem__(self, position: int) -> dict[str, torch.Tensor | int]:
        index = self.image_index(position)
        generator = sample_generator(self.seed, position)
        noisy = self.noisy_store.get(index)
        window = self._window(tuple(noisy.shape), generator)
        return {"noisy": self._crop(noisy, window), "clean": self._crop(self.clean_store.get(index), window),
                "index": index}

    def describe(self) -> str:
        return (f"paired_folder: {self.noisy_root} / {self.clean_root} ({self.noisy_store.describe()}), "
                f"{self.patch_size}px crops")


def match_pairs(noisy_root: Path, clean_root: Path) -> tuple[list[Path], list[Path]]:
    """Noisy and clean files matched by stem, sorted; unmatched stems are an error naming them."""
    noisy = {p.stem: p for p in list_images(noisy_root)}
    clean = {p.stem: p for p in list_images(clean_root)}
    only_noisy, only_clean = sorted(set(noisy) - set(clean)), sorted(set(clean) - set(noisy))
    if only_noisy or only_clean:
        raise InvalidInputError(
            f"paired folders {noisy_root} and {clean_root} do not match by file name: "
            f"only noisy: {only_noisy[:10]}, only clean: {only_clean[:10]}"
        )
    stems = sorted(noisy)
    return [noisy[s] for s in stems], [clean[s] for s in stems]


def build_noise(spec: NoiseModel | Mapping[str, Any]) -> NoiseModel:
    """A NoiseModel instance, or one built from the ``NOISE_MODELS`` registry by config."""
    if isinstance(spec, NoiseModel):
        return spec
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise InvalidInputError(f"noise must be a NoiseModel or a dict with 'type', got {spec!r}")
    from noiseshift.registry import NOISE_MODELS

    return NOISE_MODELS.build(dict(spec))


DATASETS: dict[str, type[_CropDataset]] = {
    SyntheticDataset.name: SyntheticDataset,
    PairedFolderDataset.name: PairedFolderDataset,
}
"""Training dataset types by config name (``train_dataloader.dataset.type``)."""


def build_dataset(config: Mapping[str, Any], **defaults: Any) -> _CropDataset:
    """Build a training dataset from ``dict(type=..., ...)``; ``defaults`` fill missing keys.

    Raises:
        InvalidInputError: an unknown type or option.
    """
    options = dict(config)
    kind = options.pop("type", None)
    if kind not in DATASETS:
        raise InvalidInputError(f"unknown training dataset type {kind!r}; known: {sorted(DATASETS)}")
    cls = DATASETS[kind]
    import inspect

    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InvalidInputError(f"dataset {kind!r}: unknown option(s) {unknown}; known: {sorted(accepted)}")
    for key, value in defaults.items():
        if key in accepted:
            options.setdefault(key, value)
    return cls(**options)


class IterationSampler(Sampler[int]):
    """Yields this rank's sample positions for iterations ``start_iter … max_iters − 1``.

    Iteration ``t`` covers the global positions ``t·B·W … (t+1)·B·W − 1`` (``B`` per-rank batch
    size, ``W`` world size); rank ``r`` gets ``t·B·W + r·B + b`` for ``b < B``. Use with a
    ``DataLoader(batch_size=B)`` so each batch is one iteration.
    """

    def __init__(self, *, start_iter: int, max_iters: int, batch_size: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise InvalidInputError(f"rank {rank} is outside world size {world_size}")
        self.start_iter, self.max_iters = start_iter, max_iters
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size

    def __iter__(self):  # type: ignore[no-untyped-def]
        global_batch = self.batch_size * self.world_size
        for iteration in range(self.start_iter, self.max_iters):
            base = iteration * global_batch + self.rank * self.batch_size
            yield from range(base, base + self.batch_size)

    def __len__(self) -> int:
        return max(0, self.max_iters - self.start_iter) * self.batch_size
