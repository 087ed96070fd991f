"""The image sub-samplers behind the two self-supervised losses.

Both split an image into non-overlapping 2×2 cells and build two half-size images from
different pixels of every cell, so that the two see (nearly) independent noise of the same
underlying clean signal:

* **ZS-N2N** (Mansour & Heckel, "Zero-Shot Noise2Noise", CVPR 2023): two *fixed* depthwise
  2×2, stride-2 filters, ``D1 = [[0, ½], [½, 0]]`` (mean of the anti-diagonal) and
  ``D2 = [[½, 0], [0, ½]]`` (mean of the diagonal), applied to every channel.
* **Neighbor2Neighbor** (Huang et al., CVPR 2021): in every cell one of the 8 *ordered* pairs
  of horizontally or vertically adjacent pixels is drawn at random; ``g1`` takes the first
  pixel of the pair and ``g2`` the second, the same choice for all channels of an image.

Cell positions are numbered ``0 = (0, 0)``, ``1 = (0, 1)``, ``2 = (1, 0)``, ``3 = (1, 1)``
(row, column inside the cell). An odd last row or column belongs to no cell and is dropped, as
a stride-2 convolution without padding drops it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from noiseshift.api import InvalidInputError

__all__ = [
    "NEIGHBOUR_PAIRS",
    "apply_neighbour_pairs",
    "draw_neighbour_pairs",
    "neighbour_subsample",
    "zsn2n_downsample",
]

NEIGHBOUR_PAIRS: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 3), (1, 0), (2, 0), (3, 1), (3, 2),
)
"""The 8 ordered pairs of adjacent cell positions Neighbor2Neighbor draws from (both orders of
the two horizontal and the two vertical neighbour pairs of a 2×2 cell)."""

_D1 = ((0.0, 0.5), (0.5, 0.0))
_D2 = ((0.5, 0.0), (0.0, 0.5))


def _check_image(owner: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidInputError(f"{owner}: expected a float N×C×H×W tensor, got {shape}")
    if x.shape[-2] < 2 or x.shape[-1] < 2:
        raise InvalidInputError(
            f"{owner}: the image must be at least 2×2 to split it into 2×2 cells, got {tuple(x.shape)}"
        )


def zsn2n_downsample(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ZS-N2N's two fixed downsamplings of an image.

    Args:
        x: ``N×C×H×W`` float tensor, ``H, W >= 2`` (any values; differentiable).

    Returns:
        ``(D1(x), D2(x))``, each ``N×C×⌊H/2⌋×⌊W/2⌋``: per 2×2 cell, the mean of its
        anti-diagonal ``(0, 1), (1, 0)`` and of its diagonal ``(0, 0), (1, 1)`` pixels.

    Raises:
        InvalidInputError: ``x`` is not a float ``N×C×H×W`` tensor of at least 2×2 pixels.
    """
    _check_image("zsn2n_downsample", x)
    channels = x.shape[1]
    kernels = torch.tensor((_D1, _D2), dtype=x.dtype, device=x.device)  # 2×2×2
    outputs = []
    for kernel in kernels:
        weight = kernel.expand(channels, 1, 2, 2)
        outputs.append(F.conv2d(x, weight, stride=2, groups=channels))
    return outputs[0], outputs[1]


def _cells(x: torch.Tensor) -> torch.Tensor:
    """``N×C×H×W`` → ``N×C×⌊H/2⌋×⌊W/2⌋×4``: the four pixels of every 2×2 cell, by position."""
    batch, channels, height, width = x.shape
    rows, cols = height // 2, width // 2
    x = x[..., : 2 * rows, : 2 * cols]
    return x.reshape(batch, channels, rows, 2, cols, 2).permute(0, 1, 2, 4, 3, 5).reshape(
        batch, channels, rows, cols, 4
    )


def draw_neighbour_pairs(
    batch: int, height: int, width: int, generator: torch.Generator, device: torch.device | str | None = None
) -> torch.Tensor:
    """Draw one of the 8 :data:`NEIGHBOUR_PAIRS` for every 2×2 cell of a batch of images.

    Args:
        batch: images ``N``.
        height: image height ``H`` (the cells cover ``⌊H/2⌋`` rows).
        width: image width ``W``.
        generator: source of the draw; the result lives on its device, then moves to ``device``.
        device: where the returned indices go (default: the generator's device).

    Returns:
        ``N×⌊H/2⌋×⌊W/2⌋`` int64 tensor of pair indices in ``0 … 7``.
    """
    if not isinstance(generator, torch.Generator):
        raise InvalidInputError(
            f"neighbour sub-sampling draws random pixel pairs and needs a torch.Generator, got {generator!r}"
        )
    pairs = torch.randint(len(NEIGHBOUR_PAIRS), (batch, height // 2, width // 2), generator=generator,
                          device=generator.device)
    return pairs.to(device if device is not None else generator.device)


def apply_neighbour_pairs(x: torch.Tensor, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two sub-images ``(g1(x), g2(x))`` for drawn pair indices.

    Use it to sub-sample several images (the noisy input and the network's estimate, in
    Neighbor2Neighbor's regulariser) with the *same* draw.

    Args:
        x: ``N×C×H×W`` float tensor, ``H, W >= 2``.
        pairs: ``N×⌊H/2⌋×⌊W/2⌋`` indices from :func:`draw_neighbour_pairs`.

    Returns:
        ``(g1, g2)``, each ``N×C×⌊H/2⌋×⌊W/2⌋``: per cell, the first and the second pixel of its
        pair (the same pixel position in every channel).

    Raises:
        InvalidInputError: malformed ``x``, or ``pairs`` of the wrong shape.
    """
    _check_image("neighbour sub-sampling", x)
    batch, channels, height, width = x.shape
    expected = (batch, height // 2, width // 2)
    if tuple(pairs.shape) != expected or pairs.dtype != torch.int64:
        raise InvalidInputError(
            f"neighbour sub-sampling: pair indices must be an int64 tensor of shape {expected} for an image "
            f"of shape {tuple(x.shape)}, got {pairs.dtype} {tuple(pairs.shape)}"
        )
    table = torch.tensor(NEIGHBOUR_PAIRS, dtype=torch.int64, device=x.device)  # 8×2
    chosen = table[pairs.to(x.device)]  # N×h×w×2
    cells = _cells(x)
    index = chosen.unsqueeze(1).expand(batch, channels, *chosen.shape[1:])  # N×C×h×w×2
    picked = cells.gather(-1, index)
    return picked[..., 0], picked[..., 1]


def neighbour_subsample(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Neighbor2Neighbor's random neighbour sub-sampler.

    Args:
        x: ``N×C×H×W`` float tensor, ``H, W >= 2`` (differentiable).
        generator: every draw comes from it (the same seed gives the same sub-images).

    Returns:
        ``(g1(x), g2(x), pairs)``: the two ``N×C×⌊H/2⌋×⌊W/2⌋`` sub-images and the drawn pair
        indices (``N×⌊H/2⌋×⌊W/2⌋``), to apply the same draw to another image with
        :func:`apply_neighbour_pairs`.
    """
    _check_image("neighbour sub-sampling", x)
    pairs = draw_neighbour_pairs(x.shape[0], x.shape[-2], x.shape[-1], generator, device=x.device)
    first, second = apply_neighbour_pairs(x, pairs)
    return first, second, pairs
