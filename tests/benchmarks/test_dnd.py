"""DND: info.mat parsing, crop positions and orientation, Bayer re-alignment, the submission bundle."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from noiseshift.benchmarks.dnd import (
    DND,
    bundle_dnd_submission,
    pack_realigned,
    pattern_name,
    read_dnd_info,
    unpack_realigned,
)
from noiseshift.benchmarks.fixtures.dnd import (
    DEFAULT_CAMERAS,
    decode_position,
    fixture_nlf,
    fixture_sigma_raw,
    fixture_sigma_srgb,
    write_dnd,
)
from noiseshift.benchmarks.matfile import write_mat_v73
from noiseshift.benchmarks.rawutil import realign_to_rggb
from noiseshift.errors import ImageReadError, InvalidInputError, OutputExistsError
from noiseshift.registry import BENCHMARKS, HOST
from noiseshift.testing import check_benchmark

HEIGHT, WIDTH, BOX = 40, 36, 16
REAL_INFO = Path(__file__).resolve().parents[3] / "shared" / "data" / "dnd" / "info.mat"


@pytest.fixture(scope="module")
def dnd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dnd(tmp_path_factory.mktemp("dnd") / "dnd_2017")


def _h5_boxes(root: Path, image: int) -> np.ndarray:
    """The boxes of 1-based ``image`` read straight from HDF5 (independent of the loader)."""
    with h5py.File(root / "info.mat", "r") as handle:
        ref = handle["info"]["boundingboxes"][0][image - 1]
        return handle[ref][()].T.astype(int)  # h5py gives 4×K; MATLAB sees K×4


def _realigned(codes: np.ndarray, assumed: str) -> list[list[int]]:
    """The 2×2 colour codes after flipping a mosaic as if its pattern were ``assumed``."""
    return realign_to_rggb(torch.from_numpy(np.ascontiguousarray(codes)), assumed).tolist()


def _colour_at(pattern: str, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    letters = np.array(list(pattern)).reshape(2, 2)
    return letters[rows % 2, cols % 2]


def test_registered_under_its_name() -> None:
    HOST.load()
    assert BENCHMARKS.lookup("dnd") is DND


def test_srgb_crops_sit_at_the_one_based_inclusive_boxes(dnd_root: Path) -> None:
    bench = check_benchmark(DND(str(dnd_root)), max_samples=6)
    assert len(bench) == 6 and bench.keys() == ["0001_01", "0001_02", "0001_03", "0002_01", "0002_02", "0002_03"]
    assert bench.config() == {"root": str(dnd_root), "mode": "srgb", "strict": False}
    for sample in bench:
        image, box = (int(part) for part in sample.key.split("_"))
        r1, c1, r2, c2 = _h5_boxes(dnd_root, image)[box - 1]
        assert sample.noisy.shape == (1, 3, r2 - r1 + 1, c2 - c1 + 1) and sample.clean is None
        rows, cols = decode_position(sample.noisy[0, 0].numpy(), HEIGHT, WIDTH)
        expected_rows, expected_cols = np.meshgrid(np.arange(r1 - 1, r2), np.arange(c1 - 1, c2), indexing="ij")
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_array_equal(cols, expected_cols)
        # Channels stay channels (h5py's 3×W×H is transposed as a whole, not just spatially).
        torch.testing.assert_close(sample.noisy[0, 1], sample.noisy[0, 0] / 2)
        assert torch.all(sample.noisy[0, 2] == np.float32(image / 3))
        assert sample.cond["sigma"] == pytest.approx(fixture_sigma_srgb(image, box))
        assert sample.cond["nlf"] == pytest.approx(fixture_nlf(image))
        assert sample.cond["camera"] == DEFAULT_CAMERAS[image - 1][0]
    # The last box touches the bottom-right corner: an off-by-one would have failed above.
    assert _h5_boxes(dnd_root, 1)[-1, 2:].tolist() == [HEIGHT, WIDTH]


def test_raw_crops_are_packed_as_true_rggb_including_the_gbrg_image(dnd_root: Path) -> None:
    bench = check_benchmark(DND(str(dnd_root), mode="raw"), max_samples=6)
    assert bench.domain == "raw" and bench.conventions.color_space == "raw"
    for sample in bench:
        image, box = (int(part) for part in sample.key.split("_"))
        pattern = DEFAULT_CAMERAS[image - 1][1]
        r1, c1, r2, c2 = _h5_boxes(dnd_root, image)[box - 1]
        assert sample.noisy.shape == (1, 4, BOX // 2, BOX // 2)
        rows, cols = decode_position(sample.noisy[0].numpy(), HEIGHT, WIDTH)
        assert rows.min() == r1 - 1 and rows.max() == r2 - 1 and cols.min() == c1 - 1 and cols.max() == c2 - 1
        for channel, colour in enumerate("rggb"):
            assert set(_colour_at(pattern, rows[channel], cols[channel]).ravel()) == {colour}, (sample.key, channel)
        # Each packed position is one 2×2 cell: G(red row) beside R, G(blue row) above/below R, B diagonal.
        assert np.array_equal(rows[1], rows[0]) and np.abs(cols[1] - cols[0]).max() == 1
        assert np.array_equal(cols[2], cols[0]) and np.abs(rows[2] - rows[0]).max() == 1
        assert np.array_equal(rows[3], rows[2]) and np.array_equal(cols[3], cols[1])
        # sigma_raw(box, y, x) is the noise of crop(y::2, x::2), so follow each channel's sites.
        sigma = sample.cond["sigma"]
        assert sigma.shape == sample.noisy.shape
        for channel in range(4):
            site_r, site_c = (rows[channel, 0, 0] - (r1 - 1)) % 2, (cols[channel, 0, 0] - (c1 - 1)) % 2
            assert float(sigma[0, channel, 0, 0]) == pytest.approx(fixture_sigma_raw(image, box, site_r, site_c))
        assert sample.cond["cfa"] == pattern


def test_the_gbrg_image_is_flipped_vertically_not_horizontally(dnd_root: Path) -> None:
    # The h5py (un-transposed) Nexus pattern is [[2,1],[3,2]]; comparing it as if it were the
    # image's pattern picks a left-right flip and yields BGGR. The MATLAB-order pattern is GBRG.
    with h5py.File(dnd_root / "info.mat", "r") as handle:
        h5_pattern = handle[handle["info"]["camera"][0][1]]["pattern"][()]
    assert h5_pattern.tolist() == [[2, 1], [3, 2]]
    assert pattern_name(h5_pattern.T) == "gbrg"  # MATLAB order: flipped up-down to RGGB
    assert pattern_name(h5_pattern) == "grbg"  # the buggy reading: flipped left-right ...
    assert _realigned(h5_pattern.T, "grbg") == [[3, 2], [2, 1]]  # ... which yields BGGR
    first = next(s for s in DND(str(dnd_root), mode="raw") if s.key == "0002_01")
    rows, _ = decode_position(first.noisy[0, 0].numpy(), HEIGHT, WIDTH)
    assert rows[0, 0] > rows[-1, 0]  # upside down


@pytest.mark.parametrize("pattern", ["rggb", "grbg", "gbrg", "bggr"])
def test_packing_makes_true_rggb_cells_and_unpacking_restores_the_mosaic(pattern: str) -> None:
    mosaic = torch.arange(6 * 8, dtype=torch.float32).reshape(6, 8)
    packed = pack_realigned(mosaic, pattern)
    assert packed.shape == (4, 3, 4)
    assert torch.equal(unpack_realigned(packed, pattern), mosaic)
    letters = np.array(list(pattern)).reshape(2, 2)
    rows, cols = (packed.long() // 8).numpy(), (packed.long() % 8).numpy()
    for channel, colour in enumerate("rggb"):
        assert set(letters[rows[channel] % 2, cols[channel] % 2].ravel()) == {colour}
    assert np.array_equal(rows[1], rows[0]) and np.array_equal(cols[2], cols[0])  # one 2×2 cell each
    with pytest.raises(InvalidInputError, match="even"):
        pack_realigned(mosaic[:5], pattern)
    with pytest.raises(InvalidInputError, match="Bayer pattern"):
        pattern_name(np.array([[1, 1], [2, 3]]))


def test_v5_image_files_read_the_same(tmp_path: Path, dnd_root: Path) -> None:
    root = write_dnd(tmp_path / "v5", image_version="5")
    for mode in ("srgb", "raw"):
        for a, b in zip(DND(str(root), mode=mode), DND(str(dnd_root), mode=mode)):
            assert a.key == b.key and torch.equal(a.noisy, b.noisy)


@pytest.mark.parametrize("mode", ["srgb", "raw"])
def test_submission_bundles_round_trip(tmp_path: Path, dnd_root: Path, mode: str) -> None:
    bench = DND(str(dnd_root), mode=mode)
    outputs = {s.key: s.noisy for s in bench}
    out = tmp_path / "submission"
    bundled = bench.write_submission(outputs, out)
    assert bundled == out / "bundled" and sorted(p.name for p in bundled.iterdir()) == ["0001.mat", "0002.mat"]
    key = "Inoisy" if mode == "raw" else "InoisySRGB"
    for image in (1, 2):
        file = bundled / f"{image:04d}.mat"
        assert dict((n, (s, c)) for n, s, c in scipy.io.whosmat(file)) == {
            "Idenoised": ((1, 3), "cell"),
            "israw": ((1, 1), "logical"),
            "eval_version": ((1,), "char"),
        }
        content = scipy.io.loadmat(file)
        assert bool(content["israw"][0, 0]) == (mode == "raw") and content["eval_version"][0] == "1.0"
        with h5py.File(dnd_root / f"images_{mode}" / f"{image:04d}.mat", "r") as handle:
            full = handle[key][()].T  # MATLAB order, read independently of the loader
        for box, (r1, c1, r2, c2) in enumerate(_h5_boxes(dnd_root, image)):
            crop = content["Idenoised"][0, box]
            assert crop.dtype == np.float32
            # Unpacking and un-flipping must give back the kit's crop exactly.
            np.testing.assert_array_equal(crop, full[r1 - 1 : r2, c1 - 1 : c2])
            per_crop = scipy.io.loadmat(out / f"{image:04d}_{box + 1:02d}.mat")["Idenoised_crop"]
            np.testing.assert_array_equal(per_crop, crop)
    bench.write_submission(outputs, out)  # regenerating a submission (a resumed run) replaces it
    with pytest.raises(OutputExistsError):
        bench.write_submission(outputs, out, overwrite=False)


def test_streamed_crops_and_the_kit_bundler_agree(tmp_path: Path, dnd_root: Path) -> None:
    bench = DND(str(dnd_root))
    for sample in bench:
        bench.write_crop(sample.key, 1 - sample.noisy, tmp_path / "a")
    bench.bundle(tmp_path / "a")
    bundle_dnd_submission(tmp_path / "a", n_images=2, n_boxes=3, overwrite=True)
    bench.write_submission({s.key: 1 - s.noisy for s in bench}, tmp_path / "b")
    for image in ("0001.mat", "0002.mat"):
        a = scipy.io.loadmat(tmp_path / "a" / "bundled" / image)["Idenoised"]
        b = scipy.io.loadmat(tmp_path / "b" / "bundled" / image)["Idenoised"]
        assert all(np.array_equal(x, y) for x, y in zip(a.ravel(), b.ravel()))
    with pytest.raises(ImageReadError, match="0001_04.mat"):
        bundle_dnd_submission(tmp_path / "a", n_images=1, n_boxes=4, overwrite=True)


def test_submission_rejects_incomplete_or_malformed_outputs(tmp_path: Path, dnd_root: Path) -> None:
    bench = DND(str(dnd_root))
    outputs = {s.key: s.noisy for s in bench}
    with pytest.raises(InvalidInputError, match=r"missing \['0002_03'\]"):
        bench.write_submission({k: v for k, v in outputs.items() if k != "0002_03"}, tmp_path)
    with pytest.raises(InvalidInputError, match=r"unknown \['0003_01'\]"):
        bench.write_submission({**outputs, "0003_01": outputs["0001_01"]}, tmp_path)
    with pytest.raises(InvalidInputError, match=r"'0001_02' has shape \(1, 3, 16, 8\)"):
        bench.write_submission({**outputs, "0001_02": outputs["0001_02"][..., :8]}, tmp_path)
    with pytest.raises(InvalidInputError, match="NaN"):
        bench.write_submission({**outputs, "0001_01": outputs["0001_01"] * float("nan")}, tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_missing_files_keys_and_shapes_are_reported_by_name(tmp_path: Path) -> None:
    root = write_dnd(tmp_path / "d", modes=("srgb",))
    with pytest.raises(ImageReadError, match="not a folder"):
        DND(str(tmp_path / "nowhere"))
    with pytest.raises(ImageReadError, match=r"images_raw/0001.mat: not found"):
        DND(str(root), mode="raw")
    with pytest.raises(InvalidInputError, match="mode must be"):
        DND(str(root), mode="linear")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="the DND release has 50"):
        DND(str(root), strict=True)
    image = root / "images_srgb" / "0002.mat"
    write_mat_v73(image, {"Inoisy": np.zeros((HEIGHT, WIDTH), np.float32)}, overwrite=True)
    with pytest.raises(InvalidInputError, match=r"0002.mat: has no variable 'InoisySRGB'; it holds 'Inoisy'"):
        DND(str(root))
    write_mat_v73(image, {"InoisySRGB": np.zeros((HEIGHT, WIDTH), np.float32)}, overwrite=True)
    with pytest.raises(InvalidInputError, match=r"0002.mat: variable 'InoisySRGB' has MATLAB shape \(40, 36\)"):
        DND(str(root))
    write_mat_v73(image, {"InoisySRGB": np.zeros((30, WIDTH, 3), np.float32)}, overwrite=True)
    with pytest.raises(InvalidInputError, match=r"box 3 \[25, 21, 40, 36\] of info.mat lies outside the 30×36 image"):
        DND(str(root))
    (root / "info.mat").unlink()
    with pytest.raises(ImageReadError, match=r"info.mat: not found"):
        DND(str(root))


def test_malformed_info_mat_is_rejected(tmp_path: Path) -> None:
    good = read_dnd_info(write_dnd(tmp_path / "ok", modes=()) / "info.mat")
    assert [i.bayertype for i in good] == ["rggb", "gbrg"] and [i.pattern for i in good] == ["rggb", "gbrg"]

    def record(**changes):
        base = {
            "boundingboxes": np.array([[1.0, 1.0, 16.0, 16.0]]),
            "camera": {"type": "X", "pattern": np.array([[1.0, 2.0], [2.0, 3.0]]), "bayertype": "rggb"},
            "nlf": {"a": np.array([[1e-3]]), "b": np.array([[1e-4]])},
            "sigma_raw": np.ones((1, 2, 2)),
            "sigma_srgb": np.ones((1, 1)),
        }
        base.update(changes)
        return base

    cases = {
        "no field 'nlf'": {k: v for k, v in record().items() if k != "nlf"},
        r"boundingboxes has shape \(1, 3\)": record(boundingboxes=np.array([[1.0, 1.0, 16.0]])),
        r"sigma_raw has shape \(1, 2\)": record(sigma_raw=np.ones((1, 2))),
        "contradicts bayertype 'gbrg'": record(
            camera={"type": "X", "pattern": np.array([[1.0, 2.0], [2.0, 3.0]]), "bayertype": "gbrg"}
        ),
        "not 1-based": record(boundingboxes=np.array([[0.0, 1.0, 16.0, 16.0]])),
    }
    for index, (message, bad) in enumerate(cases.items()):
        file = write_mat_v73(tmp_path / f"bad{index}.mat", {"info": [bad]})
        with pytest.raises(InvalidInputError, match=message):
            read_dnd_info(file)
    with pytest.raises(InvalidInputError, match="has no variable 'info'"):
        read_dnd_info(write_mat_v73(tmp_path / "other.mat", {"nfo": np.zeros(2)}))


@pytest.mark.skipif(not REAL_INFO.is_file(), reason=f"real DND info.mat not available at {REAL_INFO}")
def test_the_real_info_mat_parses_strictly_with_the_documented_cameras_and_patterns() -> None:
    images = read_dnd_info(REAL_INFO, strict=True)
    assert len(images) == 50
    for image in images:
        assert image.boxes.shape == (20, 4)
        assert np.all(image.boxes[:, 2:] - image.boxes[:, :2] + 1 == 512)
        assert np.all((image.boxes[:, :2] - 1) % 2 == 0)  # crops keep the full image's Bayer phase
        assert image.sigma_srgb.shape == (20,) and image.sigma_raw.shape == (20, 2, 2)
    assert images[0].boxes[0].tolist() == [2857, 335, 3368, 846]
    cameras = {image.index: image.camera for image in images}
    patterns = {image.index: image.bayertype for image in images}
    nexus = [1, 2, 3, 4, 5, 13, 45, 46, 47, 48, 49, 50]
    sony_a7r = [6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 42, 43, 44]
    assert [i for i, c in cameras.items() if c == "Nexus6P"] == nexus
    assert [i for i, c in cameras.items() if c == "SonyA7R"] == sony_a7r
    assert [i for i, c in cameras.items() if c == "OMD_EM10"] == list(range(17, 30))
    assert [i for i, c in cameras.items() if c == "SonyRX100"] == list(range(30, 42))
    assert [i for i, p in patterns.items() if p == "gbrg"] == sorted(nexus + [18])
    assert [i for i, p in patterns.items() if p == "grbg"] == [33, 38]
    assert sum(p == "rggb" for p in patterns.values()) == 50 - 13 - 2
    # bayertype equals the MATLAB-order pattern (h5py's transposed), for every image.
    with h5py.File(REAL_INFO, "r") as handle:
        for index, ref in enumerate(handle["info"]["camera"][0], start=1):
            h5_pattern = handle[ref]["pattern"][()].astype(int)
            letters = "".join("xrgb"[c] for c in h5_pattern.T.ravel())
            assert letters == patterns[index]
            assert _realigned(h5_pattern.T, letters) == [[1, 2], [2, 3]]
            if letters in ("gbrg", "grbg"):
                # Choosing the flips from the untransposed h5py pattern lands on BGGR instead.
                assert _realigned(h5_pattern.T, pattern_name(h5_pattern)) == [[3, 2], [2, 1]]
    a = np.array([image.nlf[0] for image in images])
    assert 1e-4 < a.min() and a.max() < 1.2e-2
