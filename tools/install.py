#!/usr/bin/env python
"""Install noiseshift and every first-party plugin under plugins/ (editable) into this Python.

Usage::

    python tools/install.py          # the toolbox and its plugins
    python tools/install.py --test   # plus the test dependencies

One pip call resolves everything together, with constraints.txt pinning the tested torch so a
fresh install never pulls another torch (or CUDA packages). Plugins are found by globbing
plugins/*/pyproject.toml, so a new plugin is installed as soon as it appears.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def plugin_dirs() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", action="store_true", help="also install the test dependencies")
    args = parser.parse_args()
    core = f"{ROOT}[test]" if args.test else str(ROOT)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"), "-e", core]
    for plugin in plugin_dirs():
        command += ["-e", str(plugin)]
    print("installing noiseshift" + (f" and plugins: {', '.join(p.name for p in plugin_dirs())}" if plugin_dirs() else ""),
          flush=True)
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
