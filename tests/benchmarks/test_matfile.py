"""MATLAB v5 / v7.3 reading and writing: MATLAB order, structs, cells, errors, the real header."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from noiseshift.benchmarks.matfile import (
    is_v73,
    mat_variables,
    read_array,
    read_region,
    read_variable,
    variable_shape,
    write_mat_v5,
    write_mat_v73,
)
from noiseshift.errors import ImageReadError, InvalidInputError, OutputExistsError

REAL_INFO = Path(__file__).resolve().parents[3] / "shared" / "data" / "dnd" / "info.mat"


def _image() -> np.ndarray:
    return np.arange(5 * 4 * 3, dtype=np.float32).reshape(5, 4, 3)


def test_v73_is_hdf5_with_matlab_header_and_reversed_axes(tmp_path: Path) -> None:
    file = write_mat_v73(tmp_path / "a.mat", {"img": _image()})
    head = file.read_bytes()[:128]
    assert head.startswith(b"MATLAB 7.3 MAT-file") and head[124:128] == b"\x00\x02IM"
    with h5py.File(file, "r") as handle:
        assert handle.userblock_size == 512
        assert handle["img"].shape == (3, 4, 5)  # MATLAB 5×4×3 is stored column-major
        assert handle["img"].attrs["MATLAB_class"] == b"single"
        np.testing.assert_array_equal(handle["img"][()].T, _image())
    assert is_v73(file)
    assert variable_shape(file, "img") == (5, 4, 3)
    np.testing.assert_array_equal(read_array(file, "img", ndim=3), _image())


def test_v73_structs_struct_arrays_cells_chars_and_logicals_round_trip(tmp_path: Path) -> None:
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0], cells[0, 1] = np.ones((2, 3)), "text"
    values = {
        "s": {"name": "gbrg", "m": np.array([[1.0, 2.0], [3.0, 4.0]])},
        "arr": [{"a": np.array([[1.0]]), "b": "x"}, {"a": np.array([[2.0]]), "b": "yz"}],
        "c": cells,
        "flag": True,
        "empty": "",
    }
    file = write_mat_v73(tmp_path / "b.mat", values)
    s = read_variable(file, "s")
    assert s["name"] == "gbrg"
    np.testing.assert_array_equal(s["m"], values["s"]["m"])
    arr = read_variable(file, "arr")
    assert [float(e["a"][0, 0]) for e in arr] == [1.0, 2.0] and [e["b"] for e in arr] == ["x", "yz"]
    c = read_variable(file, "c")
    assert c.shape == (1, 2) and c[0, 1] == "text" and c[0, 0].shape == (2, 3)
    assert read_variable(file, "flag").dtype == bool and bool(read_variable(file, "flag")[0, 0])
    assert read_variable(file, "empty") == ""
    with h5py.File(file, "r") as handle:
        # Struct arrays keep their elements behind object references, as MATLAB writes them.
        assert handle["arr"]["a"].dtype == h5py.ref_dtype and handle["arr"]["a"].shape == (1, 2)
        assert handle["s"]["m"][()].tolist() == [[1.0, 3.0], [2.0, 4.0]]


def test_v5_files_read_in_the_same_order(tmp_path: Path) -> None:
    file = tmp_path / "v5.mat"
    scipy.io.savemat(file, {"img": _image(), "st": {"f": 3.0, "t": "abc"}, "name": "hello"})
    assert not is_v73(file)
    assert mat_variables(file) == ["img", "name", "st"]
    assert variable_shape(file, "img") == (5, 4, 3)
    np.testing.assert_array_equal(read_array(file, "img"), _image())
    st = read_variable(file, "st")
    assert st["t"] == "abc" and float(st["f"][0, 0]) == 3.0
    assert read_variable(file, "name") == "hello"


@pytest.mark.parametrize("writer", [write_mat_v5, write_mat_v73])
def test_read_region_matches_slicing(tmp_path: Path, writer) -> None:
    file = writer(tmp_path / "r.mat", {"img": _image(), "mono": _image()[..., 0]})
    np.testing.assert_array_equal(read_region(file, "img", slice(1, 4), slice(2, 4)), _image()[1:4, 2:4])
    np.testing.assert_array_equal(read_region(file, "mono", slice(0, 5), slice(3, 4)), _image()[:, 3:4, 0])
    with pytest.raises(InvalidInputError, match="outside variable 'img'"):
        read_region(file, "img", slice(3, 6), slice(0, 2))


def test_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="missing.mat: not found"):
        read_variable(tmp_path / "missing.mat", "x")
    junk = tmp_path / "junk.mat"
    junk.write_text("not a mat file at all, just text " * 10)
    with pytest.raises(ImageReadError, match="junk.mat"):
        read_variable(junk, "x")
    file = write_mat_v73(tmp_path / "k.mat", {"img": _image(), "st": {"a": 1.0}})
    with pytest.raises(InvalidInputError, match=r"has no variable 'nope'; it holds 'img', 'st'"):
        read_variable(file, "nope")
    with pytest.raises(InvalidInputError, match="expected 2 dims"):
        read_array(file, "img", ndim=2)
    with pytest.raises(InvalidInputError, match="not a numeric array"):
        read_array(file, "st")


def test_writers_are_atomic_and_do_not_overwrite_silently(tmp_path: Path) -> None:
    for writer in (write_mat_v5, write_mat_v73):
        file = writer(tmp_path / f"{writer.__name__}.mat", {"x": np.zeros(3)})
        with pytest.raises(OutputExistsError):
            writer(file, {"x": np.ones(3)})
        writer(file, {"x": np.ones(3)}, overwrite=True)
        np.testing.assert_array_equal(read_array(file, "x"), np.ones((1, 3)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["write_mat_v5.mat", "write_mat_v73.mat"]


@pytest.mark.skipif(not REAL_INFO.is_file(), reason=f"real DND info.mat not available at {REAL_INFO}")
def test_the_real_dnd_info_mat_has_the_header_and_layout_the_writer_mimics() -> None:
    head = REAL_INFO.read_bytes()[:128]
    assert head.startswith(b"MATLAB 7.3 MAT-file") and head[124:128] == b"\x00\x02IM"
    assert is_v73(REAL_INFO) and mat_variables(REAL_INFO) == ["info"]
    info = read_variable(REAL_INFO, "info")
    assert isinstance(info, list) and len(info) == 50
    assert info[0]["boundingboxes"].shape == (20, 4) and info[0]["sigma_raw"].shape == (20, 2, 2)
