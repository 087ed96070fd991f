"""noiseshift: image denoising under noise-domain shift.

The top-level namespace is kept light (importing it does not import torch models or plugins).
Common entry points::

    import noiseshift
    model = noiseshift.load("model.safetensors")      # rebuild a saved model
    noiseshift.save(model, "copy.safetensors")
    from noiseshift.api import Denoiser, Adapter, hookimpl   # for plugin authors
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": "noiseshift.weights",
    "save": "noiseshift.weights",
    "load_state_dict": "noiseshift.weights",
    "load_into": "noiseshift.weights",
    "denoise": "noiseshift.inference",
    "psnr": "noiseshift.metrics",
    "ssim": "noiseshift.metrics",
    "read_image": "noiseshift.image_io",
    "write_image": "noiseshift.image_io",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'noiseshift' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
