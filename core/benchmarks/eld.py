"""ELD: the Extreme Low-light Denoising raw benchmark, with its official evaluation protocol.

Reference:
    K. Wei, Y. Fu, J. Yang and H. Huang, "A Physics-based Noise Formation Model for Extreme
    Low-light Raw Denoising", CVPR 2020 (and the TPAMI 2021 extension); protocol facts from
    the authors' code (Vandermode/ELD: ``test_ELD.py``, ``dataset/sid_dataset.py``,
    ``models/ELD_model.py``, ``util/index.py``), summarised in ``docs/benchmarks.md``.

Layout (``root`` is the ``ELD`` folder)::

    ELD/<Camera>/scene-<k>/IMG_<NNNN><ext>      exactly 16 raws per scene, NNNN = 0001..0016

with the paper's cameras ``CanonEOS70D`` / ``CanonEOS700D`` (``.CR2``), ``NikonD850``
(``.nef``) and ``SonyA7S2`` (``.ARW``). JPEG sidecars in a scene are ignored; any other
number of raws than 16 is an error (the first public upload had 17–18 in one scene, which
silently broke id-based pairing).

Protocol:
    * Ids 1, 6, 11, 16 are long-exposure references; the ×100 inputs are ids 4, 9, 14 and the
      ×200 inputs ids 5, 10, 15. Each input is paired with the *nearest* reference id
      (4, 5 → 6; 9, 10 → 11; 14, 15 → 16).
    * Exposure ratio from EXIF: ``(ISO_ref · t_ref) / (ISO_in · t_in)`` (not capped).
    * Packing: each channel minus the file's own black level of that colour, divided by
      ``16383 - black`` (the white point is hard-coded to 16383 for every camera), clipped to
      ``[0, 1]``. The input is then multiplied by the ratio and clipped to ``[0, 1]`` again —
      the brightness is matched *before* denoising, so a denoiser sees a normally exposed but
      very noisy image.
    * Scoring on full images: the output is clipped to ``[0, 1]`` and brightness-corrected
      ("IlluminanceCorrect"): multiplied by ``α = Σ p·t / Σ p²`` over the positions where the
      reference is not saturated (``t ≠ 1``). PSNR and SSIM are computed on the packed image
      ×255 (``H/2×W/2×4``, not rounded) with ``data_range = 255``; SSIM is scikit-image's
      default (7×7 uniform window, sample covariance), averaged over the 4 channels. Tables
      average per camera and ratio (10 scenes × 3 ids = 30 images).

Channel order: samples are packed in the core's **RGGB** order ``(R, Gr, Gb, B)`` (the ELD code
uses ``(R, Gr, B, Gb)``, "RGBG"; ``channel_order="rgbg"`` gives that, e.g. for weights trained
with the ELD code). PSNR, SSIM and the brightness correction are symmetric in the channels, so
the scores do not depend on the order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..benchmark import Benchmark, ScoringConventions
from ..errors import ImageReadError, InvalidInputError
from ..types import Sample
from .rawutil import CHANNEL_ORDERS, RawFrame, is_raw_file, pack_frame, read_exposure, read_raw

__all__ = [
    "ELD",
    "ELD_CAMERAS",
    "ELD_INPUT_IDS",
    "ELD_REFERENCE_IDS",
    "PROTOCOL_WHITE_LEVEL",
    "illuminance_correct",
    "nearest_reference",
    "nominal_ratio",
    "raw_protocol_score",
]

ELD_CAMERAS: tuple[str, ...] = ("CanonEOS70D", "CanonEOS700D", "NikonD850", "SonyA7S2")
"""The four cameras of the paper's tables (``CanonEOS5D4`` also exists but is not evaluated)."""

ELD_REFERENCE_IDS: tuple[int, ...] = (1, 6, 11, 16)
"""Long-exposure reference image ids of every scene."""

ELD_INPUT_IDS: tuple[int, ...] = (4, 9, 14, 5, 10, 15)
"""The evaluated inputs: ×100 (4, 9, 14) and ×200 (5, 10, 15)."""

FILES_PER_SCENE = 16

NOMINAL_RATIOS: dict[int, int] = {2: 1, 3: 10, 4: 100, 5: 200}
"""Light factor by an id's position in its group of five (ids 1–5, 6–10, 11–15), per the README."""

PROTOCOL_WHITE_LEVEL = 16383
"""ELD's hard-coded white point (14-bit), used for every camera."""

_SCENE_DIR = re.compile(r"^scene-(\d+)$")
_IMAGE_NAME = re.compile(r"^IMG_(\d{4})$")

_ELD_NOTES = (
    "ELD protocol: packed raw ×255, not rounded; output clipped to [0,1] then "
    "brightness-corrected (IlluminanceCorrect: α = Σp·t/Σp² over target≠1) before scoring; "
    "PSNR with data_range 255; SSIM = scikit-image default (7×7 uniform window, sample "
    "covariance), mean over the 4 channels; per-image scores, tables average per camera and "
    "ratio"
)


def illuminance_correct(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, float]:
    """ELD's brightness correction ("IlluminanceCorrect") of one output.

    The output is clipped to ``[0, 1]`` and scaled by the least-squares gain
    ``α = Σ p·t / Σ p²``, where the sums run over every element (all channels) at which the
    target is not saturated (``t ≠ 1``). Raw low-light inputs are scaled by a nominal
    exposure ratio, so a global brightness error is not counted as a denoising error.

    Args:
        output: ``1×C×H×W`` estimate.
        target: ``1×C×H×W`` reference in ``[0, 1]``.

    Returns:
        ``(α·clip(output), α)``. ``α = 1`` when it is undefined (an all-zero output, or no
        unsaturated target element) — the ELD code would produce NaN there.
    """
    if output.shape != target.shape:
        raise InvalidInputError(
            f"illuminance_correct: output {tuple(output.shape)} and target {tuple(target.shape)} differ"
        )
    predict = output.clamp(0.0, 1.0)
    mask = target != 1
    # float64 sums: the gain of a 12-megapixel image is a ratio of two sums of 10^7 terms.
    p = predict[mask].to(torch.float64)
    t = target[mask].to(torch.float64)
    numerator = float(torch.dot(p, t))
    denominator = float(torch.dot(p, p))
    alpha = numerator / denominator if denominator > 0 else 1.0
    if not math.isfinite(alpha):
        alpha = 1.0
    return predict * alpha, alpha


def raw_protocol_score(
    benchmark: str, output: torch.Tensor, sample: Sample, *, correct: bool = True
) -> dict[str, float]:
    """Score one packed-raw output with ELD's protocol (shared by ``eld`` and ``sid``).

    Args:
        benchmark: registry name, for error messages.
        output: ``1×4×h×w`` estimate (any channel order, the same as ``sample``'s).
        sample: the sample, with ``clean``.
        correct: apply ``illuminance_correct`` first (the protocol does).

    Returns:
        ``{"psnr": dB, "ssim": value}``.
    """
    from ..metrics import psnr, ssim

    if sample.clean is None:
        raise InvalidInputError(
            f"benchmark {benchmark!r}: sample {sample.key!r} has no ground truth; nothing to score"
        )
    if not isinstance(output, torch.Tensor) or output.shape != sample.clean.shape:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise InvalidInputError(
            f"benchmark {benchmark!r}: output shape {shape} does not match ground truth "
            f"{tuple(sample.clean.shape)} for {sample.key!r}"
        )
    target = sample.clean.to(output.device).clamp(0.0, 1.0)
    estimate = illuminance_correct(output, target)[0] if correct else output
    # The ELD code maps to 0..255 and clips (tensor2im) without rounding.
    estimate = estimate.clamp(0.0, 1.0) * 255.0
    target = target * 255.0
    return {
        "psnr": float(psnr(estimate, target, 255.0)),
        "ssim": float(ssim(estimate, target, 255.0, window="uniform")),
    }


def raw_protocol_conventions(correct: bool, extra: str = "") -> ScoringConventions:
    """The ``ScoringConventions`` of the ELD raw protocol (with or without the correction)."""
    notes = _ELD_NOTES if correct else _ELD_NOTES.replace(
        "then brightness-corrected (IlluminanceCorrect: α = Σp·t/Σp² over target≠1) ",
        "WITHOUT the protocol's brightness correction (correct=False) ",
    )
    return ScoringConventions(
        color_space="raw",
        data_range=255.0,
        quantize="float",
        border_crop=0,
        ssim="uniform",
        averaging="image",
        notes=notes + (f"; {extra}" if extra else ""),
    )


def _check_channel_order(owner: str, order: Any) -> str:
    if not isinstance(order, str) or order.lower() not in CHANNEL_ORDERS:
        raise InvalidInputError(
            f"benchmark {owner!r}: channel_order must be one of {', '.join(CHANNEL_ORDERS)}, got {order!r}"
        )
    return order.lower()


def _check_white_level(owner: str, white: Any) -> int | None:
    if white is None:
        return None
    if isinstance(white, bool) or not isinstance(white, int) or white <= 0:
        raise InvalidInputError(
            f"benchmark {owner!r}: white_level must be a positive integer (the protocol's "
            f"{PROTOCOL_WHITE_LEVEL}) or None for each file's own white level, got {white!r}"
        )
    return white


def _int_list(owner: str, option: str, values: Any, low: int, high: int | None) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise InvalidInputError(
            f"benchmark {owner!r}: {option} must be a non-empty list of integers, got {values!r}"
        )
    result: list[int] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise InvalidInputError(
                f"benchmark {owner!r}: {option} entries must be integers {bounds}, got {value!r}"
            )
        if value in result:
            raise InvalidInputError(f"benchmark {owner!r}: {option} lists {value} twice")
        result.append(value)
    return result


@dataclass(frozen=True)
class _Pair:
    key: str
    camera: str
    input_path: Path
    reference_path: Path
    nominal_ratio: int


def nominal_ratio(image_id: int) -> int:
    """The capture plan's light factor of an input id (4, 9, 14 → 100; 5, 10, 15 → 200)."""
    return NOMINAL_RATIOS[(image_id - 1) % 5 + 1]


def nearest_reference(image_id: int) -> int:
    """The reference id ELD pairs an input id with: the nearest of 1, 6, 11, 16."""
    return min(ELD_REFERENCE_IDS, key=lambda ref: abs(image_id - ref))


def scene_files(scene_dir: Path) -> dict[int, Path]:
    """The 16 raws of an ELD scene folder by image id, validated.

    Raises:
        ImageReadError: the folder is missing.
        InvalidInputError: it does not hold exactly ``IMG_0001`` … ``IMG_0016`` (one raw each;
            JPEG sidecars are ignored).
    """
    if not scene_dir.is_dir():
        raise ImageReadError(f"{scene_dir}: ELD scene folder not found")
    raws = sorted(p for p in scene_dir.iterdir() if p.is_file() and is_raw_file(p))
    if len(raws) != FILES_PER_SCENE:
        names = ", ".join(p.name for p in raws[:20]) + (" ..." if len(raws) > 20 else "")
        raise InvalidInputError(
            f"{scene_dir}: an ELD scene holds exactly {FILES_PER_SCENE} raw files "
            f"(IMG_0001 … IMG_0016), found {len(raws)}: {names or 'none'}; id-based pairing would "
            "be wrong (a known problem of the first ELD upload, fixed in the 2022 re-upload)"
        )
    by_id: dict[int, Path] = {}
    for path in raws:
        match = _IMAGE_NAME.match(path.stem)
        image_id = int(match.group(1)) if match else 0
        if not 1 <= image_id <= FILES_PER_SCENE or image_id in by_id:
            raise InvalidInputError(
                f"{scene_dir}: unexpected raw file {path.name!r}; an ELD scene holds IMG_0001 … "
                f"IMG_0016, one raw file each"
            )
        by_id[image_id] = path
    return by_id


class ELD(Benchmark):
    """ELD raw low-light pairs (4 cameras, ×100/×200), scored with ELD's own protocol.

    Each sample is one short-exposure input (``1×4×H/2×W/2`` packed raw in ``[0, 1]``,
    brightened by its exposure ratio) with its long-exposure reference as ``clean``; ``cond``
    holds ``sensor`` (the camera folder name), ``iso`` (the input's ISO), ``exposure_ratio``
    (from EXIF, what the input was multiplied by) and ``nominal_ratio`` (the capture plan's
    100 or 200, the column the paper's tables group by; EXIF ratios of real captures need not
    be round). Keys are ``<Camera>/scene-<k>/IMG_<NNNN>``.

    Args:
        root: the ``ELD`` folder (``<root>/<Camera>/scene-<k>/IMG_<NNNN>.<ext>``).
        cameras: camera folders to evaluate; ``None`` takes those of the paper's four
            (``ELD_CAMERAS``) that are present.
        scenes: scene numbers; ``None`` takes every ``scene-<k>`` folder of each camera.
        img_ids: input image ids (default: ×100 ids 4, 9, 14 and ×200 ids 5, 10, 15); the
            reference ids 1, 6, 11, 16 are not allowed.
        channel_order: ``"rggb"`` (core: R, Gr, Gb, B) or ``"rgbg"`` (ELD code: R, Gr, B, Gb).
        correct: apply the protocol's brightness correction when scoring.
        white_level: the white point, ``16383`` in the protocol; ``None`` uses each file's own.
        strict: require the full benchmark: the paper's four cameras with scenes 1–10.

    Raises:
        ImageReadError: ``root``, a camera or a scene folder is missing.
        InvalidInputError: a scene does not hold exactly 16 raws, or an option is invalid.
    """

    name = "eld"
    domain = "raw"
    has_ground_truth = True
    conventions = raw_protocol_conventions(True)

    def __init__(
        self,
        root: str,
        cameras: Sequence[str] | None = None,
        scenes: Sequence[int] | None = None,
        img_ids: Sequence[int] = ELD_INPUT_IDS,
        channel_order: str = "rggb",
        correct: bool = True,
        white_level: int | None = PROTOCOL_WHITE_LEVEL,
        strict: bool = False,
    ) -> None:
        self.root = Path(root)
        self.channel_order = _check_channel_order(self.name, channel_order)
        self.white_level = _check_white_level(self.name, white_level)
        if not isinstance(correct, bool) or not isinstance(strict, bool):
            raise InvalidInputError(
                f"benchmark 'eld': correct and strict must be booleans, got {correct!r}, {strict!r}"
            )
        self.correct = correct
        self.strict = strict
        self.img_ids = _int_list(self.name, "img_ids", img_ids, 1, FILES_PER_SCENE)
        references = sorted(set(self.img_ids) & set(ELD_REFERENCE_IDS))
        if references:
            raise InvalidInputError(
                f"benchmark 'eld': img_ids {references} are reference (long-exposure) ids; "
                f"inputs are the other ids, e.g. {list(ELD_INPUT_IDS)}"
            )
        self.scenes_option = None if scenes is None else _int_list(self.name, "scenes", scenes, 1, None)
        if cameras is not None and (
            isinstance(cameras, str) or not isinstance(cameras, Sequence) or not all(isinstance(c, str) for c in cameras)
        ):
            raise InvalidInputError(f"benchmark 'eld': cameras must be a list of folder names, got {cameras!r}")
        self.cameras_option = None if cameras is None else list(cameras)
        white = self.white_level
        white_note = "" if white == PROTOCOL_WHITE_LEVEL else f"white level {white or 'of each file'}"
        self.conventions = raw_protocol_conventions(correct, white_note)

        if not self.root.is_dir():
            raise ImageReadError(
                f"{self.root}: ELD root folder not found (expected <root>/<Camera>/scene-<k>/)"
            )
        self.cameras = self._resolve_cameras()
        self._pairs = self._collect_pairs()
        self._cache: tuple[Path, torch.Tensor] | None = None

    def _resolve_cameras(self) -> list[str]:
        if self.strict:
            wanted = list(self.cameras_option or ELD_CAMERAS)
            missing = [c for c in ELD_CAMERAS if c not in wanted]
            if missing:
                raise InvalidInputError(
                    f"benchmark 'eld': strict mode evaluates all of {list(ELD_CAMERAS)}; missing {missing}"
                )
        elif self.cameras_option is not None:
            wanted = list(self.cameras_option)
        else:
            wanted = [c for c in ELD_CAMERAS if (self.root / c).is_dir()]
            if not wanted:
                raise ImageReadError(
                    f"{self.root}: none of the ELD camera folders {', '.join(ELD_CAMERAS)} found; "
                    "pass cameras=[...] for other folder names"
                )
        if not wanted:
            raise InvalidInputError("benchmark 'eld': cameras is empty")
        for camera in wanted:
            if not (self.root / camera).is_dir():
                raise ImageReadError(f"{self.root / camera}: ELD camera folder not found")
        return wanted

    def _scenes_of(self, camera: str) -> list[int]:
        if self.strict:
            scenes = self.scenes_option or list(range(1, 11))
            if sorted(scenes) != list(range(1, 11)):
                raise InvalidInputError(f"benchmark 'eld': strict mode evaluates scenes 1..10, got {scenes}")
            return scenes
        if self.scenes_option is not None:
            return list(self.scenes_option)
        found = sorted(
            int(m.group(1))
            for p in (self.root / camera).iterdir()
            if p.is_dir() and (m := _SCENE_DIR.match(p.name))
        )
        if not found:
            raise ImageReadError(f"{self.root / camera}: no scene-<k> folders found")
        return found

    def _collect_pairs(self) -> list[_Pair]:
        pairs: list[_Pair] = []
        for camera in self.cameras:
            for scene in self._scenes_of(camera):
                files = scene_files(self.root / camera / f"scene-{scene}")
                # Inputs grouped by reference, so consecutive samples share one reference read.
                for image_id in sorted(self.img_ids, key=lambda i: (nearest_reference(i), i)):
                    pairs.append(
                        _Pair(
                            f"{camera}/scene-{scene}/IMG_{image_id:04d}",
                            camera,
                            files[image_id],
                            files[nearest_reference(image_id)],
                            nominal_ratio(image_id),
                        )
                    )
        return pairs

    def config(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "cameras": self.cameras_option,
            "scenes": self.scenes_option,
            "img_ids": list(self.img_ids),
            "channel_order": self.channel_order,
            "correct": self.correct,
            "white_level": self.white_level,
            "strict": self.strict,
        }

    def __len__(self) -> int:
        return len(self._pairs)

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self._pairs)):
            yield self[index]

    def __getitem__(self, index: int) -> Sample:
        pair = self._pairs[index]
        iso_in, t_in = read_exposure(pair.input_path)
        iso_ref, t_ref = read_exposure(pair.reference_path)
        ratio = (iso_ref * t_ref) / (iso_in * t_in)
        frame = read_raw(pair.input_path)
        noisy = (self._pack(frame) * ratio).clamp(0.0, 1.0)
        # A copy: the cached reference must not change if a caller edits a sample in place.
        clean = self._reference(pair.reference_path).clone()
        if clean.shape != noisy.shape:
            raise InvalidInputError(
                f"{pair.input_path}: packed size {tuple(noisy.shape[-2:])} differs from its reference "
                f"{pair.reference_path.name} ({tuple(clean.shape[-2:])})"
            )
        cond = {
            "sensor": pair.camera,
            "iso": float(iso_in),
            "exposure_ratio": float(ratio),
            "nominal_ratio": pair.nominal_ratio,
        }
        return Sample(pair.key, noisy.unsqueeze(0), clean.unsqueeze(0), cond)  # type: ignore[arg-type]

    def _pack(self, frame: RawFrame) -> torch.Tensor:
        return pack_frame(frame, order=self.channel_order, white=self.white_level)  # type: ignore[arg-type]

    def _reference(self, path: Path) -> torch.Tensor:
        if self._cache is None or self._cache[0] != path:
            self._cache = (path, self._pack(read_raw(path)))
        return self._cache[1]

    def score(self, output: torch.Tensor, sample: Sample) -> dict[str, float]:
        """ELD's protocol: clip, brightness-correct (unless ``correct=False``), PSNR/SSIM ×255."""
        return raw_protocol_score(self.name, output, sample, correct=self.correct)


BENCHMARKS = [ELD]
