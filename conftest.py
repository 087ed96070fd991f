"""Settings for the whole test suite (core and plugin tests alike)."""

from __future__ import annotations

import torch

# The tests push tiny tensors through small networks, where intra-op threads only add
# synchronisation; on a machine whose other core is busy, OpenMP's waits made a 7 ms step take up
# to a second. One thread keeps the suite fast and its timing independent of the machine's load.
torch.set_num_threads(1)
