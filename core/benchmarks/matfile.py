"""Reading MATLAB ``.mat`` files of both families the benchmarks ship in.

* **v5** (``save`` default before R2006b, and what ``scipy.io.savemat`` writes) is read with
  ``scipy.io.loadmat``.
* **v7.3** (``save -v7.3``) is HDF5 with a 512-byte MATLAB header; ``scipy.io.loadmat``
  refuses it, so it is read with ``h5py``. MATLAB stores arrays column-major, so h5py hands
  back every matrix with its axes reversed (a MATLAB ``H×W×3`` image arrives as ``3×W×H``).

Everything returned here is in **MATLAB order** (the shape MATLAB's ``size`` reports) whatever
the file version, so callers index ``boxes[k, 0]`` or ``image[r1-1:r2, c1-1:c2]`` the way the
official MATLAB kits do. Structs become ``dict``, struct arrays ``list[dict]``, char arrays
``str`` and cell arrays ``numpy`` object arrays (in MATLAB order too).

Every failure raises a ``noiseshift.errors`` exception that names the file: a missing or
unreadable file is an ``ImageReadError``, a missing variable or a wrong shape an
``InvalidInputError``.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

from ..errors import ImageReadError, InvalidInputError, OutputExistsError
from ..image_io import _current_umask, atomic_write_bytes

__all__ = [
    "is_v73",
    "mat_variables",
    "variable_shape",
    "read_variable",
    "read_array",
    "read_region",
    "write_mat_v5",
    "write_mat_v73",
]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_V73_USERBLOCK = 512  # MATLAB's header lives in the HDF5 user block


def _existing(path: str | Path) -> Path:
    file = Path(path)
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "not found"
        raise ImageReadError(f"{file}: {what}")
    return file


def is_v73(path: str | Path) -> bool:
    """Whether ``path`` is a MAT v7.3 (HDF5) file rather than a v5 one.

    Raises:
        ImageReadError: the file is missing.
    """
    file = _existing(path)
    with file.open("rb") as handle:
        head = handle.read(_V73_USERBLOCK + len(_HDF5_SIGNATURE))
    # HDF5 puts its signature at 0 or after a power-of-two user block (512 for MATLAB).
    return head.startswith(_HDF5_SIGNATURE) or head[_V73_USERBLOCK:].startswith(_HDF5_SIGNATURE)


def _open_h5(file: Path) -> h5py.File:
    try:
        return h5py.File(file, "r")
    except OSError as exc:
        raise ImageReadError(f"{file}: cannot open as a MAT v7.3 (HDF5) file: {exc}") from exc


def _loadmat(file: Path, names: Sequence[str] | None) -> dict[str, Any]:
    try:
        return scipy.io.loadmat(file, variable_names=names, squeeze_me=False, struct_as_record=True)
    except (ValueError, OSError, TypeError, NotImplementedError) as exc:
        raise ImageReadError(f"{file}: cannot read as a MAT v5 file: {exc}") from exc


def mat_variables(path: str | Path) -> list[str]:
    """The names of the top-level variables in a ``.mat`` file (any version), sorted.

    Raises:
        ImageReadError: the file is missing or not a MATLAB file.
    """
    file = _existing(path)
    if is_v73(file):
        with _open_h5(file) as handle:
            return sorted(name for name in handle.keys() if not name.startswith("#"))
    try:
        return sorted(name for name, _, _ in scipy.io.whosmat(file))
    except (ValueError, OSError, TypeError, NotImplementedError) as exc:
        raise ImageReadError(f"{file}: cannot read as a MAT v5 file: {exc}") from exc


def _missing_variable(file: Path, key: str) -> InvalidInputError:
    found = mat_variables(file)
    return InvalidInputError(
        f"{file}: has no variable {key!r}; it holds {', '.join(map(repr, found)) or 'nothing'}"
    )


# -- v7.3 ----------------------------------------------------------------------------------


def _attr_text(obj: h5py.HLObject, name: str) -> str | None:
    value = obj.attrs.get(name)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode_char(data: np.ndarray) -> str:
    # MATLAB char arrays are uint16 code units; a 1×N row arrives as N×1.
    return "".join(chr(int(code)) for code in np.asarray(data).T.ravel())


def _h5_struct_fields(group: h5py.Group) -> list[str]:
    fields = group.attrs.get("MATLAB_fields")
    if fields is None:
        return [name for name in group.keys() if not name.startswith("#")]
    return [b"".join(np.asarray(field).tolist()).decode() for field in fields]


def _h5_value(handle: h5py.File, obj: h5py.HLObject) -> Any:
    """Decode one HDF5 object of a MAT v7.3 file into Python/numpy values in MATLAB order."""
    cls = _attr_text(obj, "MATLAB_class")
    if isinstance(obj, h5py.Group):
        fields = _h5_struct_fields(obj)
        members = {name: obj[name] for name in fields if name in obj}
        refs = [m for m in members.values() if isinstance(m, h5py.Dataset) and m.dtype == h5py.ref_dtype]
        if members and len(refs) == len(members) and all(_attr_text(m, "MATLAB_class") is None for m in refs):
            # A struct array: every field is an array of references, one per element.
            shape = refs[0].shape
            flat = {name: np.asarray(m[()]).T.ravel(order="F") for name, m in members.items()}
            count = int(np.prod(shape))
            return [{name: _h5_value(handle, handle[flat[name][i]]) for name in members} for i in range(count)]
        return {name: _h5_value(handle, member) for name, member in members.items()}
    data = obj[()]
    if obj.attrs.get("MATLAB_empty"):
        # Empty arrays store their MATLAB dimensions as the data.
        return "" if cls == "char" else np.zeros(tuple(int(n) for n in np.asarray(data).ravel()), dtype=np.float64)
    if cls == "char":
        return _decode_char(data)
    if obj.dtype == h5py.ref_dtype:
        refs = np.asarray(data).T  # MATLAB order
        cells = np.empty(refs.shape, dtype=object)
        for index in np.ndindex(refs.shape):
            cells[index] = _h5_value(handle, handle[refs[index]])
        return cells
    array = np.asarray(data).T
    if cls == "logical":
        array = array.astype(bool)
    return array


# -- v5 ------------------------------------------------------------------------------------


def _scipy_value(value: Any) -> Any:
    """Turn what ``scipy.io.loadmat`` returns into plain values (structs → dict, char → str)."""
    if isinstance(value, np.ndarray):
        if value.dtype.names:  # struct (array)
            records = [
                {name: _scipy_value(record[name]) for name in value.dtype.names}
                for record in value.ravel(order="F")
            ]
            return records[0] if value.size == 1 else records
        if value.dtype.kind == "U":
            return "".join(value.ravel().tolist()) if value.size else ""
        if value.dtype == object:
            cells = np.empty(value.shape, dtype=object)
            for index in np.ndindex(value.shape):
                cells[index] = _scipy_value(value[index])
            return cells
    return value


# -- public readers ------------------------------------------------------------------------


def read_variable(path: str | Path, key: str) -> Any:
    """Read one variable of a ``.mat`` file (v5 or v7.3) in MATLAB order.

    Args:
        path: the ``.mat`` file.
        key: the variable name.

    Returns:
        A numeric ``numpy`` array in MATLAB order (``H×W×C`` for an image), a ``str`` for a
        char array, a ``dict`` for a 1×1 struct, a ``list[dict]`` for a struct array or an
        object array for a cell array.

    Raises:
        ImageReadError: the file is missing or not a MATLAB file.
        InvalidInputError: the file has no variable ``key``.
    """
    file = _existing(path)
    if is_v73(file):
        with _open_h5(file) as handle:
            if key not in handle:
                raise _missing_variable(file, key)
            return _h5_value(handle, handle[key])
    content = _loadmat(file, [key])
    if key not in content:
        raise _missing_variable(file, key)
    return _scipy_value(content[key])


def read_array(path: str | Path, key: str, *, ndim: int | Sequence[int] | None = None) -> np.ndarray:
    """Read a numeric array variable in MATLAB order, optionally checking its rank.

    Args:
        path: the ``.mat`` file (v5 or v7.3).
        key: the variable name.
        ndim: the allowed number(s) of dimensions, or ``None`` for any.

    Raises:
        ImageReadError: the file is missing or not a MATLAB file.
        InvalidInputError: the variable is missing, not numeric, or of the wrong rank.
    """
    value = read_variable(path, key)
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"{path}: variable {key!r} is not a numeric array (got {type(value).__name__})"
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            raise InvalidInputError(
                f"{path}: variable {key!r} has shape {value.shape} ({value.ndim} dims); "
                f"expected {' or '.join(map(str, allowed))} dims"
            )
    return value


def read_region(path: str | Path, key: str, rows: slice, cols: slice) -> np.ndarray:
    """Read ``array[rows, cols, ...]`` of a 2-D or 3-D image variable, in MATLAB order.

    For v7.3 files only the region is read from disk (the h5py slice is taken on the reversed
    axes), so a 512×512 crop of a 12-megapixel DND image costs one crop, not one image.

    Args:
        path: the ``.mat`` file.
        key: the variable name (an ``H×W`` or ``H×W×C`` numeric array).
        rows: 0-based row slice (step 1).
        cols: 0-based column slice (step 1).

    Returns:
        ``h×w`` or ``h×w×C`` array with the stored dtype.

    Raises:
        ImageReadError: the file is missing or not a MATLAB file.
        InvalidInputError: the variable is missing, not 2-D/3-D, or the region lies outside it.
    """
    file = _existing(path)
    if not is_v73(file):
        array = read_array(file, key, ndim=(2, 3))
        _check_region(file, key, array.shape, rows, cols)
        return array[rows, cols]
    with _open_h5(file) as handle:
        if key not in handle or not isinstance(handle[key], h5py.Dataset):
            raise _missing_variable(file, key)
        dataset = handle[key]
        if dataset.ndim not in (2, 3) or dataset.dtype.kind not in "biuf":
            raise InvalidInputError(
                f"{file}: variable {key!r} has MATLAB shape {dataset.shape[::-1]} "
                f"({dataset.dtype}); expected a numeric H×W or H×W×C image"
            )
        shape = dataset.shape[::-1]
        _check_region(file, key, shape, rows, cols)
        # h5py axes are (C,) W, H: the column slice comes before the row slice.
        return np.asarray(dataset[..., cols, rows]).T


def _check_region(file: Path, key: str, shape: tuple[int, ...], rows: slice, cols: slice) -> None:
    for name, part, size in (("rows", rows, shape[0]), ("columns", cols, shape[1])):
        if part.step not in (None, 1) or part.start is None or part.stop is None:
            raise InvalidInputError(f"{file}: {name} region must be a plain start:stop slice")
        if not 0 <= part.start < part.stop <= size:
            raise InvalidInputError(
                f"{file}: {name} {part.start}:{part.stop} (0-based) lie outside variable "
                f"{key!r} of MATLAB shape {tuple(shape)}"
            )


def variable_shape(path: str | Path, key: str) -> tuple[int, ...]:
    """The MATLAB-order shape of a variable, read from the file's header (no data is loaded).

    Raises:
        ImageReadError: the file is missing or not a MATLAB file.
        InvalidInputError: the file has no variable ``key``.
    """
    file = _existing(path)
    if is_v73(file):
        with _open_h5(file) as handle:
            if key not in handle:
                raise _missing_variable(file, key)
            obj = handle[key]
            if not isinstance(obj, h5py.Dataset):
                return (1, 1)
            return tuple(int(n) for n in obj.shape[::-1])
    try:
        found = {name: shape for name, shape, _ in scipy.io.whosmat(file)}
    except (ValueError, OSError, TypeError, NotImplementedError) as exc:
        raise ImageReadError(f"{file}: cannot read as a MAT v5 file: {exc}") from exc
    if key not in found:
        raise _missing_variable(file, key)
    return tuple(int(n) for n in found[key])


# -- writers -------------------------------------------------------------------------------


def write_mat_v5(path: str | Path, variables: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Write variables to a MAT v5 file with ``scipy.io.savemat``, atomically.

    Numpy arrays are stored as given (numpy ``H×W×C`` is MATLAB ``H×W×C``); object arrays
    become cell arrays, ``dict`` a struct, ``str`` a char array and ``bool`` a logical. The
    file is encoded in memory and renamed into place (``atomic_write_bytes``).

    Args:
        path: target ``.mat`` file.
        variables: ``{name: value}``.
        overwrite: replace an existing file.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        OutputExistsError: the file exists and ``overwrite`` is off.
        InvalidInputError: a value cannot be stored in a v5 file (e.g. larger than 2 GiB).
    """
    buffer = io.BytesIO()
    try:
        scipy.io.savemat(buffer, dict(variables), do_compression=False, oned_as="row")
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInputError(f"{path}: cannot encode as a MAT v5 file: {exc}") from exc
    return atomic_write_bytes(path, buffer.getbuffer(), overwrite=overwrite)


_MATLAB_CLASS_OF_KIND = {
    np.dtype(np.float64): "double",
    np.dtype(np.float32): "single",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.uint16): "uint16",
    np.dtype(np.uint32): "uint32",
    np.dtype(np.uint64): "uint64",
    np.dtype(np.int8): "int8",
    np.dtype(np.int16): "int16",
    np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64",
}


def _matlab_header() -> bytes:
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime())
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {stamp} HDF5 schema 1.00 ."
    # 116 bytes of text, 8 bytes of subsystem offset, version 0x0200, endian indicator "IM".
    return text.encode("ascii").ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM"


def _fields_attr(names: Sequence[str]) -> np.ndarray:
    attr = np.empty(len(names), dtype=h5py.vlen_dtype(np.dtype("S1")))
    for index, name in enumerate(names):
        attr[index] = np.array([c.encode() for c in name], dtype="S1")
    return attr


class _V73Writer:
    """Writes Python values into an open h5py file the way MATLAB's ``save -v7.3`` lays them out."""

    def __init__(self, handle: h5py.File) -> None:
        self.handle = handle
        self.count = 0

    def _ref_target(self, value: Any) -> h5py.Reference:
        # MATLAB keeps the elements of cells and struct arrays in a hidden "#refs#" group.
        refs = self.handle.require_group("#refs#")
        self.count += 1
        name = f"r{self.count}"
        self.write(refs, name, value)
        return refs[name].ref

    def write(self, parent: h5py.Group, name: str, value: Any) -> None:
        if isinstance(value, str):
            if value:
                data = parent.create_dataset(name, data=np.array([ord(c) for c in value], np.uint16).reshape(-1, 1))
            else:  # MATLAB writes an empty array as its dimensions, flagged MATLAB_empty
                data = parent.create_dataset(name, data=np.zeros(2, np.uint64))
                data.attrs["MATLAB_empty"] = np.uint8(1)
            data.attrs["MATLAB_class"] = np.bytes_(b"char")
            data.attrs["MATLAB_int_decode"] = np.int32(2)
        elif isinstance(value, Mapping):
            group = parent.create_group(name)
            group.attrs["MATLAB_class"] = np.bytes_(b"struct")
            group.attrs["MATLAB_fields"] = _fields_attr(list(value))
            for field, item in value.items():
                self.write(group, field, item)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            fields = list(value[0])
            if any(list(v) != fields for v in value):
                raise InvalidInputError(f"struct array {name!r}: every element needs the same fields")
            group = parent.create_group(name)
            group.attrs["MATLAB_class"] = np.bytes_(b"struct")
            group.attrs["MATLAB_fields"] = _fields_attr(fields)
            for field in fields:
                refs = np.array([[self._ref_target(v[field]) for v in value]], dtype=h5py.ref_dtype)
                group.create_dataset(field, data=refs)
        elif isinstance(value, np.ndarray) and value.dtype == object:
            matlab = value if value.ndim >= 2 else value.reshape(1, -1)
            refs = np.empty(matlab.shape, dtype=h5py.ref_dtype)
            for index in np.ndindex(matlab.shape):
                refs[index] = self._ref_target(matlab[index])
            data = parent.create_dataset(name, data=refs.T)
            data.attrs["MATLAB_class"] = np.bytes_(b"cell")
        else:
            array = np.asarray(value)
            logical = array.dtype == bool
            if logical:
                array = array.astype(np.uint8)
            if array.dtype not in _MATLAB_CLASS_OF_KIND:
                raise InvalidInputError(f"variable {name!r}: cannot store dtype {array.dtype} in a MAT file")
            matlab = array.reshape(1, -1) if array.ndim < 2 else array
            data = parent.create_dataset(name, data=np.ascontiguousarray(matlab.T))
            data.attrs["MATLAB_class"] = np.bytes_(
                b"logical" if logical else _MATLAB_CLASS_OF_KIND[array.dtype].encode()
            )


def write_mat_v73(path: str | Path, variables: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Write variables to a MAT v7.3 (HDF5) file laid out as MATLAB's ``save -v7.3`` does.

    Values are given in MATLAB order and stored with their axes reversed, as MATLAB does, so
    ``read_variable`` returns them unchanged. Supported: numeric and bool arrays/scalars
    (0-D/1-D become ``1×N``), ``str`` (char), ``dict`` (1×1 struct), a list of dicts with equal
    fields (1×N struct array, fields as reference arrays into ``#refs#``) and object arrays
    (cells). The file is built next to the target and renamed into place.

    Args:
        path: target ``.mat`` file.
        variables: ``{name: value}``.
        overwrite: replace an existing file.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        OutputExistsError: the file exists and ``overwrite`` is off.
        InvalidInputError: a value has a type MAT files cannot hold.
    """
    file = Path(path)
    if file.exists() and not overwrite:
        raise OutputExistsError(f"{file}: exists; pass overwrite=True to replace it")
    file.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        with h5py.File(temp_name, "w", userblock_size=_V73_USERBLOCK) as handle:
            writer = _V73Writer(handle)
            for name, value in variables.items():
                writer.write(handle, name, value)
        with open(temp_name, "r+b") as raw:
            raw.write(_matlab_header())
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temp_name, 0o666 & ~_current_umask())
        if file.exists() and not overwrite:
            raise OutputExistsError(f"{file}: exists; pass overwrite=True to replace it")
        os.replace(temp_name, file)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return file
