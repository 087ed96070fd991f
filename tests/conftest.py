"""Shared fixtures: throwaway plugin distributions installed on sys.path for one test."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def write_distribution(root: Path, dist: str, version: str, plugin: str, module: str, source: str) -> Path:
    """Write a real (unpacked) installed distribution: a module plus ``.dist-info`` with entry points.

    This is the layout pip produces in site-packages, so ``importlib.metadata`` finds it exactly
    as it finds an installed plugin.
    """
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[noiseshift]\n{plugin} = {module}\n")
    (info / "RECORD").write_text("")
    return info


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """Install throwaway plugin distributions into a temporary site dir; the host reloads after each."""
    from noiseshift.registry import HOST

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def install(dist: str, plugin: str, source: str, version: str = "0.1.0", module: str | None = None) -> Path:
        module = module or f"ns_test_{plugin}"
        modules.append(module)
        write_distribution(site, dist, version, plugin, module, source)
        importlib.invalidate_caches()
        return site

    yield install
    monkeypatch.undo()
    for module in modules:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()
    HOST.reload()


@pytest.fixture
def last_layer_tuning() -> Callable[[str], type]:
    """Factory of a toy test-time adapter (registry name given) for trace and CLI tests.

    It tunes the backbone's ``last`` role per image on ``mean((f(y) − y)²) + TV(f(y))``: cheap,
    differentiable, and it changes the output, so traces have something to record.
    """
    from noiseshift.adapter import TestTimeAdapter

    class LastLayerTuning(TestTimeAdapter):
        trainable = ("last",)

        def configure(self, backbone, noisy, cond):
            params = backbone.parameters_for("last")
            for param in params:
                param.requires_grad_(True)
            return params

        def loss(self, backbone, noisy, cond, params, generator):
            out = backbone(noisy, cond)
            return (out - noisy).square().mean() + (out[..., 1:] - out[..., :-1]).abs().mean()

    def make(name: str) -> type:
        return type(f"LastLayerTuning_{name}", (LastLayerTuning,), {"name": name})

    return make
