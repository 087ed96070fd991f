"""Tests of ``noiseshift.image_io``: reading, writing, atomic writes and folder listing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from noiseshift import image_io
from noiseshift.errors import ImageReadError, InvalidInputError, OutputExistsError
from noiseshift.image_io import (
    atomic_write_bytes,
    atomic_write_text,
    from_numpy_image,
    list_images,
    read_image,
    to_numpy_image,
    write_image,
)


def _image(channels: int = 3, height: int = 24, width: int = 32, seed: int = 0) -> torch.Tensor:
    """A smooth-ish random ``1×C×H×W`` image in ``[0, 1]`` (JPEG-friendly)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, channels, height // 4, width // 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def _write_raw(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` (OpenCV channel order) with OpenCV, bypassing the code under test."""
    ok, encoded = cv2.imencode(path.suffix, array)
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_png_8bit_round_trip(tmp_path: Path, channels: int) -> None:
    image = _image(channels)
    path = write_image(tmp_path / "a.png", image)
    assert path == tmp_path / "a.png" and isinstance(path, Path)
    back = read_image(path)
    assert back.shape == (1, channels, 24, 32) and back.dtype == torch.float32
    expected = torch.round(image * 255) / 255
    assert torch.allclose(back, expected, atol=1e-6)
    # Exactly the 8-bit levels, so the round trip error is at most half a level.
    assert (back - image).abs().max() <= 0.5 / 255 + 1e-6


def test_jpeg_round_trip(tmp_path: Path) -> None:
    # Smooth content: JPEG's chroma subsampling would dominate the error on pixel noise.
    coarse = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    image = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bicubic", align_corners=False)
    image = image.clamp(0, 1)
    back = read_image(write_image(tmp_path / "a.jpg", image, jpeg_quality=95))
    assert back.shape == image.shape
    assert (back - image).abs().mean() < 0.01
    assert (back - image).abs().max() < 0.05
    # jpeg_quality reaches the encoder.
    low = read_image(write_image(tmp_path / "b.JPEG", image, jpeg_quality=5))
    assert (low - image).abs().mean() > 3 * (back - image).abs().mean()


@pytest.mark.parametrize("name", ["a.png", "a.tif", "a.TIFF"])
@pytest.mark.parametrize("channels", [1, 3])
def test_16bit_round_trip_exact(tmp_path: Path, name: str, channels: int) -> None:
    image = _image(channels)
    path = write_image(tmp_path / name, image, bit_depth=16)
    raw = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    back = read_image(path)
    levels = torch.round(image.double() * 65535)
    assert torch.equal(torch.round(back.double() * 65535), levels)
    # A second write of what was read gives the same file content, level for level.
    again = read_image(write_image(tmp_path / f"b{Path(name).suffix}", back, bit_depth=16))
    assert torch.equal(again, back)
    assert (back - image).abs().max() < 1e-5


def test_grayscale_stays_one_channel_and_channels_option(tmp_path: Path) -> None:
    gray = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    path = _write_raw(tmp_path / "g.png", gray)
    one = read_image(path)
    assert one.shape == (1, 1, 12, 10)
    assert torch.equal(one[0, 0], torch.from_numpy(gray).float() / 255)
    three = read_image(path, channels=3)
    assert three.shape == (1, 3, 12, 10)
    assert torch.equal(three[:, 0], three[:, 2]) and torch.equal(three[:, 0], one[:, 0])


def test_channels_1_is_bt601_luma(tmp_path: Path) -> None:
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2], bgr[..., 1], bgr[..., 0] = 200, 100, 50  # R, G, B
    luma = read_image(_write_raw(tmp_path / "c.png", bgr), channels=1)
    assert luma.shape == (1, 1, 4, 5)
    expected = (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255
    assert torch.allclose(luma, torch.full_like(luma, expected), atol=1e-6)


def test_rgb_order(tmp_path: Path) -> None:
    red = torch.zeros(1, 3, 6, 7)
    red[:, 0] = 1.0
    path = write_image(tmp_path / "red.png", red)
    bgr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    assert bgr.shape == (6, 7, 3)
    assert (bgr[..., 2] == 255).all() and (bgr[..., :2] == 0).all()
    back = read_image(path)
    assert (back[:, 0] == 1).all() and (back[:, 1:] == 0).all()


def test_dtype_option_and_non_ascii_path(tmp_path: Path) -> None:
    image = _image(3)
    path = write_image(tmp_path / "ünïcode 图像" / "x.png", image)
    back = read_image(path, dtype=torch.float64)
    assert back.dtype == torch.float64
    assert torch.allclose(back.float(), torch.round(image * 255) / 255, atol=1e-6)


def test_write_accepts_layouts_and_clips(tmp_path: Path) -> None:
    image = _image(3)
    ref = read_image(write_image(tmp_path / "ref.png", image))
    assert torch.equal(read_image(write_image(tmp_path / "chw.png", image[0])), ref)
    array = image[0].permute(1, 2, 0).numpy()
    assert torch.equal(read_image(write_image(tmp_path / "np.png", array)), ref)
    assert torch.equal(read_image(write_image(tmp_path / "hw.png", image[0, 0])), ref[:, :1])
    over = image.clone()
    over[..., 0, 0] = 2.0
    over[..., 0, 1] = -1.0
    clipped = read_image(write_image(tmp_path / "clip.png", over))
    assert (clipped[..., 0, 0] == 1).all() and (clipped[..., 0, 1] == 0).all()


def test_numpy_helpers() -> None:
    image = _image(3)
    array = to_numpy_image(image)
    assert array.shape == (24, 32, 3) and array.dtype == np.float32
    assert torch.equal(from_numpy_image(array), image)
    assert to_numpy_image(image[0, 0]).shape == (24, 32, 1)
    u16 = np.full((2, 3), 65535, np.uint16)
    assert torch.equal(from_numpy_image(u16), torch.ones(1, 1, 2, 3))
    with pytest.raises(InvalidInputError, match="single image"):
        to_numpy_image(torch.rand(2, 3, 4, 4))
    with pytest.raises(InvalidInputError, match="int32"):
        from_numpy_image(np.zeros((2, 2), np.int32))


# --- alpha -----------------------------------------------------------------------------------


def test_alpha_handling(tmp_path: Path) -> None:
    bgra = np.zeros((5, 6, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[..., 3] = 128
    path = _write_raw(tmp_path / "rgba.png", bgra)
    with pytest.raises(ImageReadError, match="alpha") as info:
        read_image(path)
    assert str(path) in str(info.value) and "alpha='drop'" in str(info.value)
    dropped = read_image(path, alpha="drop")
    assert dropped.shape == (1, 3, 5, 6) and (dropped[:, 0] == 1).all() and (dropped[:, 1:] == 0).all()
    kept = read_image(path, alpha="keep")
    assert kept.shape == (1, 4, 5, 6)
    assert torch.allclose(kept[:, 3], torch.full((1, 5, 6), 128 / 255))
    assert (kept[:, 0] == 1).all()
    # alpha= does not change files without alpha.
    rgb = _write_raw(tmp_path / "rgb.png", bgra[..., :3])
    assert read_image(rgb, alpha="keep").shape == (1, 3, 5, 6)
    with pytest.raises(InvalidInputError, match="alpha='keep'"):
        read_image(path, channels=1, alpha="keep")


def test_rgba_write_round_trip(tmp_path: Path) -> None:
    image = _image(4)
    back = read_image(write_image(tmp_path / "a.png", image), alpha="keep")
    assert torch.allclose(back, torch.round(image * 255) / 255, atol=1e-6)
    with pytest.raises(InvalidInputError, match="alpha"):
        write_image(tmp_path / "a.jpg", image)


# --- bad inputs on read ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    with pytest.raises(ImageReadError, match="not found") as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty \(0 bytes\)") as info:
        read_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", ["bad.png", "bad.jpg", "bad.tif"])
def test_corrupt_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageReadError, match="cannot decode") as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_truncated_png(tmp_path: Path) -> None:
    good = write_image(tmp_path / "good.png", _image(3))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:40])
    with pytest.raises(ImageReadError, match="cannot decode"):
        read_image(cut)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "a.gif"
    path.write_bytes(b"GIF89a")
    with pytest.raises(ImageReadError, match="unsupported extension '.gif'") as info:
        read_image(path)
    assert ".png" in str(info.value) and str(path) in str(info.value)
    with pytest.raises(InvalidInputError, match="extension"):
        write_image(tmp_path / "a.gif", _image(3))


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_image(tmp_path / "dir.png")


def test_float_tiff(tmp_path: Path) -> None:
    values = np.linspace(-0.5, 1.5, 4 * 5, dtype=np.float32).reshape(4, 5)
    good = read_image(_write_raw(tmp_path / "f.tif", values))
    assert torch.equal(good[0, 0], torch.from_numpy(values))  # passed through, not clipped
    values[1, 2] = np.nan
    values[3, 0] = np.inf
    path = _write_raw(tmp_path / "nan.tif", values)
    with pytest.raises(ImageReadError, match="2 non-finite") as info:
        read_image(path)
    assert str(path) in str(info.value)


# --- bad inputs on write ---------------------------------------------------------------------


def test_write_rejects_bad_images(tmp_path: Path) -> None:
    bad = _image(3)
    bad[0, 1, 2, 3] = float("nan")
    with pytest.raises(InvalidInputError, match="non-finite"):
        write_image(tmp_path / "nan.png", bad)
    with pytest.raises(InvalidInputError, match="channels"):
        write_image(tmp_path / "two.png", torch.rand(1, 2, 8, 8))
    with pytest.raises(InvalidInputError, match="1×C×H×W"):
        write_image(tmp_path / "five.png", torch.rand(1, 1, 1, 8, 8))
    with pytest.raises(InvalidInputError, match="single image"):
        write_image(tmp_path / "batch.png", torch.rand(2, 3, 8, 8))
    with pytest.raises(InvalidInputError, match="float"):
        write_image(tmp_path / "u8.png", torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(InvalidInputError, match="16-bit"):
        write_image(tmp_path / "a.jpg", _image(3), bit_depth=16)
    with pytest.raises(InvalidInputError, match="bit_depth"):
        write_image(tmp_path / "a.png", _image(3), bit_depth=12)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="jpeg_quality"):
        write_image(tmp_path / "a.jpg", _image(3), jpeg_quality=101)
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png", _image(3, seed=1))
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite=True") as info:
        write_image(path, _image(3, seed=2))
    assert str(path) in str(info.value) and "--overwrite" in str(info.value)
    assert path.read_bytes() == before
    write_image(path, _image(3, seed=2), overwrite=True)
    assert path.read_bytes() != before
    assert torch.allclose(read_image(path), torch.round(_image(3, seed=2) * 255) / 255, atol=1e-6)
    assert _leftovers(tmp_path) == []


# --- atomic writes ---------------------------------------------------------------------------


def test_failed_replace_leaves_target_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "a.png", _image(3, seed=1))
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        assert Path(src).parent == path.parent and Path(src).name.startswith(".a.png.")
        assert Path(src).read_bytes() != before  # the new image was fully written first
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(image_io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated crash"):
        write_image(path, _image(3, seed=2), overwrite=True)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_failed_write_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(image_io.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_write_image_uses_atomic_write_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    original = image_io.atomic_write_bytes

    def spy(path: Path, data: bytes, *, overwrite: bool = False) -> Path:
        calls.append(Path(path))
        return original(path, data, overwrite=overwrite)

    monkeypatch.setattr(image_io, "atomic_write_bytes", spy)
    write_image(tmp_path / "a.png", _image(3))
    assert calls == [tmp_path / "a.png"]


def test_atomic_write_helpers(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "sub" / "dir" / "r.json", '{"psnr": 30.5}\n')
    assert path.read_text(encoding="utf-8") == '{"psnr": 30.5}\n'
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        atomic_write_text(path, "other")
    atomic_write_text(path, "ünï", overwrite=True)
    assert path.read_bytes() == "ünï".encode()
    raw = atomic_write_bytes(tmp_path / "b.bin", bytes(range(256)))
    assert raw.read_bytes() == bytes(range(256))
    with pytest.raises(InvalidInputError, match="bytes"):
        atomic_write_bytes(tmp_path / "c.bin", "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="directory"):
        atomic_write_bytes(tmp_path / "sub", b"x", overwrite=True)
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub" / "dir") == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_write_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    new = atomic_write_bytes(tmp_path / "new.bin", b"x")
    # Not the 0o600 of the temporary file.
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask
    os.chmod(new, 0o640)
    atomic_write_bytes(new, b"y", overwrite=True)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640


# --- listing ---------------------------------------------------------------------------------


def test_list_images(tmp_path: Path) -> None:
    for name in ["b.png", "a.JPG", "c.tiff", "notes.txt", ".hidden.png", "d.bmp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.jpeg").write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.tiff", "d.bmp"]
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)] == [
        "a.JPG", "b.png", "c.tiff", "d.bmp", "sub/e.jpeg",
    ]


def test_list_images_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="not found"):
        list_images(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ImageReadError, match="no supported images found") as info:
        list_images(tmp_path)
    assert ".png" in str(info.value) and ".tiff" in str(info.value)
    with pytest.raises(ImageReadError, match="not a folder"):
        list_images(tmp_path / "notes.txt")
