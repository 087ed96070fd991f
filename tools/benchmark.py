#!/usr/bin/env python
"""Score a model on a benchmark: ``noiseshift benchmark`` as a script.

Example::

    python tools/benchmark.py polyu --root ../shared/data/real/PolyU --model bm3d -O sigma=0.0588 --out runs/polyu_bm3d
    python tools/benchmark.py paired_folder --root my_pairs --model model.safetensors --adapter lan --report --out runs/mine
    torchrun --nproc-per-node 4 tools/benchmark.py polyu -B protocol=tiled --root PolyU --model model.safetensors --out runs/t
"""

import sys

from noiseshift.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
