"""ELD on a fixture in the official layout: pairing, EXIF ratio, packing, clipping, protocol scoring."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from noiseshift.benchmarks.eld import ELD, illuminance_correct
from noiseshift.benchmarks.fixtures.eld import ELDFixture, FixtureCamera, write_eld
from noiseshift.errors import ImageReadError, InvalidInputError
from noiseshift.registry import BENCHMARKS, HOST
from noiseshift.testing import check_benchmark

# The ELD protocol, written out: the reference each evaluated input is paired with.
PAIRED_REFERENCE = {4: 6, 5: 6, 9: 11, 10: 11, 14: 16, 15: 16}
NOMINAL_RATIO = {4: 100, 9: 100, 14: 100, 5: 200, 10: 200, 15: 200}
RGGB_SITES = {"r": (0, 0), "gr": (0, 1), "gb": (1, 0), "b": (1, 1)}


@pytest.fixture(scope="module")
def eld(tmp_path_factory: pytest.TempPathFactory) -> ELDFixture:
    return write_eld(tmp_path_factory.mktemp("eld") / "ELD")


def expected_packed(mosaic: np.ndarray, black: tuple[int, ...], sites: dict[str, tuple[int, int]]) -> np.ndarray:
    """ELD's packing done by hand in RGGB channel order: per-site black, white 16383, clip."""
    planes = []
    for color in ("r", "gr", "gb", "b"):
        row, col = sites[color]
        site_black = black[2 * row + col]
        planes.append((mosaic[row::2, col::2].astype(np.float64) - site_black) / (16383 - site_black))
    return np.clip(np.stack(planes), 0, 1)


def test_samples_pair_inputs_with_the_nearest_reference_and_exif_ratio(eld: ELDFixture) -> None:
    bench = ELD(str(eld.root))
    assert len(bench) == 2 * 1 * 6
    samples = {s.key: s for s in bench}
    assert set(samples) == {
        f"{camera.name}/scene-1/IMG_{i:04d}" for camera in eld.cameras for i in PAIRED_REFERENCE
    }
    for camera in eld.cameras:
        for image_id, ref_id in PAIRED_REFERENCE.items():
            key = f"{camera.name}/scene-1/IMG_{image_id:04d}"
            ref_key = f"{camera.name}/scene-1/IMG_{ref_id:04d}"
            sample = samples[key]
            iso_in, t_in = eld.exposures[key]
            iso_ref, t_ref = eld.exposures[ref_key]
            ratio = float(iso_ref * t_ref / (iso_in * t_in))
            assert ratio == pytest.approx(NOMINAL_RATIO[image_id])
            assert sample.cond == {"sensor": camera.name, "iso": float(iso_in), "exposure_ratio": pytest.approx(ratio),
                                   "nominal_ratio": NOMINAL_RATIO[image_id]}
            clean = expected_packed(eld.mosaics[ref_key], camera.black, RGGB_SITES)
            assert sample.clean is not None and sample.clean.shape == (1, 4, 16, 16)
            assert np.allclose(sample.clean[0].numpy(), clean, atol=1e-6), key
            noisy = np.clip(expected_packed(eld.mosaics[key], camera.black, RGGB_SITES) * ratio, 0, 1)
            assert sample.noisy.dtype == torch.float32
            assert np.allclose(sample.noisy[0].numpy(), noisy, atol=1e-5), key


def test_inputs_are_clipped_after_the_ratio(eld: ELDFixture) -> None:
    sample = next(iter(ELD(str(eld.root), cameras=["SonyA7S2"], img_ids=[5])))
    noisy = sample.noisy[0]
    assert float(noisy.min()) == 0.0 and float(noisy.max()) == 1.0
    # The fixture's hot pixel (bottom-right, a B site) and dead pixel (bottom row, a Gb site).
    assert float(noisy[3, -1, -1]) == 1.0 and float(noisy[2, -1, -1]) == 0.0
    # The reference's saturated top-left tile stays exactly 1 in every channel.
    assert sample.clean is not None and torch.all(sample.clean[0, :, 0, 0] == 1.0)


def test_channel_order_option_permutes_channels_but_not_scores(eld: ELDFixture) -> None:
    rggb = next(iter(ELD(str(eld.root), cameras=["CanonEOS70D"], img_ids=[9])))
    rgbg_bench = ELD(str(eld.root), cameras=["CanonEOS70D"], img_ids=[9], channel_order="rgbg")
    rgbg = next(iter(rgbg_bench))
    assert torch.equal(rgbg.noisy, rggb.noisy[:, [0, 1, 3, 2]])
    assert rgbg.clean is not None and rggb.clean is not None
    assert torch.equal(rgbg.clean, rggb.clean[:, [0, 1, 3, 2]])
    assert rgbg_bench.score(rgbg.noisy, rgbg) == pytest.approx(ELD(str(eld.root)).score(rggb.noisy, rggb))


def test_other_bayer_patterns_and_exif_locations_are_read(tmp_path: Path) -> None:
    camera = FixtureCamera("MyCam", ".dng", "gbrg", (600, 610, 620, 630), 16383, "ifd0", "Acme", "X1")
    fixture = write_eld(tmp_path / "ELD", cameras=[camera], jpeg_sidecars=False)
    sample = next(iter(ELD(str(fixture.root), cameras=["MyCam"], img_ids=[4])))
    gbrg_sites = {"gb": (0, 0), "b": (0, 1), "r": (1, 0), "gr": (1, 1)}
    reference = expected_packed(fixture.mosaics["MyCam/scene-1/IMG_0006"], camera.black, gbrg_sites)
    assert sample.clean is not None and np.allclose(sample.clean[0].numpy(), reference, atol=1e-6)
    assert sample.cond["exposure_ratio"] == pytest.approx(100)


def test_white_level_option(tmp_path: Path) -> None:
    camera = FixtureCamera("LowWhite", ".CR2", "rggb", (512, 512, 512, 512), 15000, "exif")
    fixture = write_eld(tmp_path / "ELD", cameras=[camera], jpeg_sidecars=False)
    protocol = next(iter(ELD(str(fixture.root), cameras=["LowWhite"], img_ids=[4])))
    own = next(iter(ELD(str(fixture.root), cameras=["LowWhite"], img_ids=[4], white_level=None)))
    assert protocol.clean is not None and own.clean is not None
    # The saturated tile is 15000 DN: below the protocol's hard-coded 16383, 1.0 with the file's level.
    assert float(protocol.clean[0, 0, 0, 0]) == pytest.approx((15000 - 512) / (16383 - 512))
    assert float(own.clean[0, 0, 0, 0]) == 1.0


def numpy_protocol(output: np.ndarray, target: np.ndarray, correct: bool = True) -> dict[str, float]:
    """ELD_model.eval written independently: clamp, IlluminanceCorrect, ×255, skimage metrics."""
    predict = np.clip(output, 0, 1).astype(np.float64)
    if correct:
        mask = target != 1
        predict = predict * (np.dot(predict[mask], target[mask]) / np.dot(predict[mask], predict[mask]))
    out = np.clip(np.transpose(predict, (1, 2, 0)) * 255, 0, 255)
    ref = np.clip(np.transpose(target, (1, 2, 0)) * 255, 0, 255)
    return {
        "psnr": peak_signal_noise_ratio(ref, out, data_range=255),
        "ssim": structural_similarity(ref, out, data_range=255, channel_axis=-1),
    }


def test_scores_match_an_independent_implementation_of_the_protocol(eld: ELDFixture) -> None:
    for correct in (True, False):
        bench = ELD(str(eld.root), cameras=["SonyA7S2"], correct=correct)
        for sample in list(bench)[:3]:
            assert sample.clean is not None
            expected = numpy_protocol(sample.noisy[0].numpy(), sample.clean[0].numpy().astype(np.float64), correct)
            got = bench.score(sample.noisy, sample)
            assert got["psnr"] == pytest.approx(expected["psnr"], abs=1e-6)
            assert got["ssim"] == pytest.approx(expected["ssim"], abs=1e-6)


def test_brightness_correction_ignores_saturated_positions(eld: ELDFixture) -> None:
    bench = ELD(str(eld.root), cameras=["SonyA7S2"], img_ids=[10])
    sample = next(iter(bench))
    assert sample.clean is not None
    target = sample.clean
    saturated = target == 1
    assert saturated.any() and not saturated.all()
    output = torch.where(saturated, torch.full_like(target, 0.3), 0.8 * target)
    corrected, alpha = illuminance_correct(output, target)
    assert alpha == pytest.approx(1.25, rel=1e-6)
    assert torch.allclose(corrected[~saturated], target[~saturated], atol=1e-6)
    scores = bench.score(output, sample)
    expected = numpy_protocol(output[0].numpy(), target[0].numpy().astype(np.float64))
    assert scores["psnr"] == pytest.approx(expected["psnr"], abs=1e-6)
    uncorrected = ELD(str(eld.root), cameras=["SonyA7S2"], img_ids=[10], correct=False).score(output, sample)
    assert uncorrected["psnr"] < scores["psnr"]
    # A globally darker copy of the reference is perfect after correction.
    assert bench.score(0.5 * target, sample)["psnr"] > 90
    assert bench.conventions.ssim == "uniform" and bench.conventions.data_range == 255.0
    assert "IlluminanceCorrect" in bench.conventions.notes


def test_correction_is_defined_for_degenerate_outputs() -> None:
    target = torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    zeros, alpha = illuminance_correct(torch.zeros_like(target), target)
    assert alpha == 1.0 and torch.equal(zeros, torch.zeros_like(target))
    _, alpha = illuminance_correct(target, torch.ones_like(target))  # everything saturated
    assert alpha == 1.0


def test_conformance_registry_and_config(eld: ELDFixture) -> None:
    bench = ELD(str(eld.root))
    check_benchmark(bench, max_samples=3)
    HOST.load()
    assert BENCHMARKS.lookup("eld") is ELD
    config = json.loads(json.dumps(bench.config()))
    rebuilt = BENCHMARKS.build({"type": "eld", **config})
    assert [s.key for s in rebuilt] == [s.key for s in bench]


def scene_copy(eld: ELDFixture, tmp_path: Path) -> Path:
    root = tmp_path / "ELD"
    shutil.copytree(eld.root / "SonyA7S2", root / "SonyA7S2")
    return root


def test_a_scene_with_17_raws_raises(eld: ELDFixture, tmp_path: Path) -> None:
    root = scene_copy(eld, tmp_path)
    scene = root / "SonyA7S2" / "scene-1"
    shutil.copy(scene / "IMG_0016.ARW", scene / "IMG_0017.ARW")
    with pytest.raises(InvalidInputError, match=r"scene-1: an ELD scene holds exactly 16 raw files .* found 17"):
        ELD(str(root))


def test_a_scene_with_15_raws_or_odd_names_raises(eld: ELDFixture, tmp_path: Path) -> None:
    root = scene_copy(eld, tmp_path)
    scene = root / "SonyA7S2" / "scene-1"
    (scene / "IMG_0016.ARW").rename(tmp_path / "moved.ARW")
    with pytest.raises(InvalidInputError, match="found 15"):
        ELD(str(root))
    (tmp_path / "moved.ARW").rename(scene / "IMG_0020.ARW")
    with pytest.raises(InvalidInputError, match="IMG_0020.ARW"):
        ELD(str(root))


def test_missing_folders_and_unreadable_raws_name_the_path(eld: ELDFixture, tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="ELD root folder not found"):
        ELD(str(tmp_path / "nowhere"))
    root = scene_copy(eld, tmp_path)
    with pytest.raises(ImageReadError, match="NikonD850: ELD camera folder not found"):
        ELD(str(root), cameras=["SonyA7S2", "NikonD850"])
    with pytest.raises(ImageReadError, match="scene-2: ELD scene folder not found"):
        ELD(str(root), scenes=[1, 2])
    with pytest.raises(ImageReadError, match="CanonEOS70D: ELD camera folder not found"):
        ELD(str(root), strict=True)  # the full benchmark needs all four cameras
    with pytest.raises(InvalidInputError, match="strict mode"):
        ELD(str(root), cameras=["SonyA7S2"], strict=True)
    (root / "SonyA7S2" / "scene-1" / "IMG_0004.ARW").write_bytes(b"\0" * 64)
    bench = ELD(str(root), img_ids=[4])
    with pytest.raises(ImageReadError, match="IMG_0004.ARW"):
        next(iter(bench))


def test_invalid_options_are_rejected(eld: ELDFixture) -> None:
    with pytest.raises(InvalidInputError, match="reference"):
        ELD(str(eld.root), img_ids=[4, 6])
    with pytest.raises(InvalidInputError, match="img_ids"):
        ELD(str(eld.root), img_ids=[17])
    with pytest.raises(InvalidInputError, match="channel_order"):
        ELD(str(eld.root), channel_order="bggr")
    with pytest.raises(InvalidInputError, match="white_level"):
        ELD(str(eld.root), white_level=0)
    with pytest.raises(InvalidInputError, match="cameras must be a list"):
        ELD(str(eld.root), cameras="SonyA7S2")
    with pytest.raises(InvalidInputError, match="img_ids must be a non-empty list"):
        ELD(str(eld.root), img_ids=4)
