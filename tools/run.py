#!/usr/bin/env python
"""Run a backbone (optionally wrapped by an adapter) on images: ``noiseshift denoise`` as a script.

Example::

    python tools/run.py photo.png -o out/ --model default --tile 512
    python tools/run.py noisy_dir/ -o out/ --model model.safetensors --adapter lan -O steps=20
"""

import sys

from noiseshift.cli import main

if __name__ == "__main__":
    sys.exit(main(["denoise", *sys.argv[1:]]))
