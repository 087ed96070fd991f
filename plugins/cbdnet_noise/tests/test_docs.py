"""docs/noise_models.md: its Python example runs, and the figures it shows exist and are small."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "noise_models.md"

pytestmark = pytest.mark.skipif(not DOC.is_file(), reason=f"{DOC} is not in this checkout")


def test_python_example_runs() -> None:
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/noise_models.md has no Python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    assert namespace["preview"].shape == (4, 3, 64, 64)
    assert namespace["sample"].noisy.shape == namespace["clean"].shape


def test_figures_exist_and_are_small() -> None:
    images = re.findall(r"\]\((img/[^)]+\.png)\)", DOC.read_text())
    assert len(images) >= 4
    for image in images:
        path = DOC.parent / image
        assert path.is_file(), f"{image} is missing; run plugins/cbdnet_noise/tools/make_doc_figures.py"
        assert path.stat().st_size < 300 * 1024, f"{image} is over 300 KB"
