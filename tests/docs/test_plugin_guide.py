"""docs/plugins.md's worked example is a working plugin: build it from the page and run its tests."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

from noiseshift.registry import ADAPTERS, HOST

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _blocks_after(text: str, marker: str) -> str:
    start = text.index(marker)
    match = re.compile(r"```(\w+)\n(.*?)```", re.S).search(text, start)
    assert match is not None, f"no code block after {marker!r}"
    return match.group(2)


def test_worked_example_installs_registers_and_passes_its_own_tests(tmp_path: Path, monkeypatch) -> None:
    text = GUIDE.read_text()
    pyproject = _blocks_after(text, "`pyproject.toml`:")
    module = _blocks_after(text, "`noiseshift_blend/__init__.py`:")
    tests = _blocks_after(text, "`tests/test_blend.py`:")
    entry = re.search(r"\[project\.entry-points\.noiseshift\]\n(\w+) = \"(\w+)\"", pyproject)
    assert entry is not None, "the example pyproject declares no noiseshift entry point"
    plugin, package = entry.groups()

    site = tmp_path / "site"
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(module)
    info = site / "noiseshift_blend-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: noiseshift-blend\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[noiseshift]\n{plugin} = {package}\n")
    (site / "test_blend_doc.py").write_text(tests)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    try:
        HOST.reload()
        assert HOST.records[plugin].status == "ok", HOST.records[plugin].error
        assert ADAPTERS.lookup(f"{plugin}.output_blend").__module__ == package
        doc_tests = importlib.import_module("test_blend_doc")
        names = [n for n in dir(doc_tests) if n.startswith("test_")]
        assert len(names) == 3
        for name in names:
            getattr(doc_tests, name)()
    finally:
        for name in (package, "test_blend_doc"):
            sys.modules.pop(name, None)
        monkeypatch.undo()
        importlib.invalidate_caches()
        HOST.reload()
