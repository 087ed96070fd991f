"""Reading and writing image files, and crash-safe (atomic) file writes.

Images come back as ``float32`` ``1×C×H×W`` tensors in RGB order with values in ``[0, 1]`` (the
layout in ``noiseshift.types``), whatever the file's bit depth. Every failure raises an error
that names the file and the reason: ``ImageReadError`` for files that cannot be read,
``OutputExistsError`` for outputs that would be overwritten, ``InvalidInputError`` for bad
tensors or options.

Writes are atomic: the bytes go to a hidden temporary file in the target's directory, are
flushed to disk, and the temporary file is renamed onto the target. A crash or full disk
therefore leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from torch import Tensor

from .errors import ImageReadError, InvalidInputError, OutputExistsError

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "atomic_write_bytes",
    "atomic_write_text",
    "from_numpy_image",
    "list_images",
    "read_image",
    "to_numpy_image",
    "write_image",
]

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
"""File extensions ``read_image``, ``write_image`` and ``list_images`` handle (any case)."""

_SIXTEEN_BIT_EXTENSIONS: frozenset[str] = frozenset({".png", ".tif", ".tiff"})
_JPEG_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg"})

BT601_LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)
"""ITU-R BT.601 weights of R, G, B in the luma ``Y'`` that ``read_image(..., channels=1)`` makes."""

AlphaMode = Literal["error", "drop", "keep"]
PathLike = str | os.PathLike[str]


def read_image(
    path: PathLike,
    *,
    dtype: torch.dtype = torch.float32,
    channels: Literal[1, 3] | None = None,
    alpha: AlphaMode = "error",
) -> Tensor:
    """Read an image file into a ``1×C×H×W`` tensor in ``[0, 1]``, RGB channel order.

    8-bit files are scaled by ``1/255`` and 16-bit files by ``1/65535``. Floating-point TIFFs
    are passed through unscaled and unclipped (they may hold linear or HDR data outside
    ``[0, 1]``), but NaN/inf values are refused. Pixels are returned as stored: the EXIF
    orientation tag of JPEGs is not applied.

    Args:
        path: a ``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff`` or ``.bmp`` file (any case).
            Non-ASCII paths work.
        dtype: floating dtype of the result.
        channels: ``None`` keeps the file's colour channels (grayscale stays ``C = 1``, colour
            is ``C = 3``). ``3`` replicates a grayscale image to RGB. ``1`` turns colour into
            luma ``Y' = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, applied to the stored,
            gamma-encoded values).
        alpha: what to do with a file that has an alpha channel. ``"error"`` (default) raises,
            so transparency is never lost silently; ``"drop"`` discards it; ``"keep"`` returns
            RGBA (``C = 4``; grayscale colour is replicated to RGB since noiseshift has no
            gray+alpha layout). Files without alpha are unaffected.

    Returns:
        ``1×C×H×W`` tensor of ``dtype`` on the CPU; ``C`` is 1, 3 or 4 (see above). Values are
        in ``[0, 1]`` except for float TIFFs, which are returned as stored.

    Raises:
        ImageReadError: the file is missing, not a regular file, empty, of an unsupported
            extension or sample type, undecodable, holds NaN/inf values, or has an alpha
            channel while ``alpha="error"``.
        InvalidInputError: an option is invalid (``channels=1`` together with
            ``alpha="keep"``, a non-float ``dtype``, ...).
    """
    if channels not in (None, 1, 3):
        raise InvalidInputError(f"read_image: channels must be None, 1 or 3, got {channels!r}")
    if alpha not in ("error", "drop", "keep"):
        raise InvalidInputError(f"read_image: alpha must be 'error', 'drop' or 'keep', got {alpha!r}")
    if channels == 1 and alpha == "keep":
        raise InvalidInputError(
            "read_image: channels=1 with alpha='keep' would give a gray+alpha image, which "
            "noiseshift does not use; pass alpha='drop' or channels=3"
        )
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InvalidInputError(f"read_image: dtype must be a floating torch dtype, got {dtype!r}")

    file = Path(path)
    raw = _decode(file)
    image = _to_unit_float(file, raw)
    if image.ndim == 2:
        image = image[:, :, None]

    # OpenCV returns gray+alpha PNGs as BGRA, but other decoders may hand back two channels.
    count = image.shape[2]
    has_alpha = count in (2, 4)
    colour, alpha_plane = (image[:, :, :-1], image[:, :, -1:]) if has_alpha else (image, None)
    if colour.shape[2] == 3:
        colour = colour[:, :, ::-1]  # OpenCV's BGR to RGB

    if has_alpha and alpha == "error":
        raise ImageReadError(
            f"{file}: the image has an alpha (transparency) channel; pass alpha='drop' to "
            f"discard it or alpha='keep' to get RGBA (C=4)"
        )
    if channels == 3 or (has_alpha and alpha == "keep"):
        if colour.shape[2] == 1:
            colour = np.repeat(colour, 3, axis=2)
    elif channels == 1 and colour.shape[2] == 3:
        weights = np.asarray(BT601_LUMA, dtype=colour.dtype)
        colour = (colour @ weights)[:, :, None]
    if has_alpha and alpha == "keep":
        colour = np.concatenate([colour, alpha_plane], axis=2)

    return from_numpy_image(np.ascontiguousarray(colour)).to(dtype)


def write_image(
    path: PathLike,
    image: Tensor | np.ndarray,
    *,
    bit_depth: Literal[8, 16] = 8,
    overwrite: bool = False,
    jpeg_quality: int = 95,
) -> Path:
    """Write an image in ``[0, 1]`` to a file, atomically.

    Values are clipped to ``[0, 1]``, multiplied by ``255`` (or ``65535``) and rounded to the
    nearest integer (ties to even). Channels are written in the file's conventional order
    (RGB(A) in, OpenCV's BGR(A) on disk, so any viewer shows the right colours). Parent
    folders are created. The file format follows the extension.

    Args:
        path: target file; ``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff`` or ``.bmp``.
        image: ``1×C×H×W``, ``C×H×W`` or ``H×W`` float tensor, or an ``H×W×C`` / ``H×W`` float
            numpy array, with ``C`` in {1, 3, 4} (gray, RGB, RGBA); values in ``[0, 1]``.
        bit_depth: ``8`` or ``16``; 16-bit is only for PNG and TIFF.
        overwrite: replace an existing file; without it an existing file is an error.
        jpeg_quality: JPEG quality, 0 to 100 (ignored for other formats).

    Returns:
        The path written, as a ``Path``.

    Raises:
        OutputExistsError: the file exists and ``overwrite`` is ``False``.
        InvalidInputError: the image has the wrong shape, dtype or channel count, or holds
            NaN/inf; the extension is unsupported; the bit depth or quality is invalid or not
            possible for the format (16-bit JPEG/BMP, RGBA JPEG).
        OSError: the file system refused the write (the target is then unchanged).
    """
    file = Path(path)
    ext = file.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise InvalidInputError(
            f"{file}: cannot write extension {file.suffix!r}; use one of "
            f"{', '.join(SUPPORTED_EXTENSIONS)}"
        )
    if bit_depth not in (8, 16):
        raise InvalidInputError(f"{file}: bit_depth must be 8 or 16, got {bit_depth!r}")
    if bit_depth == 16 and ext not in _SIXTEEN_BIT_EXTENSIONS:
        # OpenCV would silently fall back to 8 bits here.
        raise InvalidInputError(
            f"{file}: {ext} files cannot hold 16-bit samples; use .png or .tif, or bit_depth=8"
        )
    if isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, int) or not 0 <= jpeg_quality <= 100:
        raise InvalidInputError(f"{file}: jpeg_quality must be an integer in 0..100, got {jpeg_quality!r}")
    # Fail before the (possibly slow) encoding; atomic_write_bytes checks again.
    _check_overwrite(file, overwrite)

    pixels = _to_writable_array(file, image)
    if ext in _JPEG_EXTENSIONS and pixels.shape[2] == 4:
        raise InvalidInputError(
            f"{file}: JPEG has no alpha channel; drop it (image[:, :3]) or write .png/.tif"
        )

    levels = 255.0 if bit_depth == 8 else 65535.0
    storage = np.uint8 if bit_depth == 8 else np.uint16
    # float64 so that the 16-bit scaling cannot round to the wrong level.
    quantized = np.rint(np.clip(pixels.astype(np.float64), 0.0, 1.0) * levels).astype(storage)
    if quantized.shape[2] >= 3:
        quantized[:, :, :3] = quantized[:, :, 2::-1].copy()  # RGB(A) to OpenCV's BGR(A)
    if quantized.shape[2] == 1:
        quantized = quantized[:, :, 0]

    params: list[int] = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext in _JPEG_EXTENSIONS else []
    try:
        ok, encoded = cv2.imencode(ext, np.ascontiguousarray(quantized), params)
    except cv2.error as exc:
        raise InvalidInputError(f"{file}: OpenCV could not encode the image as {ext}: {exc}") from exc
    if not ok:
        raise InvalidInputError(f"{file}: OpenCV could not encode the image as {ext}")
    return atomic_write_bytes(file, encoded.tobytes(), overwrite=overwrite)


def atomic_write_bytes(
    path: PathLike, data: bytes | bytearray | memoryview, *, overwrite: bool = False
) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a hidden temporary file (``.<name>.*.tmp``) in the same directory, which
    is flushed and fsynced and then renamed onto ``path`` with ``os.replace`` (atomic on POSIX
    and Windows within one file system). On any error the temporary file is removed and the
    target is untouched. Parent folders are created. A new file gets the usual permissions
    (``0o666`` minus the umask); a replaced file keeps its permissions.

    The existence check for ``overwrite=False`` happens just before the rename, so a file
    created by another process in that instant would still be replaced.

    Args:
        path: target file.
        data: the complete new contents.
        overwrite: replace an existing file; without it an existing file is an error.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        OutputExistsError: the file exists and ``overwrite`` is ``False``.
        InvalidInputError: ``data`` is not bytes-like, or ``path`` is a directory.
        OSError: the file system refused the write.
    """
    file = Path(path)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInputError(f"{file}: atomic_write_bytes needs bytes, got {type(data).__name__}")
    if file.is_dir():
        raise InvalidInputError(f"{file}: is a directory, not a file path")
    _check_overwrite(file, overwrite)

    directory = file.parent
    directory.mkdir(parents=True, exist_ok=True)
    # mkstemp creates 0o600 files; a renamed-in output should look like any other file.
    mode = stat.S_IMODE(file.stat().st_mode) if file.exists() else 0o666 & ~_current_umask()

    temp_name: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=directory, prefix=f".{file.name}.", suffix=".tmp", delete=False
        ) as handle:
            temp_name = handle.name
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        _check_overwrite(file, overwrite)
        os.replace(temp_name, file)
        temp_name = None
    finally:
        if temp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
    _fsync_directory(directory)
    return file


def atomic_write_text(
    path: PathLike, text: str, *, overwrite: bool = False, encoding: str = "utf-8"
) -> Path:
    """Write ``text`` atomically, as ``atomic_write_bytes`` does (no newline translation).

    Args:
        path: target file.
        text: the complete new contents.
        overwrite: replace an existing file; without it an existing file is an error.
        encoding: text encoding.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        OutputExistsError: the file exists and ``overwrite`` is ``False``.
        InvalidInputError: ``text`` is not a ``str`` or ``path`` is a directory.
        OSError: the file system refused the write.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"{path}: atomic_write_text needs str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding), overwrite=overwrite)


def list_images(folder: PathLike, *, recursive: bool = False) -> list[Path]:
    """The supported image files in ``folder``, sorted by path.

    Hidden files (names starting with ``.``, such as macOS ``._x.png`` resource forks and the
    temporary files of ``atomic_write_bytes``) are skipped.

    Args:
        folder: folder to scan.
        recursive: also scan sub-folders.

    Returns:
        Sorted list of files whose extension is one of ``SUPPORTED_EXTENSIONS`` (any case).

    Raises:
        ImageReadError: the folder is missing, is not a folder, or holds no supported images.
    """
    root = Path(folder)
    if not root.exists():
        raise ImageReadError(f"{root}: folder not found")
    if not root.is_dir():
        raise ImageReadError(f"{root}: is not a folder")
    candidates = root.rglob("*") if recursive else root.iterdir()
    found = sorted(
        p
        for p in candidates
        if p.suffix.lower() in SUPPORTED_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )
    if not found:
        where = " (searched recursively)" if recursive else ""
        raise ImageReadError(
            f"{root}: no supported images found{where}; supported extensions: "
            f"{', '.join(SUPPORTED_EXTENSIONS)}"
        )
    return found


def to_numpy_image(image: Tensor) -> np.ndarray:
    """Convert a ``1×C×H×W``, ``C×H×W`` or ``H×W`` tensor to an ``H×W×C`` float32 array.

    Values are copied unchanged (no scaling or clipping); the tensor may be on any device.

    Args:
        image: real tensor; a 4-D one must hold a single image.

    Returns:
        ``H×W×C`` ``float32`` array (``C = 1`` for ``H×W`` input).

    Raises:
        InvalidInputError: wrong number of dimensions, a batch of more than one image, or a
            non-real dtype.
    """
    if not isinstance(image, Tensor):
        raise InvalidInputError(f"to_numpy_image: expected a torch.Tensor, got {type(image).__name__}")
    if image.dtype == torch.bool or image.is_complex():
        raise InvalidInputError(f"to_numpy_image: expected a real tensor, got {image.dtype}")
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise InvalidInputError(
                f"to_numpy_image: expected a single image (1×C×H×W), got a batch of shape "
                f"{tuple(image.shape)}; index one image first"
            )
        image = image[0]
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3:
        raise InvalidInputError(
            f"to_numpy_image: expected 1×C×H×W, C×H×W or H×W, got shape {tuple(image.shape)}"
        )
    return image.detach().to("cpu", torch.float32).permute(1, 2, 0).contiguous().numpy()


def from_numpy_image(array: np.ndarray) -> Tensor:
    """Convert an ``H×W×C`` or ``H×W`` array to a ``1×C×H×W`` float32 tensor.

    ``uint8`` arrays are scaled by ``1/255`` and ``uint16`` by ``1/65535``; float arrays are
    taken as already in ``[0, 1]`` and copied unchanged. Channel order is not changed.

    Args:
        array: ``H×W×C`` or ``H×W`` array of dtype ``uint8``, ``uint16`` or float.

    Returns:
        ``1×C×H×W`` ``float32`` CPU tensor (a copy, not sharing memory with ``array``).

    Raises:
        InvalidInputError: wrong number of dimensions or an unsupported dtype.
    """
    if not isinstance(array, np.ndarray):
        raise InvalidInputError(f"from_numpy_image: expected a numpy array, got {type(array).__name__}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise InvalidInputError(f"from_numpy_image: expected H×W×C or H×W, got shape {array.shape}")
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / np.float32(255.0)
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / np.float32(65535.0)
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
    else:
        raise InvalidInputError(
            f"from_numpy_image: expected a uint8, uint16 or float array, got {array.dtype}"
        )
    return torch.from_numpy(np.ascontiguousarray(values.transpose(2, 0, 1)))[None]


def _decode(file: Path) -> np.ndarray:
    """Read and decode ``file`` with OpenCV, keeping bit depth and channels as stored."""
    if file.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise ImageReadError(
            f"{file}: unsupported extension {file.suffix or '(none)'!r}; supported: "
            f"{', '.join(SUPPORTED_EXTENSIONS)}"
        )
    if not file.exists():
        raise ImageReadError(f"{file}: file not found")
    if not file.is_file():
        raise ImageReadError(f"{file}: is not a regular file")
    try:
        # np.fromfile + imdecode rather than cv2.imread: imread cannot open non-ASCII paths
        # on Windows.
        buffer = np.fromfile(file, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{file}: cannot read the file: {exc}") from exc
    if buffer.size == 0:
        raise ImageReadError(f"{file}: file is empty (0 bytes)")
    try:
        decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageReadError(f"{file}: cannot decode the image (corrupt or truncated?): {exc}") from exc
    if decoded is None or decoded.size == 0:
        raise ImageReadError(
            f"{file}: cannot decode the image; the file is corrupt, truncated or not really a "
            f"{file.suffix.lower()} image ({buffer.size} bytes)"
        )
    return decoded


def _to_unit_float(file: Path, raw: np.ndarray) -> np.ndarray:
    """Scale decoded samples to ``[0, 1]`` float32 (float data is only checked for NaN/inf)."""
    if raw.dtype == np.uint8:
        return raw.astype(np.float32) / np.float32(255.0)
    if raw.dtype == np.uint16:
        return raw.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(raw.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(raw)))
        if bad:
            raise ImageReadError(
                f"{file}: the floating-point image holds {bad} non-finite value(s) (NaN or inf) "
                f"of {raw.size}"
            )
        return raw.astype(np.float32)
    raise ImageReadError(
        f"{file}: unsupported sample type {raw.dtype}; noiseshift reads 8-bit, 16-bit and "
        f"floating-point images"
    )


def _to_writable_array(file: Path, image: Tensor | np.ndarray) -> np.ndarray:
    """Validate ``image`` for ``write_image`` and return it as an ``H×W×C`` float array."""
    if isinstance(image, Tensor):
        if not image.is_floating_point():
            raise InvalidInputError(
                f"{file}: expected a float image in [0, 1], got a {image.dtype} tensor"
            )
        if image.dim() not in (2, 3, 4):
            raise InvalidInputError(
                f"{file}: expected a 1×C×H×W, C×H×W or H×W tensor, got shape {tuple(image.shape)}"
            )
        pixels = to_numpy_image(image)
    elif isinstance(image, np.ndarray):
        if not np.issubdtype(image.dtype, np.floating):
            raise InvalidInputError(
                f"{file}: expected a float image in [0, 1], got a {image.dtype} array"
            )
        if image.ndim not in (2, 3):
            raise InvalidInputError(f"{file}: expected an H×W×C or H×W array, got shape {image.shape}")
        pixels = image[:, :, None] if image.ndim == 2 else image
    else:
        raise InvalidInputError(
            f"{file}: expected a torch.Tensor or numpy array, got {type(image).__name__}"
        )
    height, width, count = pixels.shape
    if count not in (1, 3, 4):
        raise InvalidInputError(
            f"{file}: expected 1 (gray), 3 (RGB) or 4 (RGBA) channels, got {count} "
            f"(shape {tuple(image.shape)})"
        )
    if height == 0 or width == 0:
        raise InvalidInputError(f"{file}: the image is empty (shape {tuple(image.shape)})")
    bad = int(np.count_nonzero(~np.isfinite(pixels)))
    if bad:
        raise InvalidInputError(f"{file}: the image holds {bad} non-finite value(s) (NaN or inf)")
    return pixels


def _check_overwrite(file: Path, overwrite: bool) -> None:
    """Raise ``OutputExistsError`` if ``file`` exists and ``overwrite`` is off."""
    if not overwrite and (file.exists() or file.is_symlink()):
        raise OutputExistsError(
            f"{file}: already exists; pass overwrite=True (CLI: --overwrite) to replace it"
        )


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    # os.umask can only be read by setting it, which races with other threads creating files;
    # Linux exposes it read-only in /proc.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Persist a rename by fsyncing its directory (best effort: not possible on Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
