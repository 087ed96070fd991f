"""JPEG compression round trip through OpenCV, for the compressed variant of CBDNet's model.

JPEG has no vectorised torch implementation here: each image selected for compression is
quantised to 8 bits, encoded with ``cv2.imencode`` at its own quality, decoded with
``cv2.imdecode`` and put back on the batch's device. This is the one step of the pipeline that
runs per image and on the CPU. Images with quality ``0`` pass through untouched.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from noiseshift.api import InvalidInputError

__all__ = ["jpeg_roundtrip"]


def jpeg_roundtrip(images: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Compress and decompress each RGB image with its JPEG quality.

    Args:
        images: ``N×3×H×W`` in ``[0, 1]`` (values outside are clipped before encoding).
        quality: ``(N,)`` integer qualities in ``1..100``; ``0`` leaves that image alone.

    Returns:
        ``N×3×H×W`` of ``images``' dtype and device; compressed images are multiples of 1/255.

    Raises:
        InvalidInputError: for a non-RGB batch, a quality vector of the wrong length or range.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise InvalidInputError(f"jpeg: expected an N×3×H×W batch, got {tuple(images.shape)}")
    levels = [int(q) for q in quality.reshape(-1).tolist()]
    if len(levels) != images.shape[0] or any(q < 0 or q > 100 for q in levels):
        raise InvalidInputError(f"jpeg: expected {images.shape[0]} qualities in 0..100, got {levels}")
    if not any(levels):
        return images
    out = images.clone()
    # One transfer for the images that are compressed; uint8 HWC BGR is what OpenCV encodes.
    chosen = [index for index, q in enumerate(levels) if q > 0]
    as_bytes = (images[chosen].detach().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    as_bytes = as_bytes.permute(0, 2, 3, 1).cpu().numpy()
    for slot, index in enumerate(chosen):
        bgr = np.ascontiguousarray(as_bytes[slot][..., ::-1])
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, levels[index]])
        if not ok:  # pragma: no cover - OpenCV only fails here on broken builds
            raise InvalidInputError(f"jpeg: OpenCV could not encode image {index} at quality {levels[index]}")
        decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
        restored = torch.from_numpy(np.ascontiguousarray(decoded)).permute(2, 0, 1)
        out[index] = restored.to(device=images.device, dtype=images.dtype) / 255.0
    return out
