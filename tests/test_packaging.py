"""Packaging: every sub-package of core/ and registry/ is listed, so wheel installs are complete."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_declared_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(config["packages"])
    found = set()
    for folder, prefix in (("core", "noiseshift"), ("registry", "noiseshift.registry")):
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([prefix, *relative.parts]) if relative.parts else prefix)
    assert found - declared == set(), f"add to [tool.setuptools] packages: {sorted(found - declared)}"
    assert config["package-dir"] == {"noiseshift": "core", "noiseshift.registry": "registry"}


def test_torch_is_pinned_by_the_constraints_file() -> None:
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().split()
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(d.startswith(("torchvision", "timm")) for d in dependencies)
