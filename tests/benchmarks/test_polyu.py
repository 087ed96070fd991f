"""PolyU: CroppedImages pairing and conditions, LAN's tiled protocol, errors, the real data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from noiseshift.benchmarks.fixtures.polyu import CROPPED_NAMES, write_polyu
from noiseshift.benchmarks.polyu import PolyU, lan_tiles, parse_polyu_name
from noiseshift.errors import ImageReadError, InvalidInputError
from noiseshift.image_io import read_image
from noiseshift.metrics import psnr
from noiseshift.registry import BENCHMARKS
from noiseshift.testing import check_benchmark

REAL_POLYU = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "PolyU"


@pytest.fixture
def polyu_root(tmp_path: Path) -> Path:
    return write_polyu(tmp_path / "PolyU")


def test_crops_pair_by_stripping_the_suffix_only_and_carry_sensor_and_iso(polyu_root: Path) -> None:
    bench = check_benchmark(PolyU(polyu_root))
    assert bench.keys() == sorted(CROPPED_NAMES)  # includes the double-underscore name
    crops = polyu_root / "CroppedImages"
    for sample in bench:
        assert torch.equal(sample.noisy, read_image(crops / f"{sample.key}_real.JPG"))
        assert torch.equal(sample.clean, read_image(crops / f"{sample.key}_mean.JPG"))
    assert bench[0].cond == {"sensor": "Canon5D2", "iso": 3200.0}
    assert bench[1].cond == {"sensor": "NikonD800", "iso": 5000.0}
    assert PolyU(crops).keys() == bench.keys()  # root may be CroppedImages itself
    assert isinstance(BENCHMARKS.build({"type": "polyu", "root": str(polyu_root)}), PolyU)
    conv = bench.conventions
    assert (conv.color_space, conv.data_range, conv.quantize, conv.ssim) == ("rgb", 1.0, "float", "gaussian")


def test_name_parsing() -> None:
    assert parse_polyu_name("Sony_3-5_50_6400_toy_2") == {"sensor": "Sony", "iso": 6400.0}
    assert parse_polyu_name("NikonD800_6-3_125_5000_plant__4") == {"sensor": "NikonD800", "iso": 5000.0}
    assert parse_polyu_name("my_photo") == {}


def test_lan_tiles_are_raster_ordered_and_drop_remainders() -> None:
    assert lan_tiles(600, 1100, 512) == [(0, 0), (0, 512)]
    assert lan_tiles(1100, 600, 512) == [(0, 0), (512, 0)]
    assert lan_tiles(500, 500, 512) == []
    # Tile counts of the official originals (benchmarks.md §4.1, W×H -> rows×cols).
    assert len(lan_tiles(1856, 2784, 512)) == 15 and len(lan_tiles(3456, 5184, 512)) == 60
    assert len(lan_tiles(2456, 3680, 512)) == 28 and len(lan_tiles(2216, 3936, 512)) == 28


def test_tiled_protocol_names_tiles_and_scores_their_top_left_crop(polyu_root: Path) -> None:
    bench = check_benchmark(PolyU(polyu_root, protocol="tiled"))
    assert bench.keys() == ["Canon5D2_bag_0000", "Canon5D2_bag_0001"]
    original = read_image(polyu_root / "OriginalImages" / "Canon5D2_bag_Real.JPG")
    mean = read_image(polyu_root / "OriginalImages" / "Canon5D2_bag_mean.JPG")
    second = bench[1]
    assert torch.equal(second.noisy, original[..., 0:256, 512:768])
    assert torch.equal(second.clean, mean[..., 0:256, 512:768])
    assert second.cond == {"sensor": "Canon5D2"}
    assert bench.conventions.averaging == "crop"


def test_tile_and_crop_sizes_are_parameters(polyu_root: Path) -> None:
    original = read_image(polyu_root / "OriginalImages" / "Canon5D2_bag_Real.JPG")
    bench = PolyU(polyu_root, protocol="tiled", tile=256, crop=100)
    # 600×1100 in 256 tiles: 2 rows × 4 columns, raster order.
    assert len(bench) == 8 and bench.keys()[-1] == "Canon5D2_bag_0007"
    assert torch.equal(bench[5].noisy, original[..., 256:356, 256:356])
    whole = PolyU(polyu_root, protocol="tiled", tile=256, crop=None)
    assert torch.equal(whole[7].noisy, original[..., 256:512, 768:1024])


def test_layout_errors_name_the_problem(polyu_root: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        PolyU(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="no supported images|no <name>_real"):
        PolyU(empty)
    with pytest.raises(InvalidInputError, match="protocol"):
        PolyU(polyu_root, protocol="full")
    with pytest.raises(InvalidInputError, match="larger than tile"):
        PolyU(polyu_root, protocol="tiled", tile=64, crop=128)
    with pytest.raises(InvalidInputError, match=r"expected 100 CroppedImages pairs"):
        PolyU(polyu_root, strict=True)
    with pytest.raises(InvalidInputError, match=r"expected 40 OriginalImages scenes"):
        PolyU(polyu_root, protocol="tiled", strict=True)
    crops = polyu_root / "CroppedImages"
    (crops / "Canon5D2_5_160_3200_chair_11_mean.JPG").unlink()
    with pytest.raises(InvalidInputError, match=r"unpaired.*Canon5D2_5_160_3200_chair_11_real\.JPG"):
        PolyU(polyu_root)


def test_unreadable_and_mismatched_images_fail_when_read(polyu_root: Path) -> None:
    crops = polyu_root / "CroppedImages"
    (crops / "NikonD800_6-3_125_5000_plant__4_real.JPG").write_bytes(b"not a jpeg")
    bench = PolyU(polyu_root)
    bench[0]  # the other pair still reads
    with pytest.raises(ImageReadError, match="plant__4_real.JPG"):
        bench[1]
    with pytest.raises(IndexError):
        bench[2]
    smaller = read_image(crops / "Canon5D2_5_160_3200_chair_11_mean.JPG")[..., :16, :]
    from noiseshift.image_io import write_image

    write_image(crops / "Canon5D2_5_160_3200_chair_11_mean.JPG", smaller, overwrite=True)
    with pytest.raises(InvalidInputError, match="chair_11_real.JPG is 32×32"):
        PolyU(polyu_root)[0]


# -- the real data (../shared/data/real/PolyU), when present ----------------------------------

needs_real_polyu = pytest.mark.skipif(
    not (REAL_POLYU / "CroppedImages").is_dir(), reason=f"real PolyU data not found at {REAL_POLYU}"
)


@needs_real_polyu
def test_real_polyu_has_100_pairs_from_5_cameras() -> None:
    bench = PolyU(REAL_POLYU, strict=True)
    assert len(bench) == 100
    cameras = Counter(pair.cond["sensor"] for pair in bench.pairs)
    assert cameras == {"Canon5D2": 29, "Canon600D": 11, "Canon80D": 15, "NikonD800": 33, "Sony": 12}
    assert all(800 <= pair.cond["iso"] <= 12800 for pair in bench.pairs)


@pytest.mark.slow
@needs_real_polyu
def test_real_polyu_noisy_input_psnr_matches_the_measured_35_97_db() -> None:
    bench = PolyU(REAL_POLYU)
    conv = bench.conventions
    values = []
    for sample in bench:  # the protocol's PSNR; SSIM is left to the slow runner test
        values.append(float(psnr(sample.noisy, sample.clean, conv.data_range, quantize=conv.quantize == "uint8")))
    assert len(values) == 100
    assert sum(values) / len(values) == pytest.approx(35.97, abs=0.01)


@pytest.mark.slow
@needs_real_polyu
def test_real_polyu_runner_scores_match_skimage_on_a_few_items() -> None:
    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from noiseshift.runner import run_benchmark

    bench = PolyU(REAL_POLYU)
    result = run_benchmark(lambda noisy, cond: noisy, bench, limit=3)  # scores the noisy input itself
    for index in range(3):
        sample = bench[index]
        noisy = sample.noisy[0].permute(1, 2, 0).double().numpy()
        clean = sample.clean[0].permute(1, 2, 0).double().numpy()
        scores = result.per_sample[sample.key]
        assert scores["psnr"] == pytest.approx(peak_signal_noise_ratio(clean, noisy, data_range=1), abs=1e-6)
        expected = structural_similarity(clean, noisy, data_range=1, channel_axis=2, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False)
        assert scores["ssim"] == pytest.approx(expected, abs=1e-4)
    assert np.isfinite(result.mean()["psnr"])
