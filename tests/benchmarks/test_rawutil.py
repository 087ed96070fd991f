"""Raw helpers: Bayer packing round trips, channel orders, CFA re-alignment, levels, raw reading."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from noiseshift.benchmarks.fixtures.eld import write_dng
from noiseshift.benchmarks.rawutil import (
    BAYER_PATTERNS,
    center_crop,
    normalize_levels,
    pack_bayer,
    pack_frame,
    pattern_from_rawpy,
    read_exposure,
    read_raw,
    realign_from_rggb,
    realign_to_rggb,
    reorder_channels,
    unpack_bayer,
)
from noiseshift.errors import ImageReadError, InvalidInputError

# Written out by hand (not derived from the code under test): where each colour sits in the
# 2×2 tile of each pattern; "gr" is the green on the red row.
SITES: dict[str, dict[str, tuple[int, int]]] = {
    "rggb": {"r": (0, 0), "gr": (0, 1), "gb": (1, 0), "b": (1, 1)},
    "grbg": {"gr": (0, 0), "r": (0, 1), "b": (1, 0), "gb": (1, 1)},
    "gbrg": {"gb": (0, 0), "b": (0, 1), "r": (1, 0), "gr": (1, 1)},
    "bggr": {"b": (0, 0), "gb": (0, 1), "gr": (1, 0), "r": (1, 1)},
}
CODE = {"r": 1.0, "gr": 2.0, "gb": 3.0, "b": 4.0}


def coded_mosaic(pattern: str, height: int = 6, width: int = 8) -> torch.Tensor:
    """A mosaic whose every pixel holds its colour's code (R 1, Gr 2, Gb 3, B 4)."""
    mosaic = torch.zeros(height, width)
    for color, (row, col) in SITES[pattern].items():
        mosaic[row::2, col::2] = CODE[color]
    return mosaic


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
@pytest.mark.parametrize("order", ["rggb", "rgbg"])
def test_pack_unpack_round_trip_with_leading_dims(pattern: str, order: str) -> None:
    mosaic = torch.randint(0, 16384, (2, 3, 10, 12), generator=torch.Generator().manual_seed(1))
    packed = pack_bayer(mosaic, pattern, order)
    assert packed.shape == (2, 3, 4, 5, 6) and packed.dtype == mosaic.dtype
    assert torch.equal(unpack_bayer(packed, pattern, order), mosaic)


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_packed_channels_are_rggb_whatever_the_pattern(pattern: str) -> None:
    packed = pack_bayer(coded_mosaic(pattern), pattern)
    assert [float(packed[k].unique()) for k in range(4)] == [CODE["r"], CODE["gr"], CODE["gb"], CODE["b"]]
    eld = pack_bayer(coded_mosaic(pattern), pattern, "rgbg")
    assert [float(eld[k].unique()) for k in range(4)] == [CODE["r"], CODE["gr"], CODE["b"], CODE["gb"]]
    assert torch.equal(reorder_channels(packed, "rggb", "rgbg"), eld)
    assert torch.equal(reorder_channels(eld, "rgbg", "rggb"), packed)


def test_packing_takes_each_channel_from_its_own_site() -> None:
    mosaic = torch.arange(48.0).view(6, 8)
    packed = pack_bayer(mosaic, "gbrg")
    # GBRG: R at (1, 0), Gr at (1, 1), Gb at (0, 0), B at (0, 1).
    assert torch.equal(packed[0], mosaic[1::2, 0::2]) and torch.equal(packed[1], mosaic[1::2, 1::2])
    assert torch.equal(packed[2], mosaic[0::2, 0::2]) and torch.equal(packed[3], mosaic[0::2, 1::2])


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_realignment_to_rggb_for_every_pattern(pattern: str) -> None:
    mosaic = coded_mosaic(pattern)
    aligned = realign_to_rggb(mosaic, pattern)
    assert aligned.shape == mosaic.shape
    assert torch.equal(aligned, coded_mosaic("rggb"))
    assert torch.equal(realign_from_rggb(aligned, pattern), mosaic)
    values = torch.rand(2, 6, 8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(realign_from_rggb(realign_to_rggb(values, pattern), pattern), values)
    # Re-aligning moves pixels but not their colour: packing either way gives the same planes
    # up to the flip.
    flips = {"rggb": [], "grbg": [-1], "gbrg": [-2], "bggr": [-2, -1]}[pattern]
    direct = pack_bayer(values, pattern)
    via = pack_bayer(realign_to_rggb(values, pattern), "rggb")
    assert torch.equal(via.flip(flips) if flips else via, direct)


def test_bad_mosaics_and_names_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="even height and width"):
        pack_bayer(torch.zeros(5, 8), "rggb")
    with pytest.raises(InvalidInputError, match="Bayer pattern"):
        pack_bayer(torch.zeros(4, 4), "rgbb")
    with pytest.raises(InvalidInputError, match="channel order"):
        pack_bayer(torch.zeros(4, 4), "rggb", "bgr")
    with pytest.raises(InvalidInputError, match="4×h×w"):
        unpack_bayer(torch.zeros(3, 2, 2), "rggb")


def test_levels_subtract_black_per_channel_and_clip() -> None:
    packed = torch.tensor([500.0, 600.0, 16383.0, 20000.0]).view(4, 1, 1).expand(4, 2, 2)
    black = [512, 500, 512, 400]
    out = normalize_levels(packed, black, 16383)
    expected = [0.0, 100 / 15883, 1.0, 1.0]
    assert out.dtype == torch.float32
    assert torch.allclose(out[:, 0, 0], torch.tensor(expected), atol=1e-7)
    raw = normalize_levels(packed, black, 16383, clip=False)
    assert float(raw[0, 0, 0]) < 0 and float(raw[3, 0, 0]) > 1
    with pytest.raises(InvalidInputError, match="must exceed black"):
        normalize_levels(packed, black, 450)
    with pytest.raises(InvalidInputError, match="4 black levels"):
        normalize_levels(packed, [512, 512], 16383)


def test_center_crop_follows_elds_rule() -> None:
    image = torch.arange(16 * 20.0).view(1, 16, 20)
    assert torch.equal(center_crop(image, 8), image[:, 4:12, 6:14])
    assert torch.equal(center_crop(image, 7), image[:, 5:12, 7:14])  # start h//2 - 7//2 = 5
    assert torch.equal(center_crop(image, 16), image[:, :, 2:18])
    with pytest.raises(InvalidInputError, match="larger than the packed image"):
        center_crop(image, 17)


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([[0, 1], [3, 2]], "rggb"),
        ([[1, 0], [2, 3]], "grbg"),  # rawpy's GRBG numbering (benchmarks.md §3.2)
        ([[3, 2], [0, 1]], "gbrg"),
        ([[2, 3], [1, 0]], "bggr"),
        ([[0, 1], [1, 2]], "rggb"),  # both greens sharing one code still reads right
    ],
)
def test_pattern_from_rawpy_codes(codes: list[list[int]], expected: str) -> None:
    assert pattern_from_rawpy(np.array(codes), b"RGBG") == expected


def test_non_bayer_raws_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="not a 2×2 Bayer raw"):
        pattern_from_rawpy(np.zeros((6, 6), int), b"RGBG", source="x.RAF")
    with pytest.raises(InvalidInputError, match="not an RGB Bayer pattern"):
        pattern_from_rawpy(np.array([[0, 1], [2, 3]]), b"CMYG")


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
@pytest.mark.parametrize("exif", ["exif", "ifd0"])
def test_read_raw_and_exif_of_dngs(tmp_path: Path, pattern: str, exif: str) -> None:
    mosaic = (np.arange(24 * 26).reshape(24, 26) * 7 + 300).astype(np.uint16) % 16000
    black = (500, 501, 502, 503)
    path = write_dng(tmp_path / "IMG_0001.nef", mosaic, pattern=pattern, black=black, white=15000,
                     iso=1600, exposure=Fraction(1, 250), exif=exif)
    frame = read_raw(path)
    assert frame.pattern == pattern and frame.white_level == 15000
    assert np.array_equal(frame.mosaic, mosaic)
    assert frame.black_per_site.tolist() == [[500, 501], [502, 503]]
    iso, seconds = read_exposure(path)
    assert iso == 1600 and seconds == pytest.approx(1 / 250)

    packed = pack_frame(frame, white=16383)
    for channel, color in enumerate(("r", "gr", "gb", "b")):
        row, col = SITES[pattern][color]
        site_black = black[2 * row + col]
        expected = np.clip((mosaic[row::2, col::2].astype(np.float64) - site_black) / (16383 - site_black), 0, 1)
        assert np.allclose(packed[channel].numpy(), expected, atol=1e-6), color
    fixed = pack_frame(frame, black=512, white=16383)
    row, col = SITES[pattern]["r"]
    expected = np.clip((mosaic[row::2, col::2].astype(np.float64) - 512) / (16383 - 512), 0, 1)
    assert np.allclose(fixed[0].numpy(), expected, atol=1e-6)


def test_unreadable_missing_and_exif_less_files_name_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "IMG_0004.ARW"
    garbage.write_bytes(b"not a raw file at all" * 10)
    with pytest.raises(ImageReadError, match="IMG_0004.ARW"):
        read_raw(garbage)
    with pytest.raises(ImageReadError, match="not found"):
        read_raw(tmp_path / "missing.ARW")
    empty = tmp_path / "empty.ARW"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_raw(empty)
    with pytest.raises(ImageReadError, match="ExposureTime"):
        read_exposure(garbage)
