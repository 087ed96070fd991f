"""DND, the Darmstadt Noise Dataset (Plötz & Roth, CVPR 2017): 50 real photographs, no ground truth.

Layout of the download (``root``)::

    info.mat                       MAT v7.3 struct array ``info`` (1×50): boundingboxes, camera,
                                   nlf, sigma_srgb, sigma_raw
    images_srgb/0001.mat … 0050.mat   MAT v7.3, ``InoisySRGB`` (MATLAB H×W×3 single, [0, 1])
    images_raw/0001.mat  … 0050.mat   MAT v7.3, ``Inoisy`` (MATLAB H×W single Bayer mosaic)

Each image has 20 boxes ``[r1 c1 r2 c2]`` (1-based, inclusive; 512×512 in the release); a
sample is one box crop, keyed ``"%04d_%02d"`` (image, box, both 1-based). Scores come from the
DND server, so the benchmark has no ground truth and writes the submission the server takes:
``bundled/%04d.mat`` per image with ``Idenoised`` (1×K cell of float32 crops), ``israw`` and
``eval_version = "1.0"``.

MAT v7.3 files are HDF5: h5py returns every MATLAB matrix transposed, and that includes the
camera's 2×2 Bayer ``pattern``. The CFA of the image in MATLAB order is the pattern in MATLAB
order (it matches ``bayertype`` for all 50 images of the release). Scripts that compare the
un-transposed h5py pattern with RGGB variants flip the GBRG (Nexus 6P) and GRBG (RX100) images
the wrong way and end up with BGGR; here raw crops are flipped by the pattern in MATLAB order
so every packed sample really is RGGB, and the submission flips them back.

Packing uses ``noiseshift.benchmarks.rawutil`` (``realign_to_rggb`` then ``pack_bayer``);
``pack_realigned`` / ``unpack_realigned`` wrap the pair and are shared with SIDD.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..benchmark import Benchmark, ScoringConventions
from ..errors import ImageReadError, InvalidInputError
from ..types import Sample
from .matfile import is_v73, read_array, read_region, read_variable, variable_shape, write_mat_v5
from .rawutil import bayer_pattern, pack_bayer, realign_from_rggb, realign_to_rggb, unpack_bayer

__all__ = [
    "BAYER_CODES",
    "DND",
    "DNDImageInfo",
    "bundle_dnd_submission",
    "pack_realigned",
    "pattern_codes",
    "pattern_name",
    "read_dnd_info",
    "unpack_realigned",
]

# -- Bayer patterns ------------------------------------------------------------------------

BAYER_CODES: dict[str, int] = {"r": 1, "g": 2, "b": 3}
"""The colour codes of DND's ``camera.pattern`` (1 = R, 2 = G, 3 = B)."""


def pattern_name(codes: np.ndarray | Any) -> str:
    """The row-major name (``"gbrg"``) of a 2×2 array of DND colour codes.

    Raises:
        InvalidInputError: not a 2×2 array of codes forming one of the four Bayer patterns.
    """
    array = np.asarray(codes)
    if array.shape != (2, 2) or not np.all(np.isin(array, (1, 2, 3))):
        raise InvalidInputError(
            f"Bayer pattern {array.tolist()}: expected a 2×2 array of codes 1 (R), 2 (G), 3 (B)"
        )
    return bayer_pattern("".join("xrgb"[int(code)] for code in array.ravel()))


def pattern_codes(name: str) -> np.ndarray:
    """The 2×2 DND colour codes of a pattern name (``"gbrg"`` → ``[[2, 3], [1, 2]]``)."""
    return np.array([BAYER_CODES[letter] for letter in bayer_pattern(name)]).reshape(2, 2)


def pack_realigned(mosaic: torch.Tensor | np.ndarray, pattern: str) -> torch.Tensor:
    """Flip a Bayer mosaic to RGGB (``realign_to_rggb``) and pack it to ``4×H/2×W/2`` (R, Gr, Gb, B).

    Flipping rather than taking each colour from its own site makes every packed position one
    true RGGB 2×2 cell, as in the DND raw scripts; ``unpack_realigned`` restores the layout.
    """
    x = torch.as_tensor(np.ascontiguousarray(mosaic)) if isinstance(mosaic, np.ndarray) else mosaic
    return pack_bayer(realign_to_rggb(x.to(torch.float32), pattern), "rggb")


def unpack_realigned(packed: torch.Tensor, pattern: str) -> torch.Tensor:
    """Inverse of ``pack_realigned``: ``...×4×h×w`` RGGB planes to a ``...×2h×2w`` mosaic in ``pattern``."""
    return realign_from_rggb(unpack_bayer(packed, "rggb"), pattern)


def _crop_pattern(pattern: str, row0: int, col0: int) -> str:
    """The pattern seen by a crop starting at 0-based ``(row0, col0)``."""
    return pattern_name(np.roll(pattern_codes(pattern), (-(row0 % 2), -(col0 % 2)), axis=(0, 1)))


# -- info.mat ------------------------------------------------------------------------------

DND_IMAGES = 50
DND_BOXES = 20
DND_BOX_SIZE = 512


@dataclass(frozen=True)
class DNDImageInfo:
    """What ``info.mat`` says about one DND image (all arrays in MATLAB order).

    Attributes:
        index: 1-based image number (file ``%04d.mat``).
        boxes: ``K×4`` int64 ``[r1, c1, r2, c2]``, 1-based and inclusive.
        camera: camera model (``"Nexus6P"``, ``"SonyA7R"``, ``"OMD_EM10"``, ``"SonyRX100"``).
        pattern: Bayer pattern of the raw image in MATLAB orientation (``"gbrg"``), from the
            2×2 ``camera.pattern`` codes read in MATLAB order.
        bayertype: the pattern's name as stored in ``camera.bayertype``, or ``""`` when absent.
        nlf: ``(a, b)`` of the raw noise level function ``σ² = a·x + b``.
        sigma_srgb: ``K`` noise standard deviations of the sRGB boxes.
        sigma_raw: ``K×2×2`` raw noise standard deviations per box and CFA site (row, col parity).
        blacklevel: raw black level (``nan`` when absent).
        whitelevel: raw white level (``nan`` when absent).
    """

    index: int
    boxes: np.ndarray
    camera: str
    pattern: str
    bayertype: str
    nlf: tuple[float, float]
    sigma_srgb: np.ndarray
    sigma_raw: np.ndarray
    blacklevel: float
    whitelevel: float


def _scalar(file: Path, what: str, value: Any) -> float:
    array = np.asarray(value, dtype=float) if not isinstance(value, (dict, list, str)) else None
    if array is None or array.size != 1:
        raise InvalidInputError(f"{file}: {what} must be a scalar, got {value!r}")
    return float(array.ravel()[0])


def _optional_scalar(file: Path, record: Mapping[str, Any], name: str, where: str) -> float:
    return _scalar(file, f"{where}.{name}", record[name]) if name in record else float("nan")


def _field(file: Path, record: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in record:
        raise InvalidInputError(f"{file}: {where} has no field {name!r}; fields: {', '.join(record)}")
    return record[name]


def read_dnd_info(path: str | Path, *, strict: bool = False) -> list[DNDImageInfo]:
    """Parse and validate DND's ``info.mat``.

    Sizes are read from the file. With ``strict`` the release's counts are enforced as well:
    50 images × 20 boxes of 512×512.

    Args:
        path: the ``info.mat`` file (MAT v7.3 as released; a v5 copy also reads).
        strict: enforce the release's counts and box size.

    Returns:
        One ``DNDImageInfo`` per image, in file order.

    Raises:
        ImageReadError: the file is missing or unreadable.
        InvalidInputError: a variable/field is missing or has the wrong shape or content.
    """
    file = Path(path)
    info = read_variable(file, "info")
    if isinstance(info, dict):
        info = [info]
    if not isinstance(info, list) or not info:
        raise InvalidInputError(f"{file}: variable 'info' must be a 1×N struct array, got {type(info).__name__}")
    if strict and len(info) != DND_IMAGES:
        raise InvalidInputError(f"{file}: 'info' has {len(info)} images; the DND release has {DND_IMAGES}")
    images: list[DNDImageInfo] = []
    for number, record in enumerate(info, start=1):
        where = f"info({number})"
        boxes = np.asarray(_field(file, record, "boundingboxes", where), dtype=float)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.shape[0] == 0:
            raise InvalidInputError(f"{file}: {where}.boundingboxes has shape {boxes.shape}; expected K×4")
        if not np.all(boxes == np.round(boxes)):
            raise InvalidInputError(f"{file}: {where}.boundingboxes holds non-integer values")
        boxes = boxes.astype(np.int64)
        count = boxes.shape[0]
        if np.any(boxes[:, :2] < 1) or np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
            raise InvalidInputError(f"{file}: {where}.boundingboxes are not 1-based [r1 c1 r2 c2] with r1<=r2, c1<=c2")
        if strict:
            sizes = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1], axis=1)
            if count != DND_BOXES or np.any(sizes != DND_BOX_SIZE):
                raise InvalidInputError(
                    f"{file}: {where} has {count} boxes of sizes {sorted({tuple(s) for s in sizes.tolist()})}; "
                    f"the DND release has {DND_BOXES} boxes of {DND_BOX_SIZE}×{DND_BOX_SIZE}"
                )
        camera = _field(file, record, "camera", where)
        if not isinstance(camera, dict):
            raise InvalidInputError(f"{file}: {where}.camera must be a struct")
        raw_pattern = np.asarray(_field(file, camera, "pattern", f"{where}.camera"))
        try:
            pattern = pattern_name(raw_pattern)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{file}: {where}.camera.pattern: {exc}") from exc
        bayertype = str(camera.get("bayertype", "")).strip().lower()
        if bayertype and bayertype != pattern:
            raise InvalidInputError(
                f"{file}: {where}.camera.pattern {raw_pattern.tolist()} (MATLAB order, {pattern}) "
                f"contradicts bayertype {bayertype!r}; was the pattern written without MATLAB's transpose?"
            )
        nlf = _field(file, record, "nlf", where)
        if not isinstance(nlf, dict):
            raise InvalidInputError(f"{file}: {where}.nlf must be a struct with fields a, b")
        a = _scalar(file, f"{where}.nlf.a", _field(file, nlf, "a", f"{where}.nlf"))
        b = _scalar(file, f"{where}.nlf.b", _field(file, nlf, "b", f"{where}.nlf"))
        sigma_srgb = np.asarray(_field(file, record, "sigma_srgb", where), dtype=float)
        if sigma_srgb.size != count or sigma_srgb.ndim != 2 or 1 not in sigma_srgb.shape:
            raise InvalidInputError(f"{file}: {where}.sigma_srgb has shape {sigma_srgb.shape}; expected {count}×1")
        sigma_raw = np.asarray(_field(file, record, "sigma_raw", where), dtype=float)
        if sigma_raw.shape != (count, 2, 2):
            raise InvalidInputError(f"{file}: {where}.sigma_raw has shape {sigma_raw.shape}; expected {count}×2×2")
        images.append(
            DNDImageInfo(
                index=number,
                boxes=boxes,
                camera=str(camera.get("type", "")).strip(),
                pattern=pattern,
                bayertype=bayertype,
                nlf=(a, b),
                sigma_srgb=sigma_srgb.ravel(),
                sigma_raw=sigma_raw,
                blacklevel=_optional_scalar(file, camera, "blacklevel", f"{where}.camera"),
                whitelevel=_optional_scalar(file, camera, "whitelevel", f"{where}.camera"),
            )
        )
    return images


# -- submission ----------------------------------------------------------------------------

CROP_KEY = "Idenoised_crop"
EVAL_VERSION = "1.0"


def _bundle_variables(crops: list[np.ndarray], israw: bool) -> dict[str, Any]:
    cells = np.empty((1, len(crops)), dtype=object)  # a MATLAB 1×K cell; not np.object (gone in NumPy 1.24)
    for index, crop in enumerate(crops):
        cells[0, index] = crop
    return {"Idenoised": cells, "israw": np.bool_(israw), "eval_version": EVAL_VERSION}


def bundle_dnd_submission(
    folder: str | Path,
    *,
    n_images: int = DND_IMAGES,
    n_boxes: int = DND_BOXES,
    israw: bool = False,
    overwrite: bool = False,
) -> Path:
    """Bundle per-crop results into the files the DND server takes (the kit's bundler).

    Reads ``folder/%04d_%02d.mat`` (variable ``Idenoised_crop``, float32 ``h×w×3`` or ``h×w``)
    for every image and box and writes ``folder/bundled/%04d.mat`` with ``Idenoised`` (1×K
    cell), ``israw`` (logical) and ``eval_version`` (``"1.0"``). Upload the content of
    ``bundled/``.

    Args:
        folder: the folder holding the per-crop files.
        n_images: number of images (50 in the release).
        n_boxes: boxes per image (20 in the release).
        israw: whether the crops are raw mosaics.
        overwrite: replace existing bundle files.

    Returns:
        The ``bundled`` folder.

    Raises:
        ImageReadError: a crop file is missing or unreadable.
        InvalidInputError: a crop file lacks ``Idenoised_crop`` or holds a wrong array.
        OutputExistsError: a bundle exists and ``overwrite`` is off.
    """
    root = Path(folder)
    out = root / "bundled"
    for image in range(1, n_images + 1):
        crops = []
        for box in range(1, n_boxes + 1):
            file = root / f"{image:04d}_{box:02d}.mat"
            crop = read_array(file, CROP_KEY, ndim=2 if israw else 3)
            if not israw and crop.shape[2] != 3:
                raise InvalidInputError(f"{file}: {CROP_KEY!r} has shape {crop.shape}; expected h×w×3")
            crops.append(crop.astype(np.float32))
        write_mat_v5(out / f"{image:04d}.mat", _bundle_variables(crops, israw), overwrite=overwrite)
    return out


# -- the benchmark -------------------------------------------------------------------------

Mode = Literal["srgb", "raw"]
_IMAGE_KEY = {"srgb": "InoisySRGB", "raw": "Inoisy"}
_IMAGE_DIR = {"srgb": "images_srgb", "raw": "images_raw"}


class DND(Benchmark):
    """The DND benchmark: 1000 real-noise crops (50 images × 20 boxes), scored by the DND server.

    sRGB samples are ``1×3×512×512`` crops of ``InoisySRGB``. Raw samples are crops of the
    ``Inoisy`` mosaic re-aligned to RGGB (flipped by the camera's true pattern) and packed to
    ``1×4×256×256``; the submission undoes both.

    Conditions per sample: ``nlf`` = ``(a, b)`` of the raw noise level function (``σ² = a·x + b``),
    ``sigma`` = the box's ``sigma_srgb`` (a float) in sRGB mode, or in raw mode a
    ``1×4×h×w`` map holding the box's ``sigma_raw`` of each packed RGGB plane; ``camera`` and
    ``sensor`` = the camera model; ``domain``.

    Args:
        root: the DND folder (holding ``info.mat`` and ``images_srgb/`` or ``images_raw/``).
        mode: ``"srgb"`` or ``"raw"``.
        strict: also check the release's counts (50 images × 20 boxes of 512×512).

    Raises:
        ImageReadError: ``info.mat`` or an image file is missing or unreadable.
        InvalidInputError: an option is invalid, or a file has a wrong variable or shape, or a
            box lies outside its image.
    """

    name = "dnd"
    domain = "srgb"
    has_ground_truth = False

    def __init__(self, root: str, mode: Mode = "srgb", strict: bool = False) -> None:
        if mode not in ("srgb", "raw"):
            raise InvalidInputError(f"dnd: mode must be 'srgb' or 'raw', got {mode!r}")
        self.root = Path(root)
        self.mode: Mode = mode
        self.strict = bool(strict)
        self.domain = mode  # type: ignore[misc]  # an instance reports its own domain
        self.conventions = ScoringConventions(
            color_space="rgb" if mode == "srgb" else "raw",
            data_range=1.0,
            quantize="float",
            border_crop=0,
            ssim="gaussian",
            averaging="crop",
            notes=(
                "DND ships no ground truth: PSNR/SSIM are computed by the DND server from the "
                "bundled submission (its exact formula is unpublished). Submissions hold float32 "
                "crops in [0, 1], "
                + ("H×W×3 sRGB." if mode == "srgb" else "H×W raw mosaics in the original Bayer layout.")
            ),
        )
        if not self.root.is_dir():
            raise ImageReadError(f"dnd: root {self.root} is not a folder (expected info.mat and {_IMAGE_DIR[mode]}/)")
        self.images = read_dnd_info(self.root / "info.mat", strict=self.strict)
        self._key = _IMAGE_KEY[mode]
        self._check_images()
        self._index = {
            f"{image.index:04d}_{box:02d}": (image, box - 1)
            for image in self.images
            for box in range(1, len(image.boxes) + 1)
        }

    def config(self) -> dict[str, Any]:
        return {"root": str(self.root), "mode": self.mode, "strict": self.strict}

    def image_file(self, index: int) -> Path:
        """The image file of 1-based image ``index`` in the current mode."""
        return self.root / _IMAGE_DIR[self.mode] / f"{index:04d}.mat"

    def _check_images(self) -> None:
        for image in self.images:
            file = self.image_file(image.index)
            shape = variable_shape(file, self._key)
            channels_ok = len(shape) == 3 and shape[2] == 3 if self.mode == "srgb" else len(shape) == 2
            if not channels_ok:
                want = "H×W×3" if self.mode == "srgb" else "H×W"
                raise InvalidInputError(f"{file}: variable {self._key!r} has MATLAB shape {shape}; expected {want}")
            outside = (image.boxes[:, 2] > shape[0]) | (image.boxes[:, 3] > shape[1])
            if outside.any():
                box = int(np.argmax(outside)) + 1
                raise InvalidInputError(
                    f"{file}: box {box} {image.boxes[box - 1].tolist()} of info.mat lies outside the "
                    f"{shape[0]}×{shape[1]} image"
                )
            if self.mode == "raw":
                sizes = image.boxes[:, 2:] - image.boxes[:, :2] + 1
                if np.any(sizes % 2):
                    raise InvalidInputError(
                        f"{file}: raw boxes need even sizes to pack a Bayer mosaic, got {sizes.tolist()}"
                    )

    def __len__(self) -> int:
        return len(self._index)

    def keys(self) -> list[str]:
        """Every sample key, in iteration order."""
        return list(self._index)

    def _crops(self, image: DNDImageInfo) -> Iterator[np.ndarray]:
        file = self.image_file(image.index)
        whole = None if is_v73(file) else read_array(file, self._key)
        for r1, c1, r2, c2 in image.boxes.tolist():
            rows, cols = slice(r1 - 1, r2), slice(c1 - 1, c2)
            crop = whole[rows, cols] if whole is not None else read_region(file, self._key, rows, cols)
            crop = np.asarray(crop, dtype=np.float32)
            if not np.isfinite(crop).all():
                raise ImageReadError(f"{file}: the crop [{r1} {c1} {r2} {c2}] holds NaN/inf values")
            yield crop

    def _box_pattern(self, image: DNDImageInfo, box: int) -> str:
        r1, c1 = image.boxes[box, :2]
        return _crop_pattern(image.pattern, int(r1) - 1, int(c1) - 1)

    def __iter__(self) -> Iterator[Sample]:
        for image in self.images:
            for box, crop in enumerate(self._crops(image)):
                key = f"{image.index:04d}_{box + 1:02d}"
                cond: dict[str, Any] = {
                    "nlf": image.nlf,
                    "camera": image.camera,
                    "sensor": image.camera,
                    "domain": self.mode,
                }
                # Noisy values may stray a little outside [0, 1]; samples are clipped to the contract.
                if self.mode == "srgb":
                    noisy = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None]
                    cond["sigma"] = float(image.sigma_srgb[box])
                else:
                    pattern = self._box_pattern(image, box)
                    noisy = pack_realigned(crop, pattern)[None]
                    # sigma_raw(box, y, x) belongs to the crop's sub-lattice crop(y::2, x::2) (DND kit):
                    # packing the 2×2 table like the mosaic puts each value on its channel.
                    sites = torch.from_numpy(image.sigma_raw[box].astype(np.float32))
                    sites = pack_realigned(sites, pattern).reshape(1, 4, 1, 1)
                    cond["sigma"] = sites.expand(1, 4, *noisy.shape[-2:])
                    cond["cfa"] = pattern
                yield Sample(key, noisy.clamp(0, 1), None, cond)  # type: ignore[arg-type]

    # -- submission ------------------------------------------------------------------------

    def submission_crop(self, key: str, output: torch.Tensor) -> np.ndarray:
        """Turn one output into the array the DND kit stores for it.

        Args:
            key: the sample key (``"0001_01"``).
            output: ``1×3×h×w`` (sRGB) or ``1×4×h/2×w/2`` packed RGGB (raw), values in ``[0, 1]``.

        Returns:
            float32 ``h×w×3`` (sRGB) or ``h×w`` mosaic in the image's original Bayer layout (raw),
            clipped to ``[0, 1]``.

        Raises:
            InvalidInputError: unknown key, wrong shape, or NaN/inf values.
        """
        if key not in self._index:
            raise InvalidInputError(f"dnd: unknown sample key {key!r} (expected keys like '0001_01')")
        image, box = self._index[key]
        r1, c1, r2, c2 = image.boxes[box].tolist()
        height, width = r2 - r1 + 1, c2 - c1 + 1
        expected = (1, 3, height, width) if self.mode == "srgb" else (1, 4, height // 2, width // 2)
        if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise InvalidInputError(f"dnd: output for {key!r} has shape {shape}; expected {expected}")
        out = output.detach().to("cpu", torch.float32)
        if not bool(torch.isfinite(out).all()):
            raise InvalidInputError(f"dnd: output for {key!r} holds NaN/inf values")
        out = out.clamp(0, 1)
        if self.mode == "srgb":
            return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())
        return np.ascontiguousarray(unpack_realigned(out[0], self._box_pattern(image, box)).numpy())

    def write_crop(self, key: str, output: torch.Tensor, out_dir: str | Path, *, overwrite: bool = False) -> Path:
        """Write one output as the kit's per-crop file ``out_dir/%04d_%02d.mat`` (``Idenoised_crop``).

        Writing crops as they come and calling ``bundle`` at the end keeps memory flat.
        """
        crop = self.submission_crop(key, output)
        return write_mat_v5(Path(out_dir) / f"{key}.mat", {CROP_KEY: crop}, overwrite=overwrite)

    def bundle(self, out_dir: str | Path, *, overwrite: bool = False) -> Path:
        """Bundle the per-crop files ``write_crop`` wrote in ``out_dir`` into ``out_dir/bundled/%04d.mat``."""
        root = Path(out_dir)
        for image in self.images:
            crops = [
                read_array(root / f"{image.index:04d}_{box:02d}.mat", CROP_KEY, ndim=3 if self.mode == "srgb" else 2)
                for box in range(1, len(image.boxes) + 1)
            ]
            self._write_bundle(root, image, [crop.astype(np.float32) for crop in crops], overwrite)
        return root / "bundled"

    def _write_bundle(self, root: Path, image: DNDImageInfo, crops: list[np.ndarray], overwrite: bool) -> None:
        variables = _bundle_variables(crops, self.mode == "raw")
        write_mat_v5(root / "bundled" / f"{image.index:04d}.mat", variables, overwrite=overwrite)

    def write_submission(
        self, outputs: Mapping[str, torch.Tensor], out_dir: str | Path, *, overwrite: bool = True
    ) -> Path:
        """Write the DND submission: per-crop files and ``bundled/%04d.mat`` (upload ``bundled/``).

        Outputs are read one image at a time (``outputs`` may be a lazy mapping, as the runner's
        saved outputs are), so memory stays at one image's crops. An image's files are written
        only once all its crops converted, so a bad output leaves that image untouched.

        Args:
            outputs: ``{key: output}`` for every sample (see ``submission_crop`` for shapes).
            out_dir: the submission folder.
            overwrite: replace existing files (default: the submission is regenerated from the
                outputs, as a resumed run does); ``False`` refuses to replace any.

        Returns:
            The ``bundled`` folder.

        Raises:
            InvalidInputError: keys are missing or unknown, or an output has a wrong shape.
            OutputExistsError: a file exists and ``overwrite`` is off.
        """
        present = set(outputs)  # iterating keys does not load lazily stored outputs
        missing = [key for key in self._index if key not in present]
        unknown = sorted(present - set(self._index))
        if missing or unknown:
            raise InvalidInputError(
                f"dnd: the submission needs exactly the {len(self._index)} sample keys; "
                f"missing {missing[:5]}{'…' if len(missing) > 5 else ''} "
                f"unknown {unknown[:5]}{'…' if len(unknown) > 5 else ''}"
            )
        root = Path(out_dir)
        for image in self.images:
            keys = [f"{image.index:04d}_{box:02d}" for box in range(1, len(image.boxes) + 1)]
            crops = [self.submission_crop(key, outputs[key]) for key in keys]
            for key, crop in zip(keys, crops):
                write_mat_v5(root / f"{key}.mat", {CROP_KEY: crop}, overwrite=overwrite)
            self._write_bundle(root, image, crops, overwrite)
        return root / "bundled"


BENCHMARKS = [DND]
