"""paired_folder (pairing by stem, explicit folders, errors) and synthetic (seeded noise per item)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from noiseshift.benchmarks.folders import PairedFolder, Synthetic
from noiseshift.errors import ImageReadError, InvalidInputError
from noiseshift.image_io import read_image, write_image
from noiseshift.registry import BENCHMARKS, NOISE_MODELS
from noiseshift.testing import check_benchmark


def _image(seed: int, size: int = 20) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, size // 4, size // 4, generator=generator)
    return torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    root = tmp_path / "pairs"
    for index, name in enumerate(["b", "a", "c"]):
        clean = _image(index)
        noisy = (clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(9 + index))).clamp(0, 1)
        write_image(root / "noisy" / f"{name}.png", noisy)
        write_image(root / "clean" / f"{name}.{'tif' if name == 'c' else 'png'}", clean)
    return root


def test_pairs_by_stem_in_sorted_order(pairs: Path) -> None:
    bench = check_benchmark(PairedFolder(pairs))
    assert bench.keys() == ["a", "b", "c"]  # c.png pairs with c.tif
    assert torch.equal(bench[2].clean, read_image(pairs / "clean" / "c.tif"))
    assert torch.equal(bench[0].noisy, read_image(pairs / "noisy" / "a.png"))
    explicit = PairedFolder(noisy_dir=pairs / "noisy", clean_dir=pairs / "clean")
    assert explicit.keys() == bench.keys()
    assert isinstance(BENCHMARKS.build({"type": "paired_folder", "root": str(pairs)}), PairedFolder)
    assert explicit.config()["noisy_dir"] == str(pairs / "noisy")


def test_scoring_options_set_the_conventions(pairs: Path) -> None:
    bench = PairedFolder(pairs, quantize="uint8", ssim="uniform", border_crop=2)
    conv = bench.conventions
    assert (conv.quantize, conv.ssim, conv.border_crop, conv.data_range) == ("uint8", "uniform", 2, 1.0)
    with pytest.raises(InvalidInputError, match="quantize"):
        PairedFolder(pairs, quantize="uint16")
    with pytest.raises(InvalidInputError, match="border_crop"):
        PairedFolder(pairs, border_crop=-1)
    gray = PairedFolder(pairs, channels=1)
    assert gray[0].noisy.shape[1] == 1


def test_unpaired_files_are_all_listed(pairs: Path) -> None:
    write_image(pairs / "noisy" / "extra.png", _image(5))
    (pairs / "clean" / "b.png").unlink()
    write_image(pairs / "clean" / "orphan.jpg", _image(6))
    with pytest.raises(InvalidInputError) as error:
        PairedFolder(pairs)
    message = str(error.value)
    assert "unpaired" in message and "b.png" in message and "extra.png" in message and "orphan.jpg" in message


def test_ambiguous_stems_and_missing_folders(pairs: Path, tmp_path: Path) -> None:
    write_image(pairs / "clean" / "a.jpg", _image(7))
    with pytest.raises(InvalidInputError, match=r"share a name.*a\.jpg"):
        PairedFolder(pairs)
    with pytest.raises(InvalidInputError, match="does not exist"):
        PairedFolder(tmp_path / "nothing")
    with pytest.raises(InvalidInputError, match="noisy folder .* does not exist"):
        PairedFolder(noisy_dir=tmp_path / "n", clean_dir=pairs / "clean")
    with pytest.raises(InvalidInputError, match="give root"):
        PairedFolder(noisy_dir=pairs / "noisy")
    (tmp_path / "bare" / "noisy").mkdir(parents=True)
    (tmp_path / "bare" / "clean").mkdir()
    with pytest.raises(InvalidInputError, match="no supported images"):
        PairedFolder(tmp_path / "bare")


def test_unreadable_or_mismatched_images_fail_on_access_naming_the_file(pairs: Path) -> None:
    (pairs / "noisy" / "b.png").write_bytes(b"garbage")
    write_image(pairs / "clean" / "c.tif", _image(2, size=16), overwrite=True)
    bench = PairedFolder(pairs)
    assert bench[0].key == "a"
    with pytest.raises(ImageReadError, match="b.png"):
        bench[1]
    with pytest.raises(InvalidInputError, match=r"noisy c.png is 20×20×3 .* clean c.tif is 16×16×3"):
        bench[2]


# -- synthetic ------------------------------------------------------------------------------


def test_each_item_gets_its_own_reproducible_noise(pairs: Path) -> None:
    clean_dir = pairs / "clean"
    bench = check_benchmark(Synthetic(clean_dir, noise={"type": "gaussian", "sigma": 0.1}, seed=3))
    assert bench.keys() == ["a", "b", "c"]
    # Item 1, read first, alone, or after others: always the same noise (seed 3 + 1).
    once = bench[1].noisy
    list(bench)
    assert torch.equal(Synthetic(clean_dir, noise={"type": "gaussian", "sigma": 0.1}, seed=3)[1].noisy, once)
    assert torch.equal(bench[1].noisy, once)
    clean = read_image(clean_dir / "b.png")
    expected = NOISE_MODELS.build({"type": "gaussian", "sigma": 0.1})(clean, torch.Generator().manual_seed(4))
    assert torch.equal(once, expected.noisy.clamp(0, 1))
    assert not torch.equal(bench[0].noisy - bench[0].clean, bench[1].noisy - bench[1].clean)
    assert not torch.equal(Synthetic(clean_dir, noise={"type": "gaussian", "sigma": 0.1}, seed=4)[1].noisy, once)


def test_sigma_map_goes_into_cond_and_clipping_is_an_option(pairs: Path) -> None:
    clean_dir = pairs / "clean"
    sample = Synthetic(clean_dir, noise={"type": "gaussian", "sigma": 0.2})[0]
    assert sample.cond["sigma"].shape == (1, 1, 20, 20)
    assert torch.allclose(sample.cond["sigma"], torch.full((1, 1, 20, 20), 0.2))
    assert float(sample.noisy.min()) >= 0 and float(sample.noisy.max()) <= 1
    raw = Synthetic(clean_dir, noise={"type": "gaussian", "sigma": 0.2}, clip=False)[0].noisy
    assert float(raw.min()) < 0 or float(raw.max()) > 1
    heteroscedastic = Synthetic(clean_dir, noise={"type": "poisson_gaussian", "sigma_s": 0.1, "sigma_c": 0.02})[0]
    assert heteroscedastic.cond["sigma"].shape[-2:] == (20, 20)
    by_name = Synthetic(clean_dir, noise="gaussian")
    assert by_name.config()["noise"]["type"] == "gaussian" and "seed 0" in by_name.conventions.notes
    built = BENCHMARKS.build({"type": "synthetic", "root": str(clean_dir), "noise": {"type": "gaussian", "sigma": 0.1}})
    assert isinstance(built, Synthetic)


def test_synthetic_errors(pairs: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        Synthetic(tmp_path / "none")
    with pytest.raises(InvalidInputError, match="noise must be"):
        Synthetic(pairs / "clean", noise=0.1)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="no component named 'gausian'"):
        Synthetic(pairs / "clean", noise={"type": "gausian"})
    with pytest.raises(InvalidInputError, match="seed"):
        Synthetic(pairs / "clean", seed=-1)
