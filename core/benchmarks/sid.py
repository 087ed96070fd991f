"""SID-Sony: the See-in-the-Dark Sony α7S II raw test set, scored with ELD's raw protocol.

References:
    C. Chen, Q. Chen, J. Xu and V. Koltun, "Learning to See in the Dark", CVPR 2018 (data,
    file lists, exposure-ratio rule; cchen156/Learning-to-See-in-the-Dark).
    K. Wei et al., ELD (CVPR 2020 / TPAMI 2021): raw-space evaluation of SID with the
    brightness correction and a centre crop (Vandermode/ELD ``test_SID.py``).

Layout (``root`` is the folder that holds ``Sony/``; the ``Sony`` folder itself works too)::

    <root>/Sony/short/<set><id 4d>_<burst 2d>_<t>s.ARW     e.g. 10003_00_0.1s.ARW
    <root>/Sony/long/<set><id 4d>_<burst 2d>_<t>s.ARW      e.g. 10003_00_10s.ARW
    <root>/<list file>

List files (the format is recognised per line):
    * SID's ``Sony_test_list.txt``: ``./Sony/short/<f> ./Sony/long/<g> ISO<n> F<aperture>``
      (paths relative to the folder holding ``Sony/``; the ISO comes from the list).
    * ELD's ``Sony_test.txt``: ``<short name> <long name>``.
    * ELD's ``SID_Sony_paired.txt`` (TPAMI, 129 pairs) and ``SID_Sony_15_paired.txt`` (CVPR,
      45 pairs): ``<short name> <long name> <ratio>``; the ratio column is checked against
      the names.
    Where the list gives no ISO it is read from the short file's EXIF.

Protocol:
    * Exposure ratio from the file names: ``min(t_long / t_short, 300)`` (0.1 s→10 s: 100,
      0.04 s→10 s: 250, 0.033 s→10 s: 303 → 300, 0.1 s→30 s: 300).
    * Only burst ``_00_`` of each test id is evaluated (SID's ``test_Sony.py``;
      ``bursts="all"`` keeps every line of the list).
    * Packing, two conventions: ``packing="eld"`` (ELD's raw protocol, default): each channel
      minus the file's black level of that colour, over ``16383 - black``, clipped to
      ``[0, 1]``; ``packing="sid"`` (SID's code): a fixed black level 512, ``(x - 512) /
      (16383 - 512)``, floored at 0. The short exposure is then multiplied by the ratio and
      clipped to ``[0, 1]``. Both take each channel from the site rawpy's ``raw_pattern``
      names (SID's code assumes RGGB positions, which is what the α7S II has).
    * Only the centre ``512×512`` of the packed image is evaluated (ELD, because of fixed
      pattern noise near a corner of some SID frames): both images are cropped before
      denoising, window starting at ``(h//2 - 256, w//2 - 256)``. ``crop`` changes the size
      (for tiny test data) and ``crop=None`` keeps the full frame.
    * Scoring as ELD: brightness correction, PSNR/SSIM on packed raw ×255, scikit-image SSIM.

SID's own paper evaluated sRGB renderings (rawpy ``postprocess``) with MATLAB's metrics; that
protocol needs a camera pipeline on the output and is not what raw denoising papers report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..benchmark import Benchmark
from ..errors import ImageReadError, InvalidInputError
from ..types import Sample
from .eld import (
    PROTOCOL_WHITE_LEVEL,
    _check_channel_order,
    _check_white_level,
    raw_protocol_conventions,
    raw_protocol_score,
)
from .rawutil import RawFrame, center_crop, pack_frame, read_exposure, read_raw

__all__ = ["SID", "SID_MAX_RATIO", "SID_SENSOR", "exposure_from_name", "sid_ratio"]

SID_MAX_RATIO = 300.0
"""SID caps the exposure ratio at 300 (so 10 s / 0.033 s counts as ×300)."""

SID_SENSOR = "SonyA7S2"
"""The camera of SID's Sony subset (Sony α7S II), the ``sensor`` condition of every sample."""

SID_BLACK_LEVEL = 512
"""SID's fixed black level for the Sony files (``packing="sid"``)."""

PACKINGS: tuple[str, ...] = ("eld", "sid")

_NAME = re.compile(r"^(\d)(\d{4})_(\d{2})_(\d+(?:\.\d+)?)s\.[A-Za-z0-9]+$")
_ISO = re.compile(r"^ISO(\d+(?:\.\d+)?)$", re.IGNORECASE)


def exposure_from_name(name: str) -> float:
    """The exposure time in seconds from a SID file name (``10003_00_0.1s.ARW`` → 0.1).

    Raises:
        InvalidInputError: the name does not follow ``<set><id>_<burst>_<t>s.<ext>``.
    """
    match = _NAME.match(Path(name).name)
    if match is None or float(match.group(4)) <= 0:
        raise InvalidInputError(
            f"{name}: not a SID file name (<set digit><4-digit id>_<2-digit burst>_<seconds>s.ARW, "
            "e.g. 10003_00_0.1s.ARW); the exposure ratio is read from it"
        )
    return float(match.group(4))


def sid_ratio(short_name: str, long_name: str) -> float:
    """SID's exposure ratio ``min(t_long / t_short, 300)`` from the two file names."""
    return min(exposure_from_name(long_name) / exposure_from_name(short_name), SID_MAX_RATIO)


@dataclass(frozen=True)
class _Pair:
    key: str
    short: Path
    long: Path
    ratio: float
    iso: float | None


class SID(Benchmark):
    """SID-Sony raw low-light pairs (×100/×250/×300), scored with ELD's raw protocol.

    Each sample is a short exposure (``1×4×h×w`` packed raw, brightened by the ratio, centre
    crop) with its long exposure as ``clean``; ``cond`` holds ``sensor`` (``"SonyA7S2"``),
    ``iso`` and ``exposure_ratio``. Keys are the short file's stem (``10003_00_0.1s``).

    Args:
        root: the folder holding ``Sony/short`` and ``Sony/long`` (or the ``Sony`` folder).
        list_file: pair list, absolute or relative to ``root`` (or to ``Sony/``):
            ``Sony_test_list.txt`` (SID, default), ``Sony_test.txt``, ``SID_Sony_paired.txt``
            or ``SID_Sony_15_paired.txt`` (ELD).
        crop: side of the centred square evaluated on the packed image (512 in the protocol);
            ``None`` keeps the full frame.
        packing: ``"eld"`` (per-file black levels, default) or ``"sid"`` (fixed black 512).
        channel_order: ``"rggb"`` (core: R, Gr, Gb, B) or ``"rgbg"`` (ELD/SID code: R, Gr, B, Gb).
        bursts: ``"first"`` evaluates burst ``00`` only (the protocol); ``"all"`` every line.
        correct: apply the protocol's brightness correction when scoring.
        white_level: ``16383`` in both codes; ``None`` uses each file's own.

    Raises:
        ImageReadError: the folders, the list or a listed file is missing.
        InvalidInputError: a malformed list line, a file name without an exposure time, a
            ratio column that disagrees with the names, a duplicate pair, or a bad option.
    """

    name = "sid"
    domain = "raw"
    has_ground_truth = True
    conventions = raw_protocol_conventions(True, "SID-Sony: centre 512×512 of the packed image")

    def __init__(
        self,
        root: str,
        list_file: str = "Sony_test_list.txt",
        crop: int | None = 512,
        packing: str = "eld",
        channel_order: str = "rggb",
        bursts: str = "first",
        correct: bool = True,
        white_level: int | None = PROTOCOL_WHITE_LEVEL,
    ) -> None:
        self.root = Path(root)
        self.list_option = str(list_file)
        if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop <= 0):
            raise InvalidInputError(f"benchmark 'sid': crop must be a positive integer or None, got {crop!r}")
        if packing not in PACKINGS:
            raise InvalidInputError(f"benchmark 'sid': packing must be one of {', '.join(PACKINGS)}, got {packing!r}")
        if bursts not in ("first", "all"):
            raise InvalidInputError(f"benchmark 'sid': bursts must be 'first' or 'all', got {bursts!r}")
        if not isinstance(correct, bool):
            raise InvalidInputError(f"benchmark 'sid': correct must be a boolean, got {correct!r}")
        self.crop = crop
        self.packing = packing
        self.channel_order = _check_channel_order(self.name, channel_order)
        self.bursts = bursts
        self.correct = correct
        self.white_level = _check_white_level(self.name, white_level)
        crop_note = f"centre {crop}×{crop} of the packed image" if crop else "full packed image (crop=None)"
        self.conventions = raw_protocol_conventions(
            correct, f"SID-Sony: {crop_note}; packing {packing!r}"
        )

        self.sony_dir, self.base_dir = self._find_sony_dir()
        self.list_path = self._find_list()
        self._pairs = self._read_list()
        self._cache: tuple[Path, torch.Tensor] | None = None

    def _find_sony_dir(self) -> tuple[Path, Path]:
        if (self.root / "Sony" / "short").is_dir() and (self.root / "Sony" / "long").is_dir():
            return self.root / "Sony", self.root
        if (self.root / "short").is_dir() and (self.root / "long").is_dir():
            return self.root, self.root.parent
        raise ImageReadError(
            f"{self.root}: SID folders not found: expected <root>/Sony/short and <root>/Sony/long "
            "(or root itself holding short/ and long/)"
        )

    def _find_list(self) -> Path:
        given = Path(self.list_option)
        places = (self.root, self.base_dir, self.sony_dir)
        candidates = [given] if given.is_absolute() else [place / given for place in places]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise ImageReadError(
            f"SID list file {self.list_option!r} not found (looked in {', '.join(str(c.parent) for c in candidates)}); "
            "use SID's Sony_test_list.txt or ELD's Sony_test.txt / SID_Sony_paired.txt"
        )

    def _resolve(self, token: str, folder: str) -> Path:
        # SID's lists give "./Sony/short/x.ARW" relative to the folder holding Sony/; ELD's
        # lists give bare names inside Sony/short and Sony/long.
        return self.base_dir / token if "/" in token else self.sony_dir / folder / token

    def _read_list(self) -> list[_Pair]:
        try:
            lines = self.list_path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ImageReadError(f"{self.list_path}: cannot read SID list file ({exc})") from exc
        pairs: list[_Pair] = []
        keys: set[str] = set()
        for number, line in enumerate(lines, start=1):
            tokens = line.split()
            if not tokens:
                continue
            where = f"{self.list_path}:{number}"
            if len(tokens) not in (2, 3, 4):
                raise InvalidInputError(
                    f"{where}: expected '<short> <long>' (+ '<ratio>' or 'ISO<n> F<f>'), got {line.strip()!r}"
                )
            short, long = self._resolve(tokens[0], "short"), self._resolve(tokens[1], "long")
            try:
                ratio = sid_ratio(short.name, long.name)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{where}: {exc}") from None
            iso: float | None = None
            if len(tokens) == 3:
                try:
                    listed = float(tokens[2])
                except ValueError:
                    raise InvalidInputError(
                        f"{where}: the third column must be the exposure ratio, got {tokens[2]!r}"
                    ) from None
                if abs(listed - ratio) > 0.5:
                    raise InvalidInputError(
                        f"{where}: listed ratio {tokens[2]} disagrees with the file names "
                        f"(min({exposure_from_name(long.name)} / {exposure_from_name(short.name)}, 300) = {ratio:g})"
                    )
            elif len(tokens) == 4:
                match = _ISO.match(tokens[2])
                if match is None:
                    raise InvalidInputError(f"{where}: the third column must be ISO<n>, got {tokens[2]!r}")
                iso = float(match.group(1))
            burst = _NAME.match(short.name)
            if self.bursts == "first" and burst is not None and burst.group(3) != "00":
                continue
            key = short.stem
            if key in keys:
                raise InvalidInputError(f"{where}: {short.name} is listed twice")
            keys.add(key)
            pairs.append(_Pair(key, short, long, ratio, iso))
        if not pairs:
            raise InvalidInputError(f"{self.list_path}: no pairs to evaluate")
        missing = [p for pair in pairs for p in (pair.short, pair.long) if not p.is_file()]
        if missing:
            more = f" and {len(set(missing)) - 1} more" if len(set(missing)) > 1 else ""
            raise ImageReadError(f"{missing[0]}: raw file listed in {self.list_path.name} not found{more}")
        return pairs

    def config(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "list_file": self.list_option,
            "crop": self.crop,
            "packing": self.packing,
            "channel_order": self.channel_order,
            "bursts": self.bursts,
            "correct": self.correct,
            "white_level": self.white_level,
        }

    def __len__(self) -> int:
        return len(self._pairs)

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self._pairs)):
            yield self[index]

    def __getitem__(self, index: int) -> Sample:
        pair = self._pairs[index]
        iso = pair.iso if pair.iso is not None else read_exposure(pair.short)[0]
        noisy = (self._pack(read_raw(pair.short)) * pair.ratio).clamp(0.0, 1.0)
        clean = self._reference(pair.long).clone()
        if clean.shape != noisy.shape:
            raise InvalidInputError(
                f"{pair.short}: packed size {tuple(noisy.shape[-2:])} differs from its long exposure "
                f"{pair.long.name} ({tuple(clean.shape[-2:])})"
            )
        if self.crop is not None:
            noisy = center_crop(noisy, self.crop, source=str(pair.short))
            clean = center_crop(clean, self.crop, source=str(pair.long))
        cond = {"sensor": SID_SENSOR, "iso": float(iso), "exposure_ratio": float(pair.ratio)}
        noisy, clean = noisy.unsqueeze(0).contiguous(), clean.unsqueeze(0).contiguous()
        return Sample(pair.key, noisy, clean, cond)  # type: ignore[arg-type]

    def _pack(self, frame: RawFrame) -> torch.Tensor:
        black = SID_BLACK_LEVEL if self.packing == "sid" else None
        order = self.channel_order
        return pack_frame(frame, order=order, black=black, white=self.white_level)  # type: ignore[arg-type]

    def _reference(self, path: Path) -> torch.Tensor:
        if self._cache is None or self._cache[0] != path:
            self._cache = (path, self._pack(read_raw(path)))
        return self._cache[1]

    def score(self, output: torch.Tensor, sample: Sample) -> dict[str, float]:
        """ELD's raw protocol: clip, brightness-correct (unless ``correct=False``), PSNR/SSIM ×255."""
        return raw_protocol_score(self.name, output, sample, correct=self.correct)


BENCHMARKS = [SID]
