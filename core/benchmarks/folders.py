"""Benchmarks over folders of image files: your own noisy/clean pairs, or clean images + a noise model.

``paired_folder`` scores any set of real noisy / clean pairs laid out as ``root/noisy/*`` and
``root/clean/*`` (or two explicit folders), paired by file stem. ``synthetic`` adds noise from
any registered ``NoiseModel`` to a folder of clean images, seeded per image so that item ``i``
always gets the same noise (``seed + i``).

Both read images lazily (one at a time, in sorted file order), support ``len``, indexing and
``keys()`` (so the runner can skip finished items without decoding them), and score with the
conventions their options set (RGB, data range 1, float, Gaussian SSIM by default).

The module also holds :class:`FilePairs`, the lazy (noisy file, clean file[, window]) list the
PolyU and Nam loaders are built on.

Example::

    bench = PairedFolder("my_pairs")                 # my_pairs/noisy/a.png <-> my_pairs/clean/a.png
    bench = Synthetic("CBSD68", noise={"type": "gaussian", "sigma": 25 / 255}, seed=0)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from ..benchmark import Benchmark, ScoringConventions
from ..errors import ImageReadError, InvalidInputError
from ..image_io import list_images, read_image
from ..noise_model import NoiseModel
from ..types import Sample

__all__ = [
    "FilePairs", "ImagePair", "PairedFolder", "Synthetic", "data_folder", "pair_by_stem", "pair_by_suffix", "pair_names",
    "scoring_conventions",
]

Window = tuple[int, int, int, int]
"""``(top, left, height, width)`` of the part of an image a sample uses."""

_LISTED = 8  # file names shown in an error message before "... and N more"


def _short_list(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f", ... and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def scoring_conventions(
    owner: str,
    *,
    quantize: str = "float",
    ssim: str = "gaussian",
    border_crop: int = 0,
    averaging: str = "image",
    notes: str = "",
) -> ScoringConventions:
    """Validated sRGB ``ScoringConventions`` (data range 1) from user options.

    Raises:
        InvalidInputError: an unknown ``quantize`` / ``ssim`` value or a negative ``border_crop``.
    """
    if quantize not in ("float", "uint8"):
        raise InvalidInputError(f"benchmark {owner!r}: quantize must be 'float' or 'uint8', got {quantize!r}")
    if ssim not in ("gaussian", "uniform"):
        raise InvalidInputError(f"benchmark {owner!r}: ssim must be 'gaussian' or 'uniform', got {ssim!r}")
    if isinstance(border_crop, bool) or not isinstance(border_crop, int) or border_crop < 0:
        raise InvalidInputError(f"benchmark {owner!r}: border_crop must be an integer >= 0, got {border_crop!r}")
    return ScoringConventions(
        color_space="rgb", data_range=1.0, quantize=quantize, border_crop=border_crop,  # type: ignore[arg-type]
        ssim=ssim, averaging=averaging, notes=notes,  # type: ignore[arg-type]
    )


def _check_channels(owner: str, channels: Any) -> None:
    if channels not in (None, 1, 3):
        raise InvalidInputError(f"benchmark {owner!r}: channels must be None, 1 or 3, got {channels!r}")


def _folder(owner: str, path: str | Path, what: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.exists():
        raise InvalidInputError(f"benchmark {owner!r}: {what} folder {folder} does not exist")
    if not folder.is_dir():
        raise InvalidInputError(f"benchmark {owner!r}: {what} path {folder} is not a folder")
    return folder


def _images(owner: str, folder: Path, what: str) -> list[Path]:
    try:
        return list_images(folder)
    except ImageReadError as exc:
        raise InvalidInputError(f"benchmark {owner!r}: {what} folder: {exc}") from exc


def _by_name(owner: str, named: Iterable[tuple[str, Path]], what: str) -> dict[str, Path]:
    """``{name: file}``; two files with one name (``a.png`` and ``a.jpg``) make pairing ambiguous."""
    found: dict[str, Path] = {}
    clashes: list[str] = []
    for name, file in named:
        if name in found:
            clashes.append(f"{found[name].name} / {file.name}")
        found[name] = file
    if clashes:
        raise InvalidInputError(
            f"benchmark {owner!r}: several {what} files share a name, so pairing is ambiguous: "
            f"{_short_list(clashes)}"
        )
    return found


def _by_stem(owner: str, files: Iterable[Path], what: str) -> dict[str, Path]:
    return _by_name(owner, ((file.stem, file) for file in files), what)


def pair_names(
    owner: str,
    noisy: Iterable[tuple[str, Path]],
    clean: Iterable[tuple[str, Path]],
    *,
    noisy_label: str = "noisy",
    clean_label: str = "clean",
    rule: str = "files are paired by name without extension",
) -> list[tuple[str, Path, Path]]:
    """Pair ``(name, file)`` lists on ``name``; returns ``(name, noisy, clean)`` sorted by name.

    Raises:
        InvalidInputError: a file has no partner (every unpaired file is listed, up to a
            limit), or a name appears twice on one side.
    """
    noisy_files = _by_name(owner, noisy, noisy_label)
    clean_files = _by_name(owner, clean, clean_label)
    lonely_noisy = sorted(noisy_files[s].name for s in noisy_files.keys() - clean_files.keys())
    lonely_clean = sorted(clean_files[s].name for s in clean_files.keys() - noisy_files.keys())
    if lonely_noisy or lonely_clean:
        parts = []
        if lonely_noisy:
            parts.append(f"{len(lonely_noisy)} {noisy_label} file(s) without a {clean_label} partner: "
                         f"{_short_list(lonely_noisy)}")
        if lonely_clean:
            parts.append(f"{len(lonely_clean)} {clean_label} file(s) without a {noisy_label} partner: "
                         f"{_short_list(lonely_clean)}")
        raise InvalidInputError(f"benchmark {owner!r}: unpaired files ({'; '.join(parts)}); {rule}")
    return [(name, noisy_files[name], clean_files[name]) for name in sorted(noisy_files)]


def pair_by_stem(owner: str, noisy: Iterable[Path], clean: Iterable[Path]) -> list[tuple[str, Path, Path]]:
    """Pair two file lists by stem (``a.png`` with ``a.jpg``); see :func:`pair_names`."""
    return pair_names(owner, ((f.stem, f) for f in noisy), ((f.stem, f) for f in clean))


def data_folder(owner: str, root: str | Path, subfolder: str) -> Path:
    """``root/subfolder`` when it exists, else ``root`` (users may point at either).

    Raises:
        InvalidInputError: ``root`` is missing or not a folder.
    """
    base = _folder(owner, root, "root")
    nested = base / subfolder
    return nested if nested.is_dir() else base


def pair_by_suffix(
    owner: str, folder: Path, noisy_suffix: str, clean_suffix: str, *, hint: str = ""
) -> list[tuple[str, Path, Path]]:
    """Pair ``<name>_<noisy_suffix>.*`` with ``<name>_<clean_suffix>.*`` images of one folder.

    Only the suffix is stripped (names may contain more underscores, even doubled ones); it
    matches in any case (PolyU's crops say ``_real``, its originals ``_Real``). Other files are
    ignored (e.g. CC's ``_ours`` results).

    Returns:
        ``(name, noisy file, clean file)`` sorted by name.

    Raises:
        InvalidInputError: the folder holds no such files, or some have no partner.
    """
    files = _images(owner, folder, "data")

    def named(suffix: str) -> list[tuple[str, Path]]:
        tail = f"_{suffix}".lower()
        return [(f.stem[: -len(tail)], f) for f in files if f.stem.lower().endswith(tail)]

    noisy, clean = named(noisy_suffix), named(clean_suffix)
    if not noisy and not clean:
        where = f"; point root at the dataset folder (with {hint}) or at {hint} itself" if hint else ""
        raise InvalidInputError(
            f"benchmark {owner!r}: no <name>_{noisy_suffix} / <name>_{clean_suffix} image pairs in {folder}{where}"
        )
    return pair_names(
        owner, noisy, clean, noisy_label=f"_{noisy_suffix}", clean_label=f"_{clean_suffix}",
        rule=f"<name>_{noisy_suffix} pairs with <name>_{clean_suffix}",
    )


@dataclass(frozen=True)
class ImagePair:
    """One item of a :class:`FilePairs` benchmark.

    Attributes:
        key: the sample key.
        noisy: the noisy image file.
        clean: the ground-truth file.
        cond: the sample's conditions (``sensor``, ``iso``, ...).
        window: ``(top, left, height, width)`` of the part of both images the item uses, or
            ``None`` for the whole image.
    """

    key: str
    noisy: Path
    clean: Path
    cond: Mapping[str, Any] = field(default_factory=dict)
    window: Window | None = None


class FilePairs(Benchmark):
    """Base of benchmarks whose items are (noisy file, clean file[, window]) pairs read lazily.

    Subclasses build the pair list in ``__init__`` and call ``super().__init__(pairs)``. Items
    are read on access; the most recently decoded pair of files is cached, so the windows
    (tiles) of one large image are decoded once when they are read in order.
    """

    def __init__(self, pairs: Sequence[ImagePair], *, channels: Literal[1, 3] | None = None) -> None:
        label = self.name or type(self).__name__
        _check_channels(label, channels)
        keys = [pair.key for pair in pairs]
        if len(set(keys)) != len(keys):
            duplicates = sorted({key for key in keys if keys.count(key) > 1})
            raise InvalidInputError(f"benchmark {label!r}: duplicate sample keys {_short_list(duplicates)}")
        self.pairs: list[ImagePair] = list(pairs)
        self.channels = channels
        self._cached: tuple[tuple[Path, Path], torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def keys(self) -> list[str]:
        """Sample keys in item order (cheap: no image is read)."""
        return [pair.key for pair in self.pairs]

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self.pairs)):
            yield self[index]

    def __getitem__(self, index: int) -> Sample:
        """Read item ``index`` (``0 <= index < len``).

        Raises:
            IndexError: ``index`` is out of range.
            ImageReadError: a file cannot be read (the message names it).
            InvalidInputError: the two images differ in shape, or a window does not fit.
        """
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"benchmark indices are integers, got {type(index).__name__}")
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"benchmark {self.name!r} has {len(self.pairs)} items; index {index} is out of range")
        pair = self.pairs[index]
        noisy, clean = self._read_pair(pair)
        if pair.window is not None:
            top, left, height, width = pair.window
            if top + height > noisy.shape[-2] or left + width > noisy.shape[-1]:
                raise InvalidInputError(
                    f"benchmark {self.name!r}: {pair.key}: window {pair.window} (top, left, height, width) "
                    f"does not fit the {noisy.shape[-2]}×{noisy.shape[-1]} image {pair.noisy}"
                )
            noisy = noisy[..., top : top + height, left : left + width]
            clean = clean[..., top : top + height, left : left + width]
        # Copies: a caller that edits a sample in place must not change the cached pair.
        return Sample(pair.key, noisy.clone(), clean.clone(), dict(pair.cond))  # type: ignore[arg-type]

    def _read_pair(self, pair: ImagePair) -> tuple[torch.Tensor, torch.Tensor]:
        files = (pair.noisy, pair.clean)
        if self._cached is not None and self._cached[0] == files:
            return self._cached[1], self._cached[2]
        noisy = read_image(pair.noisy, channels=self.channels)
        clean = read_image(pair.clean, channels=self.channels)
        if noisy.shape != clean.shape:
            raise InvalidInputError(
                f"benchmark {self.name!r}: {pair.key}: noisy {pair.noisy.name} is "
                f"{_shape_text(noisy)} but clean {pair.clean.name} is {_shape_text(clean)}"
            )
        self._cached = (files, noisy, clean)
        return noisy, clean


def _shape_text(image: torch.Tensor) -> str:
    return f"{image.shape[-2]}×{image.shape[-1]}×{image.shape[1]} (H×W×C)"


class PairedFolder(FilePairs):
    """Your own real noisy / clean pairs: ``root/noisy/<name>.*`` with ``root/clean/<name>.*``.

    Files are paired by stem (name without extension, so ``a.png`` pairs with ``a.jpg``); the
    sample key is the stem. Any file without a partner is an error that lists them.

    Args:
        root: folder with ``noisy/`` and ``clean/`` subfolders (not needed when both
            ``noisy_dir`` and ``clean_dir`` are given).
        noisy_dir: the noisy images (default ``root/noisy``).
        clean_dir: the ground-truth images (default ``root/clean``).
        channels: ``None`` keeps each file's channels; ``3`` makes grayscale RGB; ``1`` luma.
        quantize: ``"float"`` (default) scores float outputs; ``"uint8"`` rounds to 8 bits first.
        ssim: ``"gaussian"`` (default, Wang et al. / MATLAB) or ``"uniform"`` (skimage default).
        border_crop: pixels ignored on every side when scoring.

    Raises:
        InvalidInputError: a folder is missing or holds no images, or files are unpaired.
    """

    name = "paired_folder"
    domain = "srgb"
    conventions = scoring_conventions("paired_folder")  # the defaults; options change them per instance

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        noisy_dir: str | Path | None = None,
        clean_dir: str | Path | None = None,
        channels: Literal[1, 3] | None = None,
        quantize: Literal["float", "uint8"] = "float",
        ssim: Literal["gaussian", "uniform"] = "gaussian",
        border_crop: int = 0,
    ) -> None:
        if root is None and (noisy_dir is None or clean_dir is None):
            raise InvalidInputError(
                f"benchmark {self.name!r}: give root (with noisy/ and clean/ subfolders) or both noisy_dir and clean_dir"
            )
        base = _folder(self.name, root, "root") if root is not None else None
        noisy = _folder(self.name, noisy_dir if noisy_dir is not None else base / "noisy", "noisy")  # type: ignore[operator]
        clean = _folder(self.name, clean_dir if clean_dir is not None else base / "clean", "clean")  # type: ignore[operator]
        self.conventions = scoring_conventions(self.name, quantize=quantize, ssim=ssim, border_crop=border_crop)
        pairs = pair_by_stem(self.name, _images(self.name, noisy, "noisy"), _images(self.name, clean, "clean"))
        super().__init__([ImagePair(stem, n, c) for stem, n, c in pairs], channels=channels)
        self.noisy_dir, self.clean_dir = noisy, clean
        self._options = {"channels": channels, "quantize": quantize, "ssim": ssim, "border_crop": border_crop}

    def config(self) -> dict[str, Any]:
        return {"noisy_dir": str(self.noisy_dir), "clean_dir": str(self.clean_dir), **self._options}


def _noise_model(owner: str, noise: NoiseModel | Mapping[str, Any] | str) -> tuple[NoiseModel, dict[str, Any]]:
    """Build the noise model a ``noise=`` option names; returns it and its JSON config."""
    from ..registry import NOISE_MODELS

    if isinstance(noise, NoiseModel):
        return noise, {"type": noise.name, **noise.config()}
    if isinstance(noise, str):
        noise = {"type": noise}
    if not isinstance(noise, Mapping) or "type" not in noise:
        raise InvalidInputError(
            f"benchmark {owner!r}: noise must be a NoiseModel, a registry name or a config such as "
            f"{{'type': 'gaussian', 'sigma': 0.1}}, got {noise!r}"
        )
    model = NOISE_MODELS.build(dict(noise))
    if not isinstance(model, NoiseModel):
        raise InvalidInputError(f"benchmark {owner!r}: {noise['type']!r} did not build a NoiseModel")
    return model, {"type": str(noise["type"]), **model.config()}


class Synthetic(Benchmark):
    """Clean images plus synthetic noise from any registered noise model (e.g. AWGN on CBSD68).

    Item ``i`` (files in sorted order) gets noise drawn from a CPU ``torch.Generator`` seeded
    with ``seed + i``, so an item's noise does not depend on which other items are read, in
    which order, or on which rank. When the noise model returns a σ map it is passed on as
    ``cond["sigma"]`` (``1×1×H×W`` or ``1×C×H×W``; the nominal σ, before any clipping).

    Args:
        root: folder of clean images.
        noise: the noise model: a config (``{"type": "gaussian", "sigma": 0.1}``), a registry
            name, or a ``NoiseModel``; default AWGN σ = 25/255.
        seed: base seed.
        clip: clip the noisy image to ``[0, 1]`` (default, as a saved noisy image would be and
            as the ``Sample`` contract asks). ``False`` keeps the unclipped values that the AWGN
            literature (DnCNN, FFDNet) feeds its networks; those samples then leave ``[0, 1]``.
        channels: ``None`` keeps each file's channels; ``3`` makes grayscale RGB; ``1`` luma.
        quantize: ``"float"`` (default) or ``"uint8"`` scoring.
        ssim: ``"gaussian"`` (default) or ``"uniform"``.
        border_crop: pixels ignored on every side when scoring.

    Raises:
        InvalidInputError: the folder is missing or empty, or the noise option is invalid.
    """

    name = "synthetic"
    domain = "srgb"
    conventions = scoring_conventions("synthetic")  # the defaults; options change them per instance

    def __init__(
        self,
        root: str | Path,
        noise: NoiseModel | Mapping[str, Any] | str | None = None,
        *,
        seed: int = 0,
        clip: bool = True,
        channels: Literal[1, 3] | None = None,
        quantize: Literal["float", "uint8"] = "float",
        ssim: Literal["gaussian", "uniform"] = "gaussian",
        border_crop: int = 0,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidInputError(f"benchmark {self.name!r}: seed must be an integer >= 0, got {seed!r}")
        _check_channels(self.name, channels)
        self.root = _folder(self.name, root, "clean image")
        self.files = _images(self.name, self.root, "clean image")
        _by_stem(self.name, self.files, "clean")  # keys are stems: they must be unique
        self.noise_model, self.noise_config = _noise_model(
            self.name, {"type": "gaussian", "sigma": 25 / 255} if noise is None else noise
        )
        self.seed, self.clip, self.channels = seed, bool(clip), channels
        notes = f"noise {self.noise_config}, seed {seed} + item index, {'clipped to [0, 1]' if clip else 'unclipped'}"
        self.conventions = scoring_conventions(self.name, quantize=quantize, ssim=ssim, border_crop=border_crop,
                                               notes=notes)
        self._options = {"channels": channels, "quantize": quantize, "ssim": ssim, "border_crop": border_crop}

    def __len__(self) -> int:
        return len(self.files)

    def keys(self) -> list[str]:
        """Sample keys (file stems) in item order."""
        return [file.stem for file in self.files]

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self.files)):
            yield self[index]

    def __getitem__(self, index: int) -> Sample:
        """Read clean image ``index`` and add its noise (seed ``seed + index``)."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"benchmark indices are integers, got {type(index).__name__}")
        if not 0 <= index < len(self.files):
            raise IndexError(f"benchmark {self.name!r} has {len(self.files)} items; index {index} is out of range")
        file = self.files[index]
        clean = read_image(file, channels=self.channels)
        generator = torch.Generator().manual_seed(self.seed + index)
        drawn = self.noise_model(clean, generator)
        noisy = drawn.noisy.clamp(0, 1) if self.clip else drawn.noisy
        cond: dict[str, Any] = {}
        if drawn.sigma is not None:
            cond["sigma"] = drawn.sigma
        return Sample(file.stem, noisy.to(torch.float32).contiguous(), clean, cond)  # type: ignore[arg-type]

    def config(self) -> dict[str, Any]:
        return {"root": str(self.root), "noise": self.noise_config, "seed": self.seed, "clip": self.clip,
                **self._options}


BENCHMARKS = [PairedFolder, Synthetic]
