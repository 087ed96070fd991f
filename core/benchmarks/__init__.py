"""Built-in benchmarks (dataset loaders with their official scoring protocols) live here.

None is registered yet; the ``Benchmark`` interface is in ``noiseshift.benchmark`` and
``noiseshift.testing.check_benchmark`` checks implementations.
"""
