#!/usr/bin/env python
"""Train a denoiser from a config: ``noiseshift train`` as a script.

Example::

    python tools/train.py configs/dncnn/dncnn_cbsd432_gaussian_blind.py --work-dir runs/dncnn
    python tools/train.py configs/dncnn/dncnn_cbsd432_gaussian_blind.py --resume --cfg-options optimizer.lr=5e-4
    torchrun --nproc_per_node 2 tools/train.py configs/unet/unet_cbsd432_gaussian_blind.py
"""

import sys

from noiseshift.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
