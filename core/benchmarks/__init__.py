"""Built-in benchmarks: dataset loaders with their official scoring protocols.

Each module of this package that defines benchmarks lists their classes in a module-level
``BENCHMARKS`` list; ``builtin_benchmarks()`` imports every module of the package and
collects them, so adding a dataset is adding one module. The ``Benchmark`` interface is in
``noiseshift.benchmark``; ``noiseshift.testing.check_benchmark`` checks implementations.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..benchmark import Benchmark


def builtin_benchmarks() -> list[type[Benchmark]]:
    """Every ``Benchmark`` class listed in a ``BENCHMARKS`` list of a module of this package."""
    found: list[type[Benchmark]] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(getattr(module, "BENCHMARKS", []))
    return found
