"""SIDD blocks (validation / benchmark, sRGB / raw), submissions, and SIDD-Medium folders."""

from __future__ import annotations

import base64
import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from skimage.metrics import structural_similarity

from noiseshift.benchmarks.fixtures.sidd import (
    DEFAULT_MEDIUM_SCENES,
    raw_block_code,
    srgb_block_code,
    write_sidd_blocks,
    write_sidd_medium,
)
from noiseshift.benchmarks.matfile import write_mat_v5
from noiseshift.benchmarks.sidd import SIDD, SIDD_SCENES, SIDDMedium, decode_kaggle_csv, parse_scene_name
from noiseshift.errors import ImageReadError, InvalidInputError, OutputExistsError
from noiseshift.registry import BENCHMARKS, HOST
from noiseshift.testing import check_benchmark

IMAGES, BLOCKS, SIZE = 2, 3, 24
# The community CFA table (benchmarks.md §2.4), stated here independently of the code under test.
CFA = {"S6": "grbg", "GP": "bggr", "IP": "rggb", "N6": "bggr", "G4": "bggr"}


@pytest.fixture(scope="module")
def blocks_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sidd_blocks(tmp_path_factory.mktemp("sidd"))


@pytest.fixture(scope="module")
def medium_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sidd_medium(tmp_path_factory.mktemp("medium") / "SIDD_Medium")


def _file_blocks(root: Path, name: str) -> np.ndarray:
    return scipy.io.loadmat(root / f"{name}.mat")[name]


def _decode_raw(values: np.ndarray) -> tuple[np.ndarray, ...]:
    """(image, block, row, col) of fixture raw ground-truth values."""
    total = IMAGES * BLOCKS * SIZE * SIZE
    index = np.rint(np.asarray(values, np.float64) * (total + 1)).astype(np.int64) - 1
    return np.unravel_index(index, (IMAGES, BLOCKS, SIZE, SIZE))


def test_registered_under_their_names() -> None:
    HOST.load()
    assert BENCHMARKS.lookup("sidd") is SIDD and BENCHMARKS.lookup("sidd_medium") is SIDDMedium


def test_scene_names_parse_into_conditions() -> None:
    scene = parse_scene_name("0001_001_S6_00100_00060_3200_L")
    assert (scene.instance, scene.scene, scene.phone, scene.iso, scene.temperature) == (1, 1, "S6", 100, 3200)
    assert scene.exposure_time == pytest.approx(1 / 60) and scene.brightness == "low"
    readme = parse_scene_name("0052_002_S6_01600_01000_5500_N")  # the ReadMe's example: 1/1000 s
    assert readme.exposure_time == pytest.approx(1e-3) and readme.brightness == "normal"
    cond = parse_scene_name("0200_010_GP_01600_03200_5500_N").conditions()
    assert cond["sensor"] == "GP" and cond["camera"] == "Google Pixel" and cond["iso"] == 1600.0
    assert cond["illuminant_temperature"] == 5500.0
    assert len(SIDD_SCENES) == 40 and len(set(SIDD_SCENES)) == 40
    assert all(parse_scene_name(name).cfa == CFA[name[9:11]] for name in SIDD_SCENES)
    for bad, message in [
        ("0001_001_XX_00100_00060_3200_L", "unknown smartphone code 'XX'"),
        ("0001_001_S6_00100_00060_3200_Q", "unknown brightness code 'Q'"),
        ("0001_S6_00100", "not a SIDD scene-instance name"),
        ("0001_001_S6_00100_00000_3200_L", "shutter speed 0"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            parse_scene_name(bad)


def test_validation_srgb_blocks_keep_positions_and_scale(blocks_root: Path) -> None:
    bench = check_benchmark(SIDD(str(blocks_root)), max_samples=6)
    assert len(bench) == IMAGES * BLOCKS and bench.keys()[:4] == ["0001_01", "0001_02", "0001_03", "0002_01"]
    noisy_file = _file_blocks(blocks_root, "ValidationNoisyBlocksSrgb")
    gt_file = _file_blocks(blocks_root, "ValidationGtBlocksSrgb")
    np.testing.assert_array_equal(gt_file, srgb_block_code(IMAGES, BLOCKS, SIZE))
    for sample in bench:
        i, j = (int(part) - 1 for part in sample.key.split("_"))
        assert sample.noisy.shape == (1, 3, SIZE, SIZE)
        for tensor in (sample.noisy, sample.clean):
            levels = torch.round(tensor[0] * 255).long().numpy()
            rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
            np.testing.assert_array_equal(levels[0], i * SIZE + rows)
            np.testing.assert_array_equal(levels[1], j * SIZE + cols)
        torch.testing.assert_close(sample.noisy[0].permute(1, 2, 0), torch.from_numpy(noisy_file[i, j]).float() / 255)
        assert sample.cond["scene"] == SIDD_SCENES[i] and sample.cond["sensor"] == SIDD_SCENES[i][9:11]


def test_validation_scoring_is_float_psnr_and_gaussian_ssim_per_block(blocks_root: Path) -> None:
    bench = SIDD(str(blocks_root))
    conv = bench.conventions
    assert (conv.quantize, conv.data_range, conv.ssim, conv.averaging) == ("float", 1.0, "gaussian", "block")
    sample = next(iter(bench))
    output = (sample.noisy + sample.clean) / 2  # not on the 8-bit grid: float scoring shows
    scores = bench.score(output, sample)
    out = output[0].permute(1, 2, 0).double().numpy()
    ref = sample.clean[0].permute(1, 2, 0).double().numpy()
    assert scores["psnr"] == pytest.approx(10 * math.log10(1 / np.mean((out - ref) ** 2)), abs=1e-9)
    expected_ssim = structural_similarity(
        out, ref, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert scores["ssim"] == pytest.approx(expected_ssim, abs=1e-4)


@pytest.mark.parametrize("split", ["validation", "benchmark"])
def test_raw_blocks_are_realigned_per_phone(blocks_root: Path, split: str) -> None:
    bench = check_benchmark(SIDD(str(blocks_root), split=split, mode="raw"), max_samples=6)
    assert bench.domain == "raw" and bench.has_ground_truth == (split == "validation")
    gt = _file_blocks(blocks_root, "ValidationGtBlocksRaw")
    np.testing.assert_array_equal(gt, raw_block_code(IMAGES, BLOCKS, SIZE))
    for sample in bench:
        i, j = (int(part) - 1 for part in sample.key.split("_"))
        pattern = CFA[SIDD_SCENES[i][9:11]]
        assert sample.noisy.shape == (1, 4, SIZE // 2, SIZE // 2) and sample.cond["cfa"] == pattern
        if split == "benchmark":
            assert sample.clean is None
            continue
        image, block, rows, cols = _decode_raw(sample.clean[0].numpy())
        assert np.all(image == i) and np.all(block == j)
        letters = np.array(list(pattern)).reshape(2, 2)
        for channel, colour in enumerate("rggb"):
            assert set(letters[rows[channel] % 2, cols[channel] % 2].ravel()) == {colour}
        assert np.array_equal(rows[1], rows[0]) and np.array_equal(cols[2], cols[0])


def test_benchmark_split_has_no_ground_truth(blocks_root: Path) -> None:
    bench = check_benchmark(SIDD(str(blocks_root), split="benchmark"))
    assert bench.has_ground_truth is False and "server" in bench.conventions.notes
    sample = next(iter(bench))
    with pytest.raises(InvalidInputError, match="no ground truth"):
        bench.score(sample.noisy, sample)


def test_kaggle_csv_round_trips_rounded_uint8_blocks(tmp_path: Path, blocks_root: Path) -> None:
    bench = SIDD(str(blocks_root), split="benchmark")
    noisy = _file_blocks(blocks_root, "BenchmarkNoisyBlocksSrgb")
    # x+0.4 levels rounds down, x+0.6 up: truncating (astype(uint8)) would fail the second.
    outputs = {}
    for sample in bench:
        i, j = (int(part) - 1 for part in sample.key.split("_"))
        offset = 0.4 if (i + j) % 2 else 0.6
        outputs[sample.key] = (torch.from_numpy(noisy[i, j]).permute(2, 0, 1)[None].double() + offset).float() / 255
    csv_file = bench.write_submission(outputs, tmp_path)
    assert csv_file == tmp_path / "SubmitSrgb.csv"
    with csv_file.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["ID", "BLOCK"] and [int(r[0]) for r in rows[1:]] == list(range(IMAGES * BLOCKS))
    for ident, encoded in rows[1:]:
        i, j = divmod(int(ident), BLOCKS)  # ID = image·blocks + block, image-major
        block = np.frombuffer(base64.b64decode(encoded), dtype=np.uint8).reshape(SIZE, SIZE, 3)
        expected = noisy[i, j].astype(int) + (0 if (i + j) % 2 else 1)
        np.testing.assert_array_equal(block, np.clip(expected, 0, 255))
    decoded = decode_kaggle_csv(csv_file, (SIZE, SIZE, 3), np.uint8)
    assert sorted(decoded) == list(range(IMAGES * BLOCKS))
    with pytest.raises(OutputExistsError):
        bench.write_submission(outputs, tmp_path, overwrite=False)
    bad = {**outputs, "0002_03": outputs["0002_03"] * float("nan")}
    with pytest.raises(InvalidInputError, match="NaN"):
        bench.write_submission(bad, tmp_path / "bad")
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())  # no half-written CSV


def test_raw_submission_restores_the_phone_layout(tmp_path: Path, blocks_root: Path) -> None:
    bench = SIDD(str(blocks_root), split="benchmark", mode="raw")
    outputs = {s.key: s.noisy for s in bench}
    csv_file = bench.write_submission(outputs, tmp_path, formats=("csv", "mat"), time_mp=1.5)
    assert csv_file.name == "SubmitRaw.csv"
    noisy = _file_blocks(blocks_root, "BenchmarkNoisyBlocksRaw")
    decoded = decode_kaggle_csv(csv_file, (SIZE, SIZE), noisy.dtype)
    for ident, block in decoded.items():
        np.testing.assert_array_equal(block, noisy[divmod(ident, BLOCKS)])
    legacy = scipy.io.loadmat(tmp_path / "SubmitRaw.mat")
    assert legacy["DenoisedBlocksRaw"].shape == (IMAGES, BLOCKS) and float(legacy["TimeMPRaw"][0, 0]) == 1.5
    np.testing.assert_array_equal(legacy["DenoisedBlocksRaw"][1, 2], noisy[1, 2])


def test_legacy_mat_submission_layout(tmp_path: Path, blocks_root: Path) -> None:
    bench = SIDD(str(blocks_root))
    outputs = {s.key: s.clean for s in bench}
    path = bench.write_submission(
        outputs, tmp_path, formats=("mat",), time_mp=0.25, optional_data={"MethodName": "identity"}
    )
    assert path == tmp_path / "SubmitSrgb.mat"
    shapes = {name: (shape, cls) for name, shape, cls in scipy.io.whosmat(path)}
    assert shapes == {
        "DenoisedBlocksSrgb": ((IMAGES, BLOCKS), "cell"),
        "TimeMPSrgb": ((1, 1), "double"),
        "OptionalData": ((1, 1), "struct"),
    }
    content = scipy.io.loadmat(path)
    block = content["DenoisedBlocksSrgb"][0, 1]
    assert block.dtype == np.float32 and block.shape == (SIZE, SIZE, 3)
    np.testing.assert_array_equal(block, _file_blocks(blocks_root, "ValidationGtBlocksSrgb")[0, 1] / np.float32(255))
    optional = content["OptionalData"][0, 0]
    assert set(optional.dtype.names) == {"MethodName", "Authors", "PaperTitle", "Venue", "MachineSpecs"}
    assert optional["MethodName"][0] == "identity"
    with pytest.raises(InvalidInputError, match="unknown OptionalData fields"):
        bench.write_submission(outputs, tmp_path / "x", formats=("mat",), optional_data={"Name": "x"})
    with pytest.raises(InvalidInputError, match="formats must be"):
        bench.write_submission(outputs, tmp_path / "x", formats=("zip",))
    with pytest.raises(InvalidInputError, match=r"missing \['0002_03'\]"):
        bench.write_submission({k: v for k, v in outputs.items() if k != "0002_03"}, tmp_path / "x")
    with pytest.raises(InvalidInputError, match=r"'0001_01' has shape \(1, 4, 12, 12\)"):
        bench.write_submission({**outputs, "0001_01": torch.zeros(1, 4, 12, 12)}, tmp_path / "x")


def test_block_file_errors_name_file_key_and_shape(tmp_path: Path) -> None:
    root = write_sidd_blocks(tmp_path / "s", splits=("validation",), modes=("srgb",))
    with pytest.raises(ImageReadError, match="ValidationNoisyBlocksRaw.mat: not found"):
        SIDD(str(root), mode="raw")
    with pytest.raises(InvalidInputError, match="split must be"):
        SIDD(str(root), split="test")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"the SIDD release has \(40, 32, 256, 256, 3\)"):
        SIDD(str(root), strict=True)
    gt = root / "ValidationGtBlocksSrgb.mat"
    write_mat_v5(gt, {"GtBlocks": np.zeros((IMAGES, BLOCKS, SIZE, SIZE, 3), np.uint8)}, overwrite=True)
    with pytest.raises(InvalidInputError, match=r"GtBlocksSrgb.mat: has no variable 'ValidationGtBlocksSrgb'"):
        SIDD(str(root))
    write_mat_v5(gt, {"ValidationGtBlocksSrgb": np.zeros((IMAGES, BLOCKS, SIZE, SIZE), np.uint8)}, overwrite=True)
    with pytest.raises(InvalidInputError, match="expected 5 dims"):
        SIDD(str(root))
    write_mat_v5(gt, {"ValidationGtBlocksSrgb": np.zeros((IMAGES, BLOCKS, SIZE, SIZE, 3), np.float32)}, overwrite=True)
    with pytest.raises(InvalidInputError, match="SIDD sRGB blocks are uint8"):
        SIDD(str(root))
    write_mat_v5(gt, {"ValidationGtBlocksSrgb": np.zeros((IMAGES, 2, SIZE, SIZE, 3), np.uint8)}, overwrite=True)
    with pytest.raises(InvalidInputError, match="does not match ValidationNoisyBlocksSrgb.mat"):
        SIDD(str(root))


def test_raw_needs_known_scenes_or_a_cfa(tmp_path: Path) -> None:
    root = write_sidd_blocks(tmp_path / "r", n_images=3, n_blocks=1, splits=("validation",), modes=("raw",))
    scenes = ["0031_001_IP_01600_02000_3200_N", "0024_001_N6_03200_01500_5500_N", "0009_001_S6_00800_00350_3200_L"]
    with pytest.raises(InvalidInputError, match="holds 3 images but only 2 scene names"):
        SIDD(str(root), mode="raw", scenes=scenes[:2])
    bench = SIDD(str(root), mode="raw", scenes=scenes)
    assert [s.cond["cfa"] for s in bench] == ["rggb", "bggr", "grbg"]
    assert bench.config()["scenes"] == scenes
    forced = SIDD(str(root), mode="raw", scenes=scenes[:2], cfa="RGGB")
    assert [s.cond["cfa"] for s in forced] == ["rggb"] * 3


def test_medium_srgb_pairs_and_conditions(medium_root: Path) -> None:
    bench = check_benchmark(SIDDMedium(str(medium_root)))
    assert [p.key for p in bench.pairs] == ["0001_010", "0001_011", "0200_010", "0200_011"]
    for sample in bench:
        levels = torch.round(sample.clean[0] * 255).long()
        assert sample.noisy.shape == (1, 3, 40, 48)
        assert torch.equal(levels[0], torch.arange(40)[:, None].expand(40, 48))
        assert torch.equal(levels[1], torch.arange(48)[None, :].expand(40, 48))
        assert int(levels[2, 0, 0]) == 100 + (sample.key.endswith("011"))
    first = next(iter(bench))
    assert first.cond["sensor"] == "S6" and first.cond["iso"] == 100.0
    assert first.cond["exposure_time"] == pytest.approx(1 / 60)
    assert first.cond["illuminant_temperature"] == 3200.0 and first.cond["brightness"] == "low"


@pytest.mark.parametrize("raw_order", ["matlab", "h5py"])
def test_medium_raw_orientation_is_an_explicit_choice(medium_root: Path, raw_order: str) -> None:
    bench = check_benchmark(SIDDMedium(str(medium_root), mode="raw", raw_order=raw_order))  # type: ignore[arg-type]
    height, width = (40, 48) if raw_order == "matlab" else (48, 40)
    for sample in bench:
        assert sample.clean.shape == (1, 4, height // 2, width // 2)
        index = np.rint(sample.clean[0].double().numpy() * (40 * 48 + 1)).astype(int) - 1
        rows, cols = np.divmod(index, 48)  # positions in MATLAB order
        if raw_order == "h5py":
            rows, cols = cols, rows
        pattern = CFA[sample.cond["sensor"]]
        letters = np.array(list(pattern)).reshape(2, 2)
        if raw_order == "matlab":
            for channel, colour in enumerate("rggb"):
                assert set(letters[rows[channel] % 2, cols[channel] % 2].ravel()) == {colour}
        assert rows.max() == height - 1 and cols.max() == width - 1


def test_medium_accepts_lower_case_names_and_reports_missing_files(tmp_path: Path, medium_root: Path) -> None:
    root = tmp_path / "lower"
    shutil.copytree(medium_root, root)
    for file in (root / "Data").rglob("*"):
        if file.is_file():
            file.rename(file.with_name(file.name.lower()))
    assert len(SIDDMedium(str(root))) == 4
    (root / "Data" / DEFAULT_MEDIUM_SCENES[1] / "0200_gt_srgb_011.png").unlink()
    with pytest.raises(ImageReadError, match="0200_GT_SRGB_011.PNG: not found"):
        SIDDMedium(str(root))
    with pytest.raises(InvalidInputError, match="strict|SIDD-Medium has 160"):
        SIDDMedium(str(medium_root), strict=True)
    shutil.rmtree(root / "Data" / DEFAULT_MEDIUM_SCENES[1])
    with pytest.raises(InvalidInputError, match="listed in Scene_Instances.txt are missing"):
        SIDDMedium(str(root))
    (root / "Scene_Instances.txt").unlink()
    (root / "Data" / "not_a_scene").mkdir()
    with pytest.raises(InvalidInputError, match="not_a_scene.*not a SIDD scene-instance name"):
        SIDDMedium(str(root))
    with pytest.raises(ImageReadError, match="point root at the folder that holds Data/"):
        SIDDMedium(str(root / "Data"))
