"""SIDD, the Smartphone Image Denoising Dataset (Abdelhamed et al., CVPR 2018).

Two benchmarks:

* ``sidd``: the 40 images × 32 blocks of 256×256 that papers report on. ``split="validation"``
  reads ``ValidationNoisyBlocks{Srgb,Raw}.mat`` and ``ValidationGtBlocks{Srgb,Raw}.mat``
  (ground truth included); ``split="benchmark"`` reads ``BenchmarkNoisyBlocks{Srgb,Raw}.mat``
  (scored by the SIDD server; ``write_submission`` writes the Kaggle CSV and, on request, the
  legacy MATLAB-kit ``.mat``). The variable in each file is named like the file.
* ``sidd_medium``: SIDD-Medium's ``Data/<scene instance>/`` folders (full frames, two noisy/GT
  pairs per instance), with the folder name parsed into conditions.

Raw samples are re-aligned to RGGB and packed to 4 planes. The phone → CFA table used is the
community standard (GP, N6, G4 BGGR; IP RGGB; S6 GRBG); SIDD publishes none, so it can be
overridden with ``cfa=``.
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..benchmark import Benchmark, ScoringConventions
from ..errors import ImageReadError, InvalidInputError, OutputExistsError
from ..image_io import _current_umask, read_image
from ..types import Sample
from .dnd import pack_realigned, unpack_realigned
from .matfile import read_array, write_mat_v5
from .rawutil import bayer_pattern

__all__ = [
    "SIDD",
    "SIDDMedium",
    "SIDDScene",
    "SIDD_PHONES",
    "SIDD_SCENES",
    "decode_kaggle_csv",
    "parse_scene_name",
]

# -- scene names ---------------------------------------------------------------------------

SIDD_PHONES: dict[str, tuple[str, str]] = {
    "GP": ("Google Pixel", "bggr"),
    "IP": ("iPhone 7", "rggb"),
    "S6": ("Samsung Galaxy S6 Edge", "grbg"),
    "N6": ("Motorola Nexus 6", "bggr"),
    "G4": ("LG G4", "bggr"),
}
"""Smartphone code → (name, Bayer pattern of its raw frames; community-standard table)."""

SIDD_SCENES: tuple[str, ...] = (
    "0009_001_S6_00800_00350_3200_L", "0021_001_GP_10000_05000_5500_N", "0024_001_N6_03200_01500_5500_N",
    "0026_001_G4_00400_00160_5500_L", "0031_001_IP_01600_02000_3200_N", "0037_002_GP_06400_03200_3200_L",
    "0041_002_IP_01600_04000_5500_L", "0046_002_G4_00400_00350_3200_L", "0049_002_N6_00800_00800_5500_L",
    "0053_002_S6_03200_02000_5500_N", "0056_003_N6_03200_04000_5500_N", "0058_003_G4_00400_00500_5500_L",
    "0061_003_S6_00800_00500_4400_L", "0067_003_GP_01600_01500_3200_L", "0071_003_IP_02000_04000_5500_L",
    "0074_004_N6_00400_00040_3200_L", "0079_004_G4_00800_00160_3200_N", "0082_004_S6_03200_00500_4400_L",
    "0085_004_GP_06400_02000_4400_N", "0093_004_IP_01250_00250_3200_L", "0095_005_N6_00400_00200_3200_L",
    "0100_005_G4_00800_00400_3200_N", "0103_005_S6_01600_00800_4400_L", "0109_005_GP_10000_08000_4400_N",
    "0112_005_IP_01000_07500_5500_L", "0119_006_N6_00400_00100_3200_L", "0124_006_G4_00800_00350_3200_N",
    "0128_006_S6_03200_01600_4400_L", "0131_006_GP_01600_01250_4400_N", "0141_006_IP_01600_01620_3200_L",
    "0143_007_N6_00800_00800_4400_N", "0148_007_G4_00400_00400_4400_L", "0153_007_S6_03200_03200_5500_L",
    "0158_007_GP_03200_03200_5500_N", "0162_007_IP_01600_01600_3200_L", "0171_008_N6_03200_01600_4400_L",
    "0174_008_G4_00800_00800_4400_N", "0176_008_S6_00400_00100_5500_L", "0183_008_GP_06400_06400_5500_N",
    "0187_008_IP_01600_01600_3200_L",
)
"""The 40 scene instances the validation and benchmark blocks come from, in block order."""

_BRIGHTNESS = {"L": "low", "N": "normal", "H": "high"}
_SCENE_NAME = re.compile(r"^(\d{4})_(\d{3})_([A-Z0-9]{2})_(\d{5})_(\d{5})_(\d{4})_([A-Z])$")


@dataclass(frozen=True)
class SIDDScene:
    """A parsed SIDD scene-instance name ``<inst>_<scene>_<phone>_<ISO>_<shutter>_<K>_<L|N|H>``.

    Attributes:
        name: the folder name.
        instance: scene instance number (``1`` … ``200``).
        scene: scene number (``1`` … ``10``).
        phone: smartphone code (``"S6"``).
        camera: smartphone name (``"Samsung Galaxy S6 Edge"``).
        cfa: Bayer pattern of its raw frames (``"grbg"``).
        iso: ISO level.
        shutter: shutter speed field, the denominator of the exposure time (``60`` = 1/60 s).
        exposure_time: exposure time in seconds (``1 / shutter``).
        temperature: illuminant colour temperature in kelvin.
        brightness: ``"low"``, ``"normal"`` or ``"high"`` (codes L, N, H).
    """

    name: str
    instance: int
    scene: int
    phone: str
    camera: str
    cfa: str
    iso: int
    shutter: int
    exposure_time: float
    temperature: int
    brightness: str

    def conditions(self) -> dict[str, Any]:
        """The scene's metadata as sample conditions."""
        return {
            "sensor": self.phone,
            "camera": self.camera,
            "iso": float(self.iso),
            "exposure_time": self.exposure_time,
            "illuminant_temperature": float(self.temperature),
            "brightness": self.brightness,
            "scene": self.name,
        }


def parse_scene_name(name: str) -> SIDDScene:
    """Parse a SIDD scene-instance name, e.g. ``0001_001_S6_00100_00060_3200_L``.

    Raises:
        InvalidInputError: the name does not follow the convention or names an unknown phone
            or brightness code.
    """
    match = _SCENE_NAME.match(name)
    if not match:
        raise InvalidInputError(
            f"{name!r} is not a SIDD scene-instance name "
            "(<instance 4d>_<scene 3d>_<phone>_<ISO 5d>_<shutter 5d>_<temperature 4d>_<L|N|H>)"
        )
    instance, scene, phone, iso, shutter, temperature, brightness = match.groups()
    if phone not in SIDD_PHONES:
        raise InvalidInputError(f"{name!r}: unknown smartphone code {phone!r} (known: {', '.join(SIDD_PHONES)})")
    if brightness not in _BRIGHTNESS:
        raise InvalidInputError(f"{name!r}: unknown brightness code {brightness!r} (known: L, N, H)")
    if int(shutter) == 0:
        raise InvalidInputError(f"{name!r}: shutter speed 0 is not valid")
    camera, cfa = SIDD_PHONES[phone]
    return SIDDScene(
        name=name,
        instance=int(instance),
        scene=int(scene),
        phone=phone,
        camera=camera,
        cfa=cfa,
        iso=int(iso),
        shutter=int(shutter),
        exposure_time=1.0 / int(shutter),
        temperature=int(temperature),
        brightness=_BRIGHTNESS[brightness],
    )


# -- block files ---------------------------------------------------------------------------

Split = Literal["validation", "benchmark"]
Mode = Literal["srgb", "raw"]
SIDD_IMAGES = 40
SIDD_BLOCKS = 32
SIDD_BLOCK_SIZE = 256


def _block_file(split: Split, kind: str, mode: Mode) -> str:
    prefix = "Validation" if split == "validation" else "Benchmark"
    return f"{prefix}{kind}Blocks{'Srgb' if mode == 'srgb' else 'Raw'}"


def decode_kaggle_csv(path: str | Path, shape: Sequence[int], dtype: np.dtype | type) -> dict[int, np.ndarray]:
    """Read a SIDD Kaggle submission CSV back into arrays (the inverse of the writer).

    Args:
        path: ``SubmitSrgb.csv`` / ``SubmitRaw.csv``.
        shape: the block shape (``(256, 256, 3)``).
        dtype: the block dtype (``uint8`` for sRGB).

    Returns:
        ``{ID: block}``.

    Raises:
        ImageReadError: the file is missing.
        InvalidInputError: the header is not ``ID,BLOCK`` or a row does not decode to ``shape``.
    """
    file = Path(path)
    if not file.is_file():
        raise ImageReadError(f"{file}: not found")
    lines = file.read_text(encoding="ascii").splitlines()
    if not lines or lines[0] != "ID,BLOCK":
        raise InvalidInputError(f"{file}: first line must be 'ID,BLOCK', got {lines[:1]}")
    blocks: dict[int, np.ndarray] = {}
    for number, line in enumerate(lines[1:], start=2):
        ident, _, encoded = line.partition(",")
        data = np.frombuffer(base64.b64decode(encoded), dtype=dtype)
        if data.size != int(np.prod(shape)):
            raise InvalidInputError(f"{file}: line {number} holds {data.size} values; expected shape {tuple(shape)}")
        blocks[int(ident)] = data.reshape(tuple(shape))
    return blocks


class SIDD(Benchmark):
    """SIDD validation or benchmark blocks (40 images × 32 blocks of 256×256 in the release).

    sRGB samples are ``1×3×256×256`` (uint8 blocks divided by 255); raw samples are the
    ``256×256`` mosaic blocks re-aligned to RGGB by the phone's CFA and packed to
    ``1×4×128×128``. Keys are ``"%04d_%02d"`` (image, block; both 1-based). Conditions: the
    scene's metadata (``sensor`` = phone code, ``camera``, ``iso``, ``exposure_time``,
    ``illuminant_temperature``, ``brightness``, ``scene``), ``domain`` and, for raw, ``cfa``.

    Scoring follows the MATLAB evaluation the field uses for the validation blocks
    (``evaluate_sidd.m`` of Restormer/MPRNet): float blocks in ``[0, 1]`` (no quantisation),
    PSNR with peak 1 per block, Gaussian SSIM, averaged over blocks.

    Args:
        root: folder holding the ``.mat`` block files.
        split: ``"validation"`` (with ground truth) or ``"benchmark"`` (server-scored).
        mode: ``"srgb"`` or ``"raw"``.
        strict: also check the release's 40×32 blocks of 256×256.
        scenes: scene-instance names of the images in order (default: the 40 official ones);
            needed in raw mode when the files hold other images.
        cfa: force one Bayer pattern for every raw block instead of the phone table.

    Raises:
        ImageReadError: a block file is missing or unreadable.
        InvalidInputError: an option is invalid, or a file has a wrong variable, dtype or shape.
    """

    name = "sidd"
    domain = "srgb"
    has_ground_truth = True

    def __init__(
        self,
        root: str,
        split: Split = "validation",
        mode: Mode = "srgb",
        strict: bool = False,
        scenes: Sequence[str] | None = None,
        cfa: str | None = None,
    ) -> None:
        if split not in ("validation", "benchmark"):
            raise InvalidInputError(f"sidd: split must be 'validation' or 'benchmark', got {split!r}")
        if mode not in ("srgb", "raw"):
            raise InvalidInputError(f"sidd: mode must be 'srgb' or 'raw', got {mode!r}")
        self.root = Path(root)
        self.split: Split = split
        self.mode: Mode = mode
        self.strict = bool(strict)
        self.cfa = None if cfa is None else bayer_pattern(cfa)
        self.scenes = [parse_scene_name(name) for name in (SIDD_SCENES if scenes is None else scenes)]
        self._scene_names = None if scenes is None else list(scenes)
        self.domain = mode  # type: ignore[misc]  # an instance reports its own domain
        self.has_ground_truth = split == "validation"  # type: ignore[misc]
        self.conventions = self._conventions()
        if not self.root.is_dir():
            expected = _block_file(split, "Noisy", mode)
            raise ImageReadError(f"sidd: root {self.root} is not a folder (expected {expected}.mat in it)")

        self.noisy_file = self.root / f"{_block_file(split, 'Noisy', mode)}.mat"
        self.noisy = self._read_blocks(self.noisy_file)
        self.clean: np.ndarray | None = None
        if self.has_ground_truth:
            self.gt_file = self.root / f"{_block_file(split, 'Gt', mode)}.mat"
            self.clean = self._read_blocks(self.gt_file)
            if self.clean.shape != self.noisy.shape or self.clean.dtype != self.noisy.dtype:
                raise InvalidInputError(
                    f"{self.gt_file}: ground truth {self.clean.shape} {self.clean.dtype} does not match "
                    f"{self.noisy_file.name} {self.noisy.shape} {self.noisy.dtype}"
                )
        images = self.noisy.shape[0]
        if mode == "raw" and self.cfa is None and images > len(self.scenes):
            raise InvalidInputError(
                f"{self.noisy_file}: holds {images} images but only {len(self.scenes)} scene names are "
                "known; pass scenes=[...] (their phones give the Bayer patterns) or cfa='rggb'"
            )

    def _conventions(self) -> ScoringConventions:
        if self.mode == "srgb":
            notes = (
                "SIDD validation protocol of the MATLAB evaluate_sidd.m (Restormer/MPRNet): denoised "
                "blocks as single-precision floats in [0, 1], not quantized; ground truth uint8/255; "
                "PSNR with peak 1 per 256×256 block over all RGB channels; SSIM with the 11×11 Gaussian "
                "window (σ 1.5, K1 0.01, K2 0.03) per channel, valid region, channel mean; mean over "
                "the 1280 blocks. MATLAB's ssim() treats an H×W×3 block as one volume with padding, so "
                "SSIM may differ from it in the third decimal. The server's formula is unpublished; "
                "Kaggle submissions hold uint8 blocks (rounded, not truncated)."
            )
        else:
            notes = (
                "SIDD raw blocks: float [0, 1] mosaics re-aligned to RGGB and packed to 4 planes; PSNR "
                "peak 1 per block (the same pixels as the mosaic, so the same PSNR); SSIM with the "
                "Gaussian window on the packed planes (raw SSIM is rarely reported); mean over blocks. "
                "CFA per phone: GP/N6/G4 BGGR, IP RGGB, S6 GRBG (community table)."
            )
        if self.split == "benchmark":
            notes = "Benchmark split: no ground truth, scored by the SIDD server from the submission. " + notes
        return ScoringConventions(
            color_space="rgb" if self.mode == "srgb" else "raw",
            data_range=1.0,
            quantize="float",
            border_crop=0,
            ssim="gaussian",
            averaging="block",
            notes=notes,
        )

    def config(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "split": self.split,
            "mode": self.mode,
            "strict": self.strict,
            "scenes": self._scene_names,
            "cfa": self.cfa,
        }

    def _read_blocks(self, file: Path) -> np.ndarray:
        key = file.stem
        dims = 5 if self.mode == "srgb" else 4
        blocks = read_array(file, key, ndim=dims)
        if self.mode == "srgb" and blocks.shape[-1] != 3:
            raise InvalidInputError(
                f"{file}: variable {key!r} has shape {blocks.shape}; expected images×blocks×H×W×3"
            )
        if self.mode == "srgb" and blocks.dtype != np.uint8:
            raise InvalidInputError(f"{file}: variable {key!r} is {blocks.dtype}; SIDD sRGB blocks are uint8")
        if self.mode == "raw" and blocks.dtype.kind != "f":
            raise InvalidInputError(f"{file}: variable {key!r} is {blocks.dtype}; SIDD raw blocks are float in [0, 1]")
        if self.mode == "raw" and (blocks.shape[2] % 2 or blocks.shape[3] % 2):
            raise InvalidInputError(
                f"{file}: raw blocks of {blocks.shape[2]}×{blocks.shape[3]} cannot be packed (odd size)"
            )
        if self.strict:
            expected = (SIDD_IMAGES, SIDD_BLOCKS, SIDD_BLOCK_SIZE, SIDD_BLOCK_SIZE)
            expected += (3,) if self.mode == "srgb" else ()
            if blocks.shape != expected:
                raise InvalidInputError(
                    f"{file}: variable {key!r} has shape {blocks.shape}; the SIDD release has {expected}"
                )
        if blocks.dtype.kind == "f" and not np.isfinite(blocks).all():
            raise ImageReadError(f"{file}: variable {key!r} holds NaN/inf values")
        return blocks

    # -- samples ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.noisy.shape[0] * self.noisy.shape[1])

    def keys(self) -> list[str]:
        """Every sample key, in iteration order (image-major)."""
        images, blocks = self.noisy.shape[:2]
        return [f"{i + 1:04d}_{j + 1:02d}" for i in range(images) for j in range(blocks)]

    def block_cfa(self, image: int) -> str:
        """The Bayer pattern of the raw blocks of 0-based ``image``."""
        if self.cfa is not None:
            return self.cfa
        return self.scenes[image].cfa

    def _tensor(self, block: np.ndarray, image: int) -> torch.Tensor:
        if self.mode == "srgb":
            planes = torch.from_numpy(np.ascontiguousarray(block)).permute(2, 0, 1).to(torch.float32) / 255.0
            return planes[None]
        return pack_realigned(block.astype(np.float32), self.block_cfa(image))[None].clamp(0, 1)

    def _conditions(self, image: int) -> dict[str, Any]:
        cond: dict[str, Any] = self.scenes[image].conditions() if image < len(self.scenes) else {}
        cond["domain"] = self.mode
        if self.mode == "raw":
            cond["cfa"] = self.block_cfa(image)
        return cond

    def __iter__(self) -> Iterator[Sample]:
        images, blocks = self.noisy.shape[:2]
        for i in range(images):
            for j in range(blocks):
                clean = None if self.clean is None else self._tensor(self.clean[i, j], i)
                noisy = self._tensor(self.noisy[i, j], i)
                yield Sample(f"{i + 1:04d}_{j + 1:02d}", noisy, clean, self._conditions(i))  # type: ignore[arg-type]

    # -- submission ------------------------------------------------------------------------

    def _index(self, key: str) -> tuple[int, int]:
        match = re.fullmatch(r"(\d{4})_(\d{2})", key) if isinstance(key, str) else None
        images, blocks = self.noisy.shape[:2]
        if match is None or not (1 <= int(match[1]) <= images and 1 <= int(match[2]) <= blocks):
            raise InvalidInputError(
                f"sidd: unknown sample key {key!r} (expected '0001_01' … '{images:04d}_{blocks:02d}')"
            )
        return int(match[1]) - 1, int(match[2]) - 1

    def _float_block(self, key: str, output: torch.Tensor) -> np.ndarray:
        """An output as a float32 block in the file's layout (``h×w×3`` or the raw mosaic), clipped to [0, 1]."""
        image, _ = self._index(key)
        h, w = self.noisy.shape[2:4]
        expected = (1, 3, h, w) if self.mode == "srgb" else (1, 4, h // 2, w // 2)
        if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise InvalidInputError(f"sidd: output for {key!r} has shape {shape}; expected {expected}")
        out = output.detach().to("cpu", torch.float32)
        if not bool(torch.isfinite(out).all()):
            raise InvalidInputError(f"sidd: output for {key!r} holds NaN/inf values")
        out = out.clamp(0, 1)
        if self.mode == "srgb":
            return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())
        return np.ascontiguousarray(unpack_realigned(out[0], self.block_cfa(image)).numpy())

    def submission_block(self, key: str, output: torch.Tensor) -> np.ndarray:
        """An output as the Kaggle CSV stores it: the input block's dtype and shape.

        sRGB: ``round(clip(x, 0, 1) · 255)`` as uint8 ``h×w×3`` (rounded, not truncated);
        raw: the mosaic in the phone's original Bayer layout, in the input blocks' float dtype.
        """
        block = self._float_block(key, output)
        if self.noisy.dtype == np.uint8:
            block = np.rint(block.astype(np.float64) * 255.0).astype(np.uint8)
        else:
            block = block.astype(self.noisy.dtype)
        reference = self.noisy[0, 0]
        # The organisers' demo asserts exactly this before encoding.
        if block.dtype != reference.dtype or block.shape != reference.shape:
            raise InvalidInputError(
                f"sidd: block {key!r} is {block.dtype} {block.shape}; the server needs "
                f"{reference.dtype} {reference.shape} like the input blocks"
            )
        return block

    def _check_keys(self, outputs: Mapping[str, torch.Tensor]) -> None:
        expected = self.keys()
        present = set(outputs)  # iterating keys does not load lazily stored outputs
        missing = [key for key in expected if key not in present]
        unknown = sorted(present - set(expected))
        if missing or unknown:
            raise InvalidInputError(
                f"sidd: the submission needs exactly the {len(expected)} sample keys; "
                f"missing {missing[:5]}{'…' if len(missing) > 5 else ''} "
                f"unknown {unknown[:5]}{'…' if len(unknown) > 5 else ''}"
            )

    def write_submission(
        self,
        outputs: Mapping[str, torch.Tensor],
        out_dir: str | Path,
        *,
        formats: Sequence[str] = ("csv",),
        overwrite: bool = True,
        time_mp: float = 0.0,
        optional_data: Mapping[str, str] | None = None,
    ) -> Path:
        """Write the SIDD submission files.

        ``"csv"``: the Kaggle file ``SubmitSrgb.csv`` / ``SubmitRaw.csv``, header ``ID,BLOCK``,
        one row per block with ``ID = image·32 + block`` (0-based, image-major) and ``BLOCK`` the
        base64 of the block's C-order bytes (uint8 ``256×256×3`` sRGB / float raw mosaic).
        ``"mat"``: the MATLAB kit's ``SubmitSrgb.mat`` / ``SubmitRaw.mat`` with
        ``DenoisedBlocksSrgb``/``Raw`` (images×blocks cell of single blocks in ``[0, 1]``),
        ``TimeMPSrgb``/``Raw`` and ``OptionalData`` (written as MAT v5; the kit saved v7.3).

        Args:
            outputs: ``{key: output}`` for every sample (``1×3×h×w`` sRGB, ``1×4×h/2×w/2`` raw).
            out_dir: target folder.
            formats: any of ``"csv"``, ``"mat"``.
            overwrite: replace existing files (default: the submission is regenerated from the
                outputs, as a resumed run does); ``False`` refuses to replace any.
            time_mp: seconds per megapixel for the ``.mat`` (the kit: total seconds ·
                1024² / (images · blocks · h · w)).
            optional_data: ``MethodName``, ``Authors``, ``PaperTitle``, ``Venue``, ``MachineSpecs``.

        Returns:
            The CSV file when written, else the ``.mat`` file.

        Raises:
            InvalidInputError: a key is missing or unknown, an output has the wrong shape, or a
                format is unknown.
            OutputExistsError: a file exists and ``overwrite`` is off.
        """
        unknown_formats = [f for f in formats if f not in ("csv", "mat")]
        if unknown_formats or not formats:
            raise InvalidInputError(f"sidd: formats must be a non-empty subset of ('csv', 'mat'), got {list(formats)}")
        self._check_keys(outputs)
        suffix = "Srgb" if self.mode == "srgb" else "Raw"
        folder = Path(out_dir)
        written: list[Path] = []
        if "csv" in formats:
            blocks_per_image = self.noisy.shape[1]

            def lines() -> Iterator[str]:
                yield "ID,BLOCK"
                for key in self.keys():
                    image, block = self._index(key)
                    data = self.submission_block(key, outputs[key])
                    yield f"{image * blocks_per_image + block},{base64.b64encode(data.tobytes()).decode('ascii')}"

            written.append(_write_lines_atomically(folder / f"Submit{suffix}.csv", lines(), overwrite))
        if "mat" in formats:
            cells = np.empty(self.noisy.shape[:2], dtype=object)
            for key in self.keys():
                cells[self._index(key)] = self._float_block(key, outputs[key])
            fields = ("MethodName", "Authors", "PaperTitle", "Venue", "MachineSpecs")
            extra = dict(optional_data or {})
            unknown_fields = sorted(set(extra) - set(fields))
            if unknown_fields:
                raise InvalidInputError(f"sidd: unknown OptionalData fields {unknown_fields}; known: {list(fields)}")
            variables = {
                f"DenoisedBlocks{suffix}": cells,
                f"TimeMP{suffix}": float(time_mp),
                "OptionalData": {field: str(extra.get(field, "")) for field in fields},
            }
            written.append(write_mat_v5(folder / f"Submit{suffix}.mat", variables, overwrite=overwrite))
        return written[0]


def _write_lines_atomically(file: Path, lines: Iterator[str], overwrite: bool) -> Path:
    """Stream ``lines`` into a temporary file beside ``file`` and rename it into place.

    The Kaggle CSV of 1280 sRGB blocks is ~335 MB; streaming keeps only one block in memory.
    A failure part-way removes the temporary file and leaves ``file`` untouched.
    """
    if file.exists() and not overwrite:
        raise OutputExistsError(f"{file}: exists; pass overwrite=True to replace it")
    file.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="ascii", newline="") as handle:
            for line in lines:
                handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o666 & ~_current_umask())
        if file.exists() and not overwrite:
            raise OutputExistsError(f"{file}: exists; pass overwrite=True to replace it")
        os.replace(temp_name, file)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return file


# -- SIDD-Medium ---------------------------------------------------------------------------

SIDD_MEDIUM_INSTANCES = 160
_PAIR_FILE = re.compile(r"^(\d{4})_(NOISY|GT)_(SRGB|RAW)_(\d{3})\.(PNG|MAT)$", re.IGNORECASE)


@dataclass(frozen=True)
class _MediumPair:
    key: str
    scene: SIDDScene
    noisy: Path
    clean: Path


class SIDDMedium(Benchmark):
    """SIDD-Medium full frames: ``Data/<scene instance>/`` with two noisy/GT pairs each.

    Files per instance (official upper-case names; any case is accepted):
    ``NNNN_NOISY_SRGB_010.PNG``, ``NNNN_GT_SRGB_010.PNG`` (and ``_011``) for sRGB;
    ``NNNN_NOISY_RAW_010.MAT``, ``NNNN_GT_RAW_010.MAT`` (MAT v7.3, variable ``x``, float in
    ``[0, 1]``) for raw. Keys are ``"<instance>_<pair>"`` (``"0001_010"``). Conditions come from
    the folder name (``sensor``, ``camera``, ``iso``, ``exposure_time``,
    ``illuminant_temperature``, ``brightness``, ``scene``) plus ``domain`` (and ``cfa`` for raw).

    Args:
        root: the SIDD-Medium folder holding ``Data/`` (and ``Scene_Instances.txt``).
        mode: ``"srgb"`` or ``"raw"``.
        strict: also check the release's 160 instances with two pairs each.
        raw_order: ``"matlab"`` reads ``x`` in MATLAB order (h5py's array transposed) and
            ``"h5py"`` as h5py returns it; sources disagree on which is right for SIDD's raw
            files, so it is an explicit choice.
        cfa: force one Bayer pattern for every raw frame instead of the phone table.

    Raises:
        ImageReadError: ``Data/`` or a file of a pair is missing.
        InvalidInputError: a folder name is not a SIDD scene instance, an instance listed in
            ``Scene_Instances.txt`` is missing, or an option is invalid.
    """

    name = "sidd_medium"
    domain = "srgb"
    has_ground_truth = True

    def __init__(
        self,
        root: str,
        mode: Mode = "srgb",
        strict: bool = False,
        raw_order: Literal["matlab", "h5py"] = "matlab",
        cfa: str | None = None,
    ) -> None:
        if mode not in ("srgb", "raw"):
            raise InvalidInputError(f"sidd_medium: mode must be 'srgb' or 'raw', got {mode!r}")
        if raw_order not in ("matlab", "h5py"):
            raise InvalidInputError(f"sidd_medium: raw_order must be 'matlab' or 'h5py', got {raw_order!r}")
        self.root = Path(root)
        self.mode: Mode = mode
        self.strict = bool(strict)
        self.raw_order = raw_order
        self.cfa = None if cfa is None else bayer_pattern(cfa)
        self.domain = mode  # type: ignore[misc]
        self.conventions = ScoringConventions(
            color_space="rgb" if mode == "srgb" else "raw",
            data_range=1.0,
            quantize="float",
            border_crop=0,
            ssim="gaussian",
            averaging="image",
            notes=(
                "SIDD-Medium full frames (a training set; no official test protocol): float [0, 1], "
                "PSNR peak 1 per image, Gaussian SSIM per channel, mean over image pairs"
                + (" (raw: on the packed RGGB planes)." if mode == "raw" else ".")
            ),
        )
        self.pairs = self._discover()

    def config(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "mode": self.mode,
            "strict": self.strict,
            "raw_order": self.raw_order,
            "cfa": self.cfa,
        }

    def _discover(self) -> list[_MediumPair]:
        data = self.root / "Data"
        if not data.is_dir():
            raise ImageReadError(f"sidd_medium: {data} not found (point root at the folder that holds Data/)")
        folders = sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
        listed = self._listed_instances()
        if listed is not None:
            missing = sorted(set(listed) - {p.name for p in folders})
            if missing:
                raise InvalidInputError(
                    f"{data}: {len(missing)} scene instance(s) listed in Scene_Instances.txt are missing, "
                    f"e.g. {missing[:3]}"
                )
        if self.strict and len(folders) != SIDD_MEDIUM_INSTANCES:
            raise InvalidInputError(
                f"{data}: holds {len(folders)} scene instances; SIDD-Medium has {SIDD_MEDIUM_INSTANCES}"
            )
        kind = "SRGB" if self.mode == "srgb" else "RAW"
        pairs: list[_MediumPair] = []
        for folder in folders:
            try:
                scene = parse_scene_name(folder.name)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{folder}: {exc}") from exc
            found: dict[tuple[str, str], Path] = {}
            for file in folder.iterdir():
                match = _PAIR_FILE.match(file.name)
                if match and match[3].upper() == kind and int(match[1]) == scene.instance:
                    found[(match[2].upper(), match[4])] = file
            ids = sorted({pair for _, pair in found})
            if not ids:
                raise ImageReadError(f"{folder}: no {scene.instance:04d}_NOISY_{kind}_<pair> files")
            if self.strict and ids != ["010", "011"]:
                raise InvalidInputError(f"{folder}: pairs {ids}; SIDD-Medium has 010 and 011")
            for pair in ids:
                extension = "PNG" if kind == "SRGB" else "MAT"
                for role in ("NOISY", "GT"):
                    if (role, pair) not in found:
                        expected = folder / f"{scene.instance:04d}_{role}_{kind}_{pair}.{extension}"
                        raise ImageReadError(f"{expected}: not found")
                pairs.append(
                    _MediumPair(f"{scene.instance:04d}_{pair}", scene, found[("NOISY", pair)], found[("GT", pair)])
                )
        if not pairs:
            raise ImageReadError(f"{data}: holds no scene-instance folders")
        return pairs

    def _listed_instances(self) -> list[str] | None:
        for name in ("Scene_Instances.txt", "Scene_Instance.txt"):
            file = self.root / name
            if file.is_file():
                return [line.strip() for line in file.read_text().splitlines() if line.strip()]
        return None

    def __len__(self) -> int:
        return len(self.pairs)

    def keys(self) -> list[str]:
        """Every sample key (``"<instance>_<pair>"``), in iteration order."""
        return [pair.key for pair in self.pairs]

    def _load(self, file: Path, scene: SIDDScene) -> torch.Tensor:
        if self.mode == "srgb":
            return read_image(file, channels=3)
        mosaic = read_array(file, "x", ndim=2)
        if self.raw_order == "h5py":
            mosaic = mosaic.T
        if not np.isfinite(mosaic).all():
            raise ImageReadError(f"{file}: variable 'x' holds NaN/inf values")
        if mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
            raise InvalidInputError(f"{file}: raw frame of {mosaic.shape} cannot be packed (odd size)")
        return pack_realigned(mosaic.astype(np.float32), self.cfa or scene.cfa)[None].clamp(0, 1)

    def __iter__(self) -> Iterator[Sample]:
        for pair in self.pairs:
            noisy = self._load(pair.noisy, pair.scene)
            clean = self._load(pair.clean, pair.scene)
            if noisy.shape != clean.shape:
                raise InvalidInputError(
                    f"{pair.clean}: shape {tuple(clean.shape)} differs from {pair.noisy.name} {tuple(noisy.shape)}"
                )
            cond = pair.scene.conditions()
            cond["domain"] = self.mode
            if self.mode == "raw":
                cond["cfa"] = self.cfa or pair.scene.cfa
            yield Sample(pair.key, noisy, clean, cond)  # type: ignore[arg-type]


BENCHMARKS = [SIDD, SIDDMedium]
