"""Nam / CC: real/mean pairing (ours ignored), conditions, the LAN-style tiled variant, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from noiseshift.benchmarks.fixtures.nam import write_nam
from noiseshift.benchmarks.nam import Nam, parse_nam_name
from noiseshift.errors import ImageReadError, InvalidInputError
from noiseshift.image_io import read_image
from noiseshift.registry import BENCHMARKS
from noiseshift.testing import check_benchmark


@pytest.fixture
def nam_folder(tmp_path: Path) -> Path:
    return write_nam(tmp_path)


def test_crops_pair_real_with_mean_and_ignore_ours(nam_folder: Path) -> None:
    bench = check_benchmark(Nam(nam_folder.parent))
    assert bench.keys() == ["5dmark3_iso3200_1", "5dmark3_iso3200_2", "d800_iso1600_1", "d800_iso1600_2"]
    sample = bench[2]
    assert torch.equal(sample.noisy, read_image(nam_folder / "d800_iso1600_1_real.png"))
    assert torch.equal(sample.clean, read_image(nam_folder / "d800_iso1600_1_mean.png"))
    assert sample.cond == {"sensor": "d800", "iso": 1600.0}
    assert Nam(nam_folder).keys() == bench.keys()  # the folder itself works too
    assert isinstance(BENCHMARKS.build({"type": "nam", "root": str(nam_folder)}), Nam)
    assert bench.conventions.data_range == 1.0 and bench.conventions.ssim == "gaussian"


def test_name_parsing() -> None:
    assert parse_nam_name("5dmark3_iso3200_3") == {"sensor": "5dmark3", "iso": 3200.0}
    assert parse_nam_name("whatever") == {}


def test_tiled_variant_takes_the_top_left_crop_of_each_tile(nam_folder: Path) -> None:
    bench = check_benchmark(Nam(nam_folder, protocol="tiled", tile=24, crop=12))
    assert bench.keys()[0] == "5dmark3_iso3200_1_0000" and len(bench) == 4
    full = read_image(nam_folder / "5dmark3_iso3200_1_real.png")
    assert torch.equal(bench[0].noisy, full[..., :12, :12])
    assert bench[0].cond == {"sensor": "5dmark3", "iso": 3200.0}
    tiles = Nam(nam_folder, protocol="tiled", tile=12, crop=None)
    assert len(tiles) == 16 and torch.equal(tiles[3].noisy, full[..., 12:24, 12:24])


def test_errors(nam_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        Nam(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="expected 15 crop pairs"):
        Nam(nam_folder, strict=True)
    with pytest.raises(InvalidInputError, match="protocol"):
        Nam(nam_folder, protocol="patches")
    with pytest.raises(InvalidInputError, match="lower tile"):
        Nam(nam_folder, protocol="tiled", tile=64, crop=32)
    (nam_folder / "d800_iso1600_2_real.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ImageReadError, match="d800_iso1600_2_real.png"):
        Nam(nam_folder)[3]
    (nam_folder / "d800_iso1600_1_mean.png").unlink()
    with pytest.raises(InvalidInputError, match=r"unpaired.*d800_iso1600_1_real\.png"):
        Nam(nam_folder)
