"""Domain specs: folders and benchmarks with sensor filters, scene splits and limits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from noiseshift.benchmarks.fixtures.polyu import write_polyu
from noiseshift.domains import filter_samples, load_domain, parse_domain, scene_of, split_by_scene
from noiseshift.errors import InvalidInputError
from noiseshift.image_io import write_image
from noiseshift.types import Sample

NAMES = (
    "Canon5D2_5_160_3200_chair_11", "Canon5D2_5_160_3200_chair_12", "Canon80D_8_8_1600_ball_1",
    "NikonD800_6-3_125_5000_plant__4", "Sony_4-5_125_6400_toy_2", "Sony_4-5_125_800_wall_3",
)


@pytest.fixture
def polyu_root(tmp_path: Path) -> Path:
    return write_polyu(tmp_path / "PolyU", cropped=NAMES, originals=())


def test_spec_parsing_separates_benchmark_options_from_filters(tmp_path: Path) -> None:
    spec = parse_domain("polyu:root=/data/PolyU,sensor=['Canon80D', 'Sony'],split=test,limit=3,crop=None")
    assert spec.benchmark == "polyu"
    assert spec.options == {"root": "/data/PolyU", "crop": None}
    assert spec.filters == {"sensor": ["Canon80D", "Sony"], "split": "test", "limit": 3}
    folder = parse_domain(str(tmp_path))
    assert folder.benchmark == "paired_folder" and folder.options == {"root": str(tmp_path)}
    with pytest.raises(InvalidInputError, match="neither an existing folder nor a benchmark"):
        parse_domain("/no/such/folder")
    with pytest.raises(InvalidInputError, match="expected key=value"):
        parse_domain("polyu:root")


def test_scene_names_from_polyu_keys() -> None:
    assert scene_of("Canon5D2_5_160_3200_chair_11") == "chair"
    assert scene_of("NikonD800_6-3_125_5000_plant__4") == "plant"
    assert scene_of("img0") == "img0"


def _samples(keys: list[str]) -> list[Sample]:
    return [Sample(key, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)) for key in keys]


def test_scene_split_never_shares_a_scene_and_depends_only_on_the_seed() -> None:
    keys = [f"Cam_1_1_100_{scene}_{index}" for scene in ("a", "b", "c", "d", "e", "f") for index in range(3)]
    samples = _samples(keys)
    adapt, test = split_by_scene(samples, 0.5, seed=1)
    assert {scene_of(s.key) for s in adapt}.isdisjoint({scene_of(s.key) for s in test})
    assert len(adapt) + len(test) == len(samples) and len(adapt) == 9
    again = split_by_scene(list(reversed(samples)), 0.5, seed=1)
    assert [s.key for s in again[0]] == [s.key for s in adapt]
    splits = {tuple(s.key for s in split_by_scene(samples, 0.5, seed)[0]) for seed in range(6)}
    assert len(splits) > 1
    with pytest.raises(InvalidInputError, match="fraction"):
        split_by_scene(samples, 1.0)


def test_sensor_filters_are_case_insensitive() -> None:
    samples = _samples(["a", "b", "c"])
    for sample, sensor in zip(samples, ["Sony", "Canon80D", "sony"]):
        sample.cond = {"sensor": sensor}
    assert [s.key for s in filter_samples(samples, sensor="SONY")] == ["a", "c"]
    assert [s.key for s in filter_samples(samples, exclude_sensor=["sony"])] == ["b"]
    with pytest.raises(InvalidInputError, match="sensor name"):
        filter_samples(samples, sensor=3)


def test_polyu_domain_with_filters(polyu_root: Path) -> None:
    everything = load_domain(f"polyu:root={polyu_root}")
    assert len(everything) == len(NAMES) and everything.name == "polyu"
    sony = load_domain(f"polyu:root={polyu_root},sensor=Sony")
    assert [s.key for s in sony.samples] == sorted(n for n in NAMES if n.startswith("Sony"))
    assert all(s.cond["sensor"] == "Sony" and s.clean is not None for s in sony.samples)
    assert sony.name == "polyu[sensor=Sony]"
    others = load_domain(f"polyu:root={polyu_root},exclude_sensor=Sony,name=rest")
    assert others.name == "rest" and len(others) == len(NAMES) - 2
    adapt = load_domain(f"polyu:root={polyu_root},split=adapt,split_seed=3")
    test = load_domain(f"polyu:root={polyu_root},split=test,split_seed=3")
    assert {s.key for s in adapt.samples} | {s.key for s in test.samples} == set(NAMES)
    assert {scene_of(s.key) for s in adapt.samples}.isdisjoint({scene_of(s.key) for s in test.samples})
    assert len(load_domain(f"polyu:root={polyu_root},limit=2")) == 2
    with pytest.raises(InvalidInputError, match="no samples left"):
        load_domain(f"polyu:root={polyu_root},sensor=Fuji")
    with pytest.raises(InvalidInputError, match="split must be"):
        load_domain(f"polyu:root={polyu_root},split=train")
    with pytest.raises(InvalidInputError, match="limit"):
        load_domain(f"polyu:root={polyu_root},limit=0")


def test_folder_domain_is_named_after_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "mycam"
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    write_image(root / "noisy" / "x.png", image)
    write_image(root / "clean" / "x.png", image)
    domain = load_domain(str(root))
    assert domain.name == "mycam" and len(domain) == 1 and domain.samples[0].clean is not None
