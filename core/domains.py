"""Noise domains for data-driven adapters: which pairs are the target, which are sources.

A *domain* is a named list of (noisy, clean) pairs, loaded into memory, each carrying its
conditions (``sensor``, ``iso`` when the data says). ``noiseshift adapt`` and the study scripts
build them from short specs:

* a folder of pairs: ``/data/mycam`` (``noisy/`` and ``clean/`` subfolders, the
  ``paired_folder`` benchmark);
* a registered benchmark with options and filters:
  ``polyu:root=/data/PolyU,sensor=Canon80D,split=adapt,limit=4``.

Options are ``key=value`` separated by commas (commas inside brackets or quotes do not
split); values are Python literals when they parse, else strings. The keys below are
handled here, every other key goes to the benchmark's constructor:

* ``sensor`` / ``exclude_sensor``: keep (drop) samples whose ``cond["sensor"]`` is one of the
  given names (a name or a list; compared case-insensitively).
* ``split`` (``adapt`` or ``test``), ``split_fraction`` (default 0.5), ``split_seed``
  (default 0): one side of :func:`split_by_scene`, a fixed split that keeps each scene on one
  side, so no test scene is ever seen while adapting.
* ``limit``: the first N samples (after filtering and splitting, in key order).
* ``name``: the domain's display name (default: the spec itself without ``root``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import InvalidInputError
from .types import Sample

FILTER_KEYS: frozenset[str] = frozenset(
    {"sensor", "exclude_sensor", "split", "split_fraction", "split_seed", "limit", "name"}
)
"""Spec keys applied by this module rather than passed to the benchmark."""

_POLYU_PREFIX = re.compile(r"^[A-Za-z0-9]+_[0-9-]+_[0-9]+_[0-9]+_")
_TRAILING_INDEX = re.compile(r"_+[0-9]+$")


@dataclass(frozen=True)
class DomainSpec:
    """A parsed domain spec: the benchmark, its options, and the filters."""

    benchmark: str
    options: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)
    text: str = ""


@dataclass
class Domain:
    """A named set of pairs in memory.

    Attributes:
        name: display name (used in logs and in ADL's per-domain statistics).
        samples: ``Sample`` objects with ``noisy`` and ``clean`` (``1×C×H×W`` float32 in
            ``[0, 1]``) and their conditions.
    """

    name: str
    samples: list[Sample]

    def __len__(self) -> int:
        return len(self.samples)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are outside brackets and quotes."""
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in (p.strip() for p in parts) if part]


def parse_domain(spec: str) -> DomainSpec:
    """Parse ``FOLDER`` or ``BENCHMARK[:key=value,...]`` (see the module docstring).

    Raises:
        InvalidInputError: an empty spec or an option that is not ``key=value``.
    """
    text = spec.strip()
    if not text:
        raise InvalidInputError("empty domain spec; give a folder of pairs or BENCHMARK:key=value,...")
    if Path(text).expanduser().is_dir():
        return DomainSpec("paired_folder", {"root": str(Path(text).expanduser())}, {}, text)
    name, _, rest = text.partition(":")
    name = name.strip()
    if not re.fullmatch(r"[a-z][a-z0-9_.]*", name):
        raise InvalidInputError(
            f"domain spec {spec!r}: {name!r} is neither an existing folder nor a benchmark name "
            "(expected FOLDER or BENCHMARK:key=value,...)"
        )
    options: dict[str, Any] = {}
    filters: dict[str, Any] = {}
    for item in _split_top_level(rest):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise InvalidInputError(f"domain spec {spec!r}: expected key=value, got {item!r}")
        try:
            value: Any = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        (filters if key in FILTER_KEYS else options)[key] = value
    return DomainSpec(name, options, filters, text)


def scene_of(key: str) -> str:
    """The scene a sample key shows.

    PolyU ``CroppedImages`` keys name it after the camera settings and before the crop index
    (``"Canon5D2_5_160_3200_chair_11"`` -> ``"chair"``); any other key is its own scene.
    """
    match = _POLYU_PREFIX.match(key)
    if match is None:
        return key
    return _TRAILING_INDEX.sub("", key[match.end():]) or key


def split_by_scene(
    samples: Sequence[Sample], fraction: float = 0.5, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """Split pairs into an adaptation part and a test part with no scene in both.

    The sorted scene names are shuffled by a ``torch.Generator`` seeded with ``seed``; scenes go
    to the adaptation side until it holds at least ``fraction`` of the samples, the rest are the
    test side. The split depends only on the keys, the fraction and the seed.

    Returns:
        ``(adapt, test)``, each sorted by key.
    """
    if not 0.0 < fraction < 1.0:
        raise InvalidInputError(f"split fraction must be in (0, 1), got {fraction}")
    by_scene: dict[str, list[Sample]] = {}
    for sample in samples:
        by_scene.setdefault(scene_of(sample.key), []).append(sample)
    scenes = sorted(by_scene)
    order = torch.randperm(len(scenes), generator=torch.Generator().manual_seed(int(seed))).tolist()
    adapt: list[Sample] = []
    test: list[Sample] = []
    goal = fraction * len(samples)
    for index in order:
        (adapt if len(adapt) < goal else test).extend(by_scene[scenes[index]])
    return sorted(adapt, key=lambda s: s.key), sorted(test, key=lambda s: s.key)


def _names(value: Any, key: str) -> set[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise InvalidInputError(f"domain filter {key}= takes a sensor name or a list of names, got {value!r}")
    return {n.casefold() for n in names}


def filter_samples(
    samples: Iterable[Sample], sensor: str | Sequence[str] | None = None,
    exclude_sensor: str | Sequence[str] | None = None,
) -> list[Sample]:
    """Keep samples whose ``cond["sensor"]`` is in ``sensor`` and not in ``exclude_sensor``."""
    keep = _names(sensor, "sensor") if sensor is not None else None
    drop = _names(exclude_sensor, "exclude_sensor") if exclude_sensor is not None else set()
    out = []
    for sample in samples:
        name = str(sample.cond.get("sensor", "")).casefold()
        if (keep is None or name in keep) and name not in drop:
            out.append(sample)
    return out


def load_domain(spec: str | DomainSpec, *, paired: bool = True) -> Domain:
    """Build the benchmark a spec names, read its pairs and apply the filters.

    Args:
        spec: a spec string or a parsed ``DomainSpec``.
        paired: require a clean image for every sample (adaptation needs pairs).

    Raises:
        InvalidInputError: unknown filter values, a benchmark without ground truth, or no
            samples left after filtering.
    """
    from .registry import BENCHMARKS

    parsed = parse_domain(spec) if isinstance(spec, str) else spec
    benchmark = BENCHMARKS.build({"type": parsed.benchmark, **parsed.options})
    samples = sorted(benchmark, key=lambda s: s.key)
    filters = dict(parsed.filters)
    samples = filter_samples(samples, filters.pop("sensor", None), filters.pop("exclude_sensor", None))
    split = filters.pop("split", None)
    fraction = float(filters.pop("split_fraction", 0.5))
    split_seed = int(filters.pop("split_seed", 0))
    if split is not None:
        if split not in ("adapt", "test"):
            raise InvalidInputError(f"domain {parsed.text!r}: split must be 'adapt' or 'test', got {split!r}")
        adapt, test = split_by_scene(samples, fraction, split_seed)
        samples = adapt if split == "adapt" else test
    limit = filters.pop("limit", None)
    if limit is not None:
        if not isinstance(limit, int) or limit < 1:
            raise InvalidInputError(f"domain {parsed.text!r}: limit must be a positive integer, got {limit!r}")
        samples = samples[:limit]
    name = filters.pop("name", None) or _display_name(parsed)
    if not samples:
        raise InvalidInputError(f"domain {parsed.text!r}: no samples left after filtering")
    if paired:
        missing = [s.key for s in samples if s.clean is None]
        if missing:
            raise InvalidInputError(
                f"domain {parsed.text!r}: {len(missing)} sample(s) have no clean image (e.g. {missing[0]!r}); "
                "adaptation needs (noisy, clean) pairs"
            )
    return Domain(str(name), samples)


def _display_name(spec: DomainSpec) -> str:
    shown = {k: v for k, v in {**spec.options, **spec.filters}.items() if k != "root"}
    if spec.benchmark == "paired_folder" and "root" in spec.options and not shown:
        return Path(spec.options["root"]).name
    return spec.benchmark + (
        "[" + ",".join(f"{k}={v}" for k, v in sorted(shown.items())) + "]" if shown else ""
    )


__all__ = [
    "Domain", "DomainSpec", "FILTER_KEYS", "filter_samples", "load_domain", "parse_domain", "scene_of",
    "split_by_scene",
]
