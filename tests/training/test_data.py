"""Training data: determinism by position, worker independence, caching, error reporting, sharding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from noiseshift.errors import ImageReadError, InvalidInputError
from noiseshift.image_io import read_image, write_image
from noiseshift.training import IterationSampler, PairedFolderDataset, SyntheticDataset, build_dataset

from .conftest import smooth_image, write_folder

NOISE = {"type": "gaussian", "sigma": [0.0, 0.2]}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_folder(tmp_path / "clean", 5, seed=3)
    return tmp_path / "clean"


def test_a_sample_is_a_pure_function_of_seed_and_position(folder: Path) -> None:
    first = SyntheticDataset(folder, NOISE, 16, seed=7)
    second = SyntheticDataset(folder, NOISE, 16, seed=7)
    for position in (0, 3, 11, 3):  # any order, any instance
        a, b = first[position], second[position]
        assert torch.equal(a["noisy"], b["noisy"]) and torch.equal(a["clean"], b["clean"])
        assert a["noisy"].shape == (3, 16, 16) and a["clean"].dtype == torch.float32
    assert not torch.equal(first[0]["noisy"], first[1]["noisy"])
    assert not torch.equal(first[0]["noisy"], SyntheticDataset(folder, NOISE, 16, seed=8)[0]["noisy"])


def test_every_image_is_used_once_per_epoch_in_a_new_order(folder: Path) -> None:
    dataset = SyntheticDataset(folder, NOISE, 16, seed=0)
    epoch0 = [dataset[p]["index"] for p in range(5)]
    epoch1 = [dataset[p]["index"] for p in range(5, 10)]
    assert sorted(epoch0) == sorted(epoch1) == list(range(5))
    assert epoch0 != epoch1 or epoch0 != [dataset[p]["index"] for p in range(10, 15)]


def test_batches_do_not_depend_on_the_number_of_workers(folder: Path) -> None:
    dataset = SyntheticDataset(folder, NOISE, 16, seed=1)

    def batches(workers: int) -> list[torch.Tensor]:
        sampler = IterationSampler(start_iter=2, max_iters=5, batch_size=3)
        loader = DataLoader(dataset, batch_size=3, sampler=sampler, num_workers=workers)
        return [batch["noisy"] for batch in loader]

    serial, parallel = batches(0), batches(2)
    assert len(serial) == 3
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))


def test_ranks_split_each_global_batch_and_resume_mid_run() -> None:
    whole = list(IterationSampler(start_iter=0, max_iters=3, batch_size=4))
    ranks = [list(IterationSampler(start_iter=0, max_iters=3, batch_size=2, rank=r, world_size=2)) for r in (0, 1)]
    for t in range(3):
        assert ranks[0][2 * t : 2 * t + 2] + ranks[1][2 * t : 2 * t + 2] == whole[4 * t : 4 * t + 4]
    assert list(IterationSampler(start_iter=1, max_iters=3, batch_size=4)) == whole[4:]
    with pytest.raises(InvalidInputError):
        IterationSampler(start_iter=0, max_iters=1, batch_size=1, rank=2, world_size=2)


def test_cache_is_lossless_and_optional(tmp_path: Path, folder: Path) -> None:
    cached = SyntheticDataset(folder, NOISE, 16, seed=2)
    assert cached.store.cached and cached.store.get(0).dtype == torch.uint8
    assert torch.equal(cached.store.get(0).float() / 255, read_image(cached.store.files[0])[0])
    uncached = SyntheticDataset(folder, NOISE, 16, seed=2, cache=False)
    over_budget = SyntheticDataset(folder, NOISE, 16, seed=2, cache_limit_mb=0.001)
    assert not uncached.store.cached and not over_budget.store.cached
    for position in range(4):
        assert torch.equal(cached[position]["noisy"], uncached[position]["noisy"])
    # 16-bit images stay 16-bit in the cache.
    write_image(tmp_path / "deep" / "a.png", smooth_image(5), bit_depth=16)
    deep = SyntheticDataset(tmp_path / "deep", NOISE, 16)
    assert deep.store.get(0).dtype == torch.uint16
    assert torch.equal(deep.store.get(0).float() / 65535, read_image(tmp_path / "deep" / "a.png")[0])


def test_unreadable_and_too_small_images_are_named(folder: Path) -> None:
    (folder / "broken.png").write_bytes(b"\x89PNG but not really")
    (folder / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"2 of 7 training image\(s\) cannot be read") as info:
        SyntheticDataset(folder, NOISE, 16)
    assert "broken.png" in str(info.value) and "empty.jpg" in str(info.value)
    (folder / "broken.png").unlink()
    (folder / "empty.jpg").unlink()
    write_image(folder / "tiny.png", smooth_image(9, height=12, width=30))
    with pytest.raises(InvalidInputError, match=r"tiny.png \(12×30\)"):
        SyntheticDataset(folder, NOISE, 16)


def test_sigma_maps_come_with_the_samples_when_asked(folder: Path) -> None:
    dataset = SyntheticDataset(folder, {"type": "poisson_gaussian"}, 16, return_sigma=True)
    item = dataset[4]
    assert item["sigma"].shape == item["noisy"].shape and (item["sigma"] >= 0).all()
    assert "sigma" not in SyntheticDataset(folder, NOISE, 16)[4]


def test_paired_folders_get_the_same_crop_and_transform(tmp_path: Path) -> None:
    for index in range(3):
        clean = smooth_image(index)
        write_image(tmp_path / "clean" / f"p{index}.png", clean)
        write_image(tmp_path / "noisy" / f"p{index}.png", 1.0 - clean)  # exactly 255 - v in 8 bits
    dataset = build_dataset({"type": "paired_folder", "noisy_root": str(tmp_path / "noisy"),
                             "clean_root": str(tmp_path / "clean"), "patch_size": 16}, seed=4)
    for position in range(6):
        item = dataset[position]
        assert torch.allclose(item["noisy"], 1.0 - item["clean"], atol=1e-6)
    write_image(tmp_path / "noisy" / "extra.png", smooth_image(8))
    with pytest.raises(InvalidInputError, match="only noisy: \\['extra'\\]"):
        PairedFolderDataset(tmp_path / "noisy", tmp_path / "clean", 16)


def test_unknown_dataset_type_and_option_are_errors(folder: Path) -> None:
    with pytest.raises(InvalidInputError, match="known: \\['paired_folder', 'synthetic'\\]"):
        build_dataset({"type": "lmdb"})
    with pytest.raises(InvalidInputError, match="unknown option\\(s\\) \\['crop'\\]"):
        build_dataset({"type": "synthetic", "root": str(folder), "noise": NOISE, "crop": 3})
