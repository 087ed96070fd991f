"""SID-Sony on a fixture: list formats, capped ratio, both packings, centre crop, protocol scoring."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from noiseshift.benchmarks.fixtures.sid import SIDFixture, write_sid
from noiseshift.benchmarks.sid import SID, sid_ratio
from noiseshift.errors import ImageReadError, InvalidInputError
from noiseshift.registry import BENCHMARKS, HOST
from noiseshift.testing import check_benchmark

BURST0 = {"10003_00_0.1s", "10003_00_0.04s", "10074_00_0.1s", "10178_00_0.033s"}
# Ratios written out: min(t_long / t_short, 300).
RATIOS = {"10003_00_0.1s": 100.0, "10003_00_0.04s": 250.0, "10074_00_0.1s": 300.0, "10178_00_0.033s": 300.0}
ISOS = {"10003_00_0.1s": 200.0, "10003_00_0.04s": 200.0, "10074_00_0.1s": 400.0, "10178_00_0.033s": 250.0}
LONG = {"10003_00_0.1s": "10003_00_10s", "10003_00_0.04s": "10003_00_10s", "10074_00_0.1s": "10074_00_30s",
        "10178_00_0.033s": "10178_00_10s"}


@pytest.fixture(scope="module")
def sid(tmp_path_factory: pytest.TempPathFactory) -> SIDFixture:
    return write_sid(tmp_path_factory.mktemp("sid") / "SID", black=(500, 505, 510, 515))


def packed(mosaic: np.ndarray, black: tuple[int, ...] | None) -> np.ndarray:
    """RGGB packing by hand: per-site black (ELD) or fixed 512 (SID), white 16383, clip."""
    planes = []
    for row, col in ((0, 0), (0, 1), (1, 0), (1, 1)):
        level = 512 if black is None else black[2 * row + col]
        planes.append((mosaic[row::2, col::2].astype(np.float64) - level) / (16383 - level))
    return np.clip(np.stack(planes), 0, 1)


@pytest.mark.parametrize("list_file", ["Sony_test_list.txt", "Sony_test.txt", "SID_Sony_paired.txt"])
def test_every_list_format_gives_the_burst_00_pairs_with_capped_ratios(sid: SIDFixture, list_file: str) -> None:
    bench = SID(str(sid.root), list_file=list_file, crop=None)
    samples = {s.key: s for s in bench}
    assert set(samples) == BURST0
    for key, sample in samples.items():
        assert sample.cond == {"sensor": "SonyA7S2", "iso": ISOS[key], "exposure_ratio": pytest.approx(RATIOS[key])}
        assert sample.noisy.shape == (1, 4, 16, 16) and sample.noisy.dtype == torch.float32
        assert sample.clean is not None
        assert np.allclose(sample.clean[0].numpy(), packed(sid.mosaics[LONG[key] + ".ARW"], sid.black), atol=1e-6)
        noisy = np.clip(packed(sid.mosaics[key + ".ARW"], sid.black) * RATIOS[key], 0, 1)
        assert np.allclose(sample.noisy[0].numpy(), noisy, atol=1e-5)


def test_ratio_rule_from_names() -> None:
    assert sid_ratio("10003_00_0.1s.ARW", "10003_00_10s.ARW") == pytest.approx(100)
    assert sid_ratio("10003_00_0.04s.ARW", "10003_00_10s.ARW") == pytest.approx(250)
    assert sid_ratio("10178_00_0.033s.ARW", "10178_00_10s.ARW") == 300  # 303.03 capped
    assert sid_ratio("10074_00_0.1s.ARW", "10074_00_30s.ARW") == 300
    with pytest.raises(InvalidInputError, match="not a SID file name"):
        sid_ratio("IMG_0001.ARW", "10003_00_10s.ARW")


def test_all_bursts_option_keeps_every_line(sid: SIDFixture) -> None:
    keys = [s.key for s in SID(str(sid.root), crop=8, bursts="all")]
    assert set(keys) == BURST0 | {"10003_01_0.1s"}


def test_both_packing_conventions(sid: SIDFixture) -> None:
    eld_packing = next(iter(SID(str(sid.root), crop=None)))
    sid_packing = next(iter(SID(str(sid.root), crop=None, packing="sid")))
    key = eld_packing.key
    assert sid_packing.clean is not None and eld_packing.clean is not None
    assert np.allclose(sid_packing.clean[0].numpy(), packed(sid.mosaics[LONG[key] + ".ARW"], None), atol=1e-6)
    noisy = np.clip(packed(sid.mosaics[key + ".ARW"], None) * RATIOS[key], 0, 1)
    assert np.allclose(sid_packing.noisy[0].numpy(), noisy, atol=1e-5)
    assert not torch.allclose(sid_packing.clean, eld_packing.clean)  # the fixture's black is not 512
    rgbg = next(iter(SID(str(sid.root), crop=None, packing="sid", channel_order="rgbg")))
    assert torch.equal(rgbg.noisy, sid_packing.noisy[:, [0, 1, 3, 2]])


def test_centre_crop_rule(sid: SIDFixture) -> None:
    full = next(iter(SID(str(sid.root), crop=None)))
    for crop, start in ((8, 4), (7, 5), (16, 0)):
        cropped = next(iter(SID(str(sid.root), crop=crop)))
        window = (..., slice(start, start + crop), slice(start, start + crop))
        assert torch.equal(cropped.noisy, full.noisy[window])
        assert cropped.clean is not None and full.clean is not None
        assert torch.equal(cropped.clean, full.clean[window])
    with pytest.raises(InvalidInputError, match="larger than the packed image"):
        next(iter(SID(str(sid.root))))  # the protocol's 512 does not fit a 16×16 fixture
    assert SID(str(sid.root), crop=8).conventions.notes.endswith("centre 8×8 of the packed image; packing 'eld'")


def test_brightness_correction_absorbs_the_capped_ratio(sid: SIDFixture) -> None:
    bench = SID(str(sid.root), list_file="SID_Sony_paired.txt", crop=8)
    sample = next(s for s in bench if s.key == "10178_00_0.033s")
    assert sample.clean is not None
    darker = sample.clean * (300 / (10 / 0.033))
    assert bench.score(darker, sample)["psnr"] > 90
    plain = SID(str(sid.root), list_file="SID_Sony_paired.txt", crop=8, correct=False)
    assert plain.score(darker, sample)["psnr"] < 60


def test_conformance_registry_and_config(sid: SIDFixture) -> None:
    for list_file in ("Sony_test_list.txt", "SID_Sony_paired.txt"):
        check_benchmark(SID(str(sid.root), list_file=list_file, crop=8))
    HOST.load()
    assert BENCHMARKS.lookup("sid") is SID
    bench = SID(str(sid.root / "Sony"), list_file="Sony_test.txt", crop=8)  # root = the Sony folder
    config = json.loads(json.dumps(bench.config()))
    rebuilt = BENCHMARKS.build({"type": "sid", **config})
    assert [s.key for s in rebuilt] == [s.key for s in bench]


def test_bad_lists_and_missing_files_are_named(sid: SIDFixture, tmp_path: Path) -> None:
    root = tmp_path / "SID"
    shutil.copytree(sid.root, root)
    with pytest.raises(ImageReadError, match="'nope.txt' not found"):
        SID(str(root), list_file="nope.txt")
    with pytest.raises(ImageReadError, match="Sony/short and <root>/Sony/long"):
        SID(str(tmp_path))
    bad = root / "bad.txt"
    cases = {
        "10003_00_0.1s.ARW": "bad.txt:1: expected",
        "10003_00_0.1s.ARW 10003_00_10s.ARW 250": "listed ratio 250 disagrees",
        "10003_00_0.1s.ARW 10003_00_10s.ARW F9 ISO200": "third column must be ISO",
        "short.ARW 10003_00_10s.ARW": "not a SID file name",
        "10003_00_0.1s.ARW 10003_00_10s.ARW\n10003_00_0.1s.ARW 10003_00_10s.ARW":
            "bad.txt:2: 10003_00_0.1s.ARW is listed twice",
        "10009_00_0.1s.ARW 10009_00_10s.ARW": "10009_00_0.1s.ARW: raw file listed in bad.txt not found and 1 more",
    }
    for text, message in cases.items():
        bad.write_text(text + "\n")
        with pytest.raises((InvalidInputError, ImageReadError), match=message):
            SID(str(root), list_file="bad.txt", crop=8)
    (root / "Sony" / "short" / "10074_00_0.1s.ARW").write_bytes(b"garbage" * 20)
    bench = SID(str(root), list_file="Sony_test_list.txt", crop=8)
    with pytest.raises(ImageReadError, match="10074_00_0.1s.ARW"):
        list(bench)


def test_invalid_options_are_rejected(sid: SIDFixture) -> None:
    for options, message in (
        ({"crop": 0}, "crop"),
        ({"packing": "raw"}, "packing"),
        ({"bursts": "some"}, "bursts"),
        ({"channel_order": "grbg"}, "channel_order"),
    ):
        with pytest.raises(InvalidInputError, match=message):
            SID(str(sid.root), **options)
