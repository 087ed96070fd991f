"""Running a denoiser on whole images: padding, tiling, geometric self-ensembles.

Every function here works on any callable with the ``Denoiser`` interface, ``model(x, cond) -> y``
(an adapter-wrapped backbone is just another such callable). Two optional attributes are read:

* ``size_multiple``: height and width the model needs to be divisible by (default 1);
* ``in_channels``: checked by :func:`denoise` when present.

Images are ``N×C×H×W`` floating tensors, nominally in ``[0, 1]``. Entries of ``cond`` that
:func:`noiseshift.types.spatial_condition_keys` recognises as per-pixel maps (a ``sigma`` map,
say) are padded, cropped and rotated together with the image; other entries pass through.

Typical use::

    y = denoise(model, noisy, {"sigma": sigma_map}, tile=256, overlap=32, ensemble=True)
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch

from .errors import InvalidInputError
from .types import spatial_condition_keys

__all__ = [
    "ModelFn",
    "RunFn",
    "crop_to",
    "denoise",
    "denoise_padded",
    "pad_to_multiple",
    "self_ensemble",
    "tile_weights",
    "tiled_denoise",
]

ModelFn = Callable[[torch.Tensor, Mapping[str, Any] | None], torch.Tensor]
"""A denoiser: ``model(noisy, cond) -> estimate`` (a ``Denoiser`` or anything shaped like one)."""

RunFn = Callable[[ModelFn, torch.Tensor, Mapping[str, Any] | None], torch.Tensor]
"""How to run a model on one image batch: :func:`denoise_padded` or a partial of
:func:`tiled_denoise`."""

PadMode = Literal["reflect", "replicate"]

_DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((k, flip) for flip in (False, True) for k in range(4))
"""The 8 elements of the dihedral group as ``(quarter turns, horizontal flip first)``."""


# -- padding --------------------------------------------------------------------------------


def _edge_indices(length: int, pad: int, mode: PadMode, device: torch.device) -> torch.Tensor:
    """Source indices along one axis that extend it by ``pad`` samples at the end.

    Reflect mirrors about the last sample without repeating it (``..., L-2, L-1, L-2, ...``),
    as ``torch.nn.functional.pad`` does; that needs ``pad <= length - 1``. Shorter axes fall
    back to replicating the last sample, because reflecting twice would make the padding
    depend on the *start* of the image, which is no better a guess than a constant edge.
    """
    index = torch.arange(length + pad, device=device)
    if mode == "reflect" and pad <= length - 1:
        return torch.where(index < length, index, 2 * (length - 1) - index)
    return index.clamp_(max=length - 1)


def _pad_bottom_right(x: torch.Tensor, pad_h: int, pad_w: int, mode: PadMode) -> torch.Tensor:
    """Pad the last two dimensions of ``x`` at the bottom and right.

    Index-based rather than ``torch.nn.functional.pad`` so that any rank ``>= 2`` and any dtype
    (e.g. integer masks in ``cond``) is handled, and the reflect-to-replicate fallback can be
    decided per axis.

    Args:
        x: ``...×H×W`` tensor.
        pad_h: rows to add below, ``>= 0``.
        pad_w: columns to add on the right, ``>= 0``.
        mode: ``"reflect"`` or ``"replicate"``.

    Returns:
        ``...×(H+pad_h)×(W+pad_w)`` tensor on ``x``'s device; ``x`` itself when nothing is added.
    """
    if pad_h == 0 and pad_w == 0:
        return x
    height, width = x.shape[-2:]
    rows = _edge_indices(height, pad_h, mode, x.device)
    cols = _edge_indices(width, pad_w, mode, x.device)
    return x[..., rows[:, None], cols[None, :]]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: PadMode = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right of an image so height and width are multiples of ``multiple``.

    With ``mode="reflect"`` an axis shorter than the padding it needs plus one (e.g. a 3-pixel
    high image padded to 8) is padded by replicating its last row / column instead, since
    reflection is undefined there; the decision is made per axis.

    Args:
        x: ``...×H×W`` tensor (``N×C×H×W`` images, or any per-pixel map).
        multiple: the required divisor, ``>= 1``.
        mode: ``"reflect"`` (default; avoids the artificial edge a constant pad creates) or
            ``"replicate"``.

    Returns:
        The padded ``...×H'×W'`` tensor (``x`` itself when no padding is needed) and the
        padding amounts ``(pad_h, pad_w)`` with ``H' = H + pad_h``, ``W' = W + pad_w``.

    Raises:
        InvalidInputError: ``multiple < 1``, an unknown ``mode``, or ``x`` with fewer than two
            dimensions or an empty spatial axis.
    """
    multiple = _positive_int(multiple, "multiple")
    if mode not in ("reflect", "replicate"):
        raise InvalidInputError(f"pad mode must be 'reflect' or 'replicate', got {mode!r}")
    if x.dim() < 2 or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise InvalidInputError(f"cannot pad a tensor of shape {tuple(x.shape)}: need non-empty ...×H×W")
    height, width = x.shape[-2:]
    pad_h = _round_up(height, multiple) - height
    pad_w = _round_up(width, multiple) - width
    return _pad_bottom_right(x, pad_h, pad_w, mode), (pad_h, pad_w)


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The top-left ``height×width`` window of ``x`` (undoes :func:`pad_to_multiple`).

    Args:
        x: ``...×H'×W'`` tensor with ``H' >= height`` and ``W' >= width``.
        height: rows to keep.
        width: columns to keep.

    Returns:
        A ``...×height×width`` view of ``x`` (no copy).

    Raises:
        InvalidInputError: the requested size exceeds ``x``'s.
    """
    if height > x.shape[-2] or width > x.shape[-1] or height < 0 or width < 0:
        raise InvalidInputError(f"cannot crop shape {tuple(x.shape)} to {height}×{width}")
    return x[..., :height, :width]


def _pad_cond(
    cond: Mapping[str, Any] | None,
    height: int,
    width: int,
    pad_h: int,
    pad_w: int,
    mode: PadMode = "reflect",
) -> Mapping[str, Any] | None:
    """Pad the per-pixel maps in ``cond`` exactly as the ``height×width`` image was padded.

    Args:
        cond: the conditions, or ``None``.
        height: the unpadded image height ``H``, used to recognise per-pixel maps.
        width: the unpadded image width ``W``.
        pad_h: rows added at the bottom.
        pad_w: columns added on the right.
        mode: the padding mode used for the image.

    Returns:
        ``cond`` itself when nothing needs padding, else a new dict with each ``...×H×W`` map
        padded to ``...×(H+pad_h)×(W+pad_w)`` and all other entries unchanged.
    """
    keys = spatial_condition_keys(cond, height, width)
    if cond is None or not keys or (pad_h == 0 and pad_w == 0):
        return cond
    padded = dict(cond)
    for key in keys:
        padded[key] = _pad_bottom_right(cond[key], pad_h, pad_w, mode)
    return padded


# -- plain and padded runs -----------------------------------------------------------------


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return value


def _size_multiple(model: ModelFn) -> int:
    """The model's ``size_multiple`` attribute (1 when absent), validated."""
    multiple = getattr(model, "size_multiple", 1)
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise InvalidInputError(
            f"{type(model).__name__}.size_multiple must be a positive integer, got {multiple!r}"
        )
    return multiple


def _require_image_shape(x: Any) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.numel() == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidInputError(f"expected a non-empty N×C×H×W tensor, got {shape}")


def _check_output(output: Any, batch: int, height: int, width: int, model: ModelFn) -> torch.Tensor:
    """Fail with the shapes involved when a model breaks the ``N×C×H×W`` in/out contract."""
    if (
        not isinstance(output, torch.Tensor)
        or output.dim() != 4
        or output.shape[0] != batch
        or tuple(output.shape[-2:]) != (height, width)
    ):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        # Every deliberate noiseshift error derives from NoiseshiftError (the CLI reports those
        # as one line), so a broken shape contract is an InvalidInputError too.
        raise InvalidInputError(
            f"{type(model).__name__} returned {shape} for a {batch}×C×{height}×{width} input; "
            "a denoiser must return N×C_out×H×W with the input's N, H and W"
        )
    return output


def denoise_padded(
    model: ModelFn, x: torch.Tensor, cond: Mapping[str, Any] | None = None
) -> torch.Tensor:
    """Run ``model`` on the whole image, padding to ``model.size_multiple`` only when needed.

    Args:
        model: a denoiser; ``size_multiple`` (default 1) is read from it.
        x: ``N×C×H×W`` image batch, nominally in ``[0, 1]``.
        cond: conditions; per-pixel ``...×H×W`` maps are padded together with ``x``.

    Returns:
        ``N×C_out×H×W`` model output, cropped back to the input size (a view when padding was
        needed).

    Raises:
        InvalidInputError: ``x`` is not a non-empty 4-D tensor, ``model.size_multiple`` is not
            a positive integer, or the model returns a tensor that is not ``N×C_out×H'×W'``.
    """
    _require_image_shape(x)
    multiple = _size_multiple(model)
    height, width = x.shape[-2:]
    if height % multiple == 0 and width % multiple == 0:
        return _check_output(model(x, cond), x.shape[0], height, width, model)
    padded, (pad_h, pad_w) = pad_to_multiple(x, multiple)
    padded_cond = _pad_cond(cond, height, width, pad_h, pad_w)
    output = model(padded, padded_cond)
    _check_output(output, x.shape[0], height + pad_h, width + pad_w, model)
    return crop_to(output, height, width)


# -- tiling -----------------------------------------------------------------------------------


def _validate_tiling(
    tile: int, overlap: int, batch_size: int, margin: int | None, multiple: int
) -> tuple[int, int]:
    """Check the tiling options; returns ``(tile rounded down to the multiple, margin)``."""
    tile = _positive_int(tile, "tile")
    _positive_int(batch_size, "batch_size")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise InvalidInputError(f"overlap must be a non-negative integer, got {overlap!r}")
    rounded = tile // multiple * multiple
    if rounded == 0:
        raise InvalidInputError(
            f"tile={tile} is smaller than the model's size_multiple={multiple}; "
            f"use tile >= {multiple} (tiles are rounded down to a multiple of it)"
        )
    if rounded <= 2 * overlap:
        rounding = ""
        if rounded != tile:
            rounding = f" (rounded down to {rounded}, a multiple of size_multiple={multiple})"
        raise InvalidInputError(
            f"tile={tile}{rounding} must exceed 2*overlap={2 * overlap}, so that only "
            f"neighbouring tiles overlap; raise tile or use overlap <= {(rounded - 1) // 2}"
        )
    if margin is None:
        margin = overlap // 4
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise InvalidInputError(f"margin must be a non-negative integer, got {margin!r}")
    if margin > 0 and 2 * margin >= overlap:
        raise InvalidInputError(
            f"margin={margin} must be less than overlap/2={overlap / 2:g}, so that the blend "
            f"ramp between neighbouring tiles is not empty; use margin <= {max(overlap - 1, 0) // 2}"
        )
    return rounded, margin


def _tile_starts(length: int, size: int, stride: int) -> list[int]:
    """Tile offsets along one axis: every ``stride``, the last shifted to end at ``length``."""
    if length <= size:
        return [0]
    count = math.ceil((length - size) / stride) + 1
    return [min(i * stride, length - size) for i in range(count)]


def _ramp(length: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A raised-cosine ramp strictly inside ``(0, 1)``, rising over ``length`` samples.

    Sampling at half-integer positions keeps every value positive and makes the ramp and its
    reverse sum to exactly 1 (``sin² + cos²``), so two tiles overlapping by exactly the ramp
    already form a partition of unity; the final normalisation only matters where the last
    tile was shifted to end at the border.
    """
    position = (torch.arange(length, dtype=torch.float64, device=device) + 0.5) / length
    return torch.sin(position * (math.pi / 2)).square().to(dtype)


def _axis_window(
    start: int, size: int, length: int, overlap: int, margin: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Blend weights of one tile along one axis, shape ``(size,)``.

    At a side facing another tile the window is 0 over ``margin`` samples (there the tile's
    output is corrupted by the zero padding its receptive field saw), then rises over
    ``overlap - 2 * margin`` samples to 1. A side on the image border gets full weight: the
    untiled model sees the same border there, and a ramp would leave border pixels weightless.
    """
    window = torch.ones(size, dtype=dtype, device=device)
    ramp_length = overlap - 2 * margin
    if ramp_length <= 0:
        return window
    ramp = _ramp(ramp_length, dtype, device)
    if start > 0:
        window[:margin] = 0
        window[margin : margin + ramp_length] = ramp
    if start + size < length:
        window[size - margin :] = 0
        window[size - margin - ramp_length : size - margin] *= ramp.flip(0)
    return window


def _axis_layout(
    length: int, size: int, overlap: int, margin: int, dtype: torch.dtype, device: torch.device
) -> tuple[list[int], dict[int, torch.Tensor], torch.Tensor]:
    """Tile starts, each start's window, and the windows' sum over the axis (``(length,)``)."""
    starts = _tile_starts(length, size, size - overlap)
    windows = {start: _axis_window(start, size, length, overlap, margin, dtype, device) for start in starts}
    total = torch.zeros(length, dtype=dtype, device=device)
    for start in starts:
        total[start : start + size] += windows[start]
    return starts, windows, total


def tile_weights(
    height: int,
    width: int,
    *,
    tile: int,
    overlap: int = 32,
    margin: int | None = None,
    size_multiple: int = 1,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """The accumulated blend weight per pixel that :func:`tiled_denoise` normalises by.

    Exposed for inspection and tests: it is ``> 0`` everywhere for every valid option set.
    Images with an axis shorter than the tile are laid out on that axis rounded up to
    ``size_multiple``, as :func:`tiled_denoise` does.

    Args:
        height: image height ``H``.
        width: image width ``W``.
        tile: tile size, rounded down to a multiple of ``size_multiple``.
        overlap: overlap between neighbouring tiles in pixels.
        margin: pixels at a tile's inner edges that get zero weight (default ``overlap // 4``).
        size_multiple: the model's ``size_multiple``.
        dtype: floating dtype of the result.
        device: device of the result (default CPU).

    Returns:
        ``H×W`` tensor of summed tile windows, ``>= 1`` along the image border.

    Raises:
        InvalidInputError: invalid tiling options (see :func:`tiled_denoise`).
    """
    _positive_int(height, "height")
    _positive_int(width, "width")
    multiple = _positive_int(size_multiple, "size_multiple")
    tile, margin = _validate_tiling(tile, overlap, 1, margin, multiple)
    device = torch.device("cpu") if device is None else torch.device(device)
    height_laid = height if height >= tile else _round_up(height, multiple)
    width_laid = width if width >= tile else _round_up(width, multiple)
    _, _, rows = _axis_layout(height_laid, min(tile, height_laid), overlap, margin, dtype, device)
    _, _, cols = _axis_layout(width_laid, min(tile, width_laid), overlap, margin, dtype, device)
    return (rows[:, None] * cols[None, :])[:height, :width]


def _check_map_batch(value: torch.Tensor, key: str, batch: int) -> None:
    if value.shape[0] not in (1, batch):
        raise InvalidInputError(
            f"cond[{key!r}] has shape {tuple(value.shape)}: a per-pixel map needs a leading "
            f"dimension of 1 or N={batch}"
        )


def _tile_cond(
    cond: Mapping[str, Any] | None,
    spatial: Sequence[str],
    batch: int,
    chunk: Sequence[tuple[int, int, int]],
    tile_h: int,
    tile_w: int,
) -> Mapping[str, Any] | None:
    """The conditions for one batch of tiles ``(image, top, left)``.

    Per-pixel maps are cropped per tile and stacked like the tiles. Tensors whose first
    dimension is ``N`` and lists of length ``N`` are per-image values: they are gathered by
    each tile's image index, so their length matches the tile batch as a backbone expects.
    Scalars, strings, tuples (e.g. ``nlf=(a, b)``) and all else pass through unchanged.
    """
    if cond is None:
        return None
    images = [image for image, _, _ in chunk]
    tiled: dict[str, Any] = {}
    for key, value in cond.items():
        if key in spatial:
            shared = value.shape[0] != batch  # a 1×...×H×W map applies to every image
            tiled[key] = torch.stack(
                [
                    value[0 if shared else image, ..., top : top + tile_h, left : left + tile_w]
                    for image, top, left in chunk
                ]
            )
        elif isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == batch:
            tiled[key] = value[torch.tensor(images, device=value.device)]
        elif isinstance(value, list) and len(value) == batch:
            tiled[key] = [value[image] for image in images]
        else:
            tiled[key] = value
    return tiled


def tiled_denoise(
    model: ModelFn,
    x: torch.Tensor,
    cond: Mapping[str, Any] | None = None,
    *,
    tile: int,
    overlap: int = 32,
    batch_size: int = 4,
    margin: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    no_grad: bool = True,
) -> torch.Tensor:
    """Denoise a large image tile by tile with bounded memory, blending overlapping tiles.

    Tiles are ``tile×tile`` (``tile`` rounded down to a multiple of ``model.size_multiple``),
    placed every ``tile - overlap`` pixels; the last row / column of tiles is shifted to end
    exactly at the border, so no padding is needed. An axis shorter than ``tile`` is padded to
    a multiple of ``size_multiple`` and covered by one tile; an image shorter than ``tile`` on
    both axes is simply run through :func:`denoise_padded`.

    Tile outputs are blended by a separable window: along each axis a tile's window is 0 for
    ``margin`` pixels at edges shared with other tiles, rises as a raised cosine over the
    remaining ``overlap - 2*margin`` pixels and is 1 elsewhere, including along the image border
    (which the untiled model sees identically). The accumulated output is divided by the
    accumulated weight (:func:`tile_weights`), which is positive everywhere. If ``margin`` is
    at least the model's receptive-field radius the result equals an untiled run up to float
    rounding (for models without global operations such as image-wide normalisation).

    Memory is the ``N×C_out×H×W`` output plus one batch of ``batch_size`` tiles through the
    network; the weight map is kept as two vectors (``H`` and ``W``) since the window and the
    tile grid are both separable. Tiles of all ``N`` images are streamed in one sequence.

    Args:
        model: a denoiser; ``size_multiple`` (default 1) is read from it.
        x: ``N×C×H×W`` image batch, nominally in ``[0, 1]``.
        cond: conditions. Per-pixel ``N×...×H×W`` (or ``1×...×H×W``) maps are cropped with each
            tile; per-image tensors with first dimension ``N`` and lists of length ``N`` are
            gathered per tile; other values pass through unchanged.
        tile: tile size in pixels, ``>= size_multiple`` and, once rounded, ``> 2*overlap``.
        overlap: pixels shared by neighbouring tiles, ``>= 0``.
        batch_size: tiles per forward pass, ``>= 1``.
        margin: pixels at shared tile edges ignored entirely, ``< overlap/2`` (or 0); default
            ``overlap // 4``. Set it to the network's receptive-field radius for exact results.
        progress: called as ``progress(tiles_done, tiles_total)`` after every batch (once with
            ``(1, 1)`` when the image fits in one tile).
        no_grad: run under ``torch.no_grad()``. Not ``torch.inference_mode()``: test-time
            adapters re-enable autograd inside their forward with ``torch.enable_grad()``, which
            works under ``no_grad`` but fails on inference-mode tensors (they cannot be saved
            for backward).

    Returns:
        ``N×C_out×H×W`` blended output on the model output's device and dtype.

    Raises:
        InvalidInputError: ``x`` is not a non-empty 4-D tensor; invalid ``tile``, ``overlap``,
            ``batch_size`` or ``margin``; a ``size_multiple`` that is not a positive integer; or
            a per-pixel map whose leading dimension is neither 1 nor ``N``; or the model returns
            a tensor of the wrong shape.
    """
    _require_image_shape(x)
    multiple = _size_multiple(model)
    tile, margin = _validate_tiling(tile, overlap, batch_size, margin, multiple)
    batch, _, height, width = x.shape
    spatial = spatial_condition_keys(cond, height, width)
    for key in spatial:
        _check_map_batch(cond[key], key, batch)  # type: ignore[index]

    context = torch.no_grad() if no_grad else contextlib.nullcontext()
    with context:
        if height <= tile and width <= tile:
            whole = denoise_padded(model, x, cond)
            if progress is not None:
                progress(1, 1)
            return whole

        # Only an axis shorter than the tile needs padding; the long axis is covered exactly
        # by shifting its last tile.
        pad_h = _round_up(height, multiple) - height if height < tile else 0
        pad_w = _round_up(width, multiple) - width if width < tile else 0
        padded = _pad_bottom_right(x, pad_h, pad_w, "reflect")
        padded_cond = _pad_cond(cond, height, width, pad_h, pad_w)
        full_h, full_w = height + pad_h, width + pad_w
        tile_h, tile_w = min(tile, full_h), min(tile, full_w)

        weight_dtype = x.dtype if x.is_floating_point() else torch.float32
        rows, row_windows, row_total = _axis_layout(full_h, tile_h, overlap, margin, weight_dtype, x.device)
        cols, col_windows, col_total = _axis_layout(full_w, tile_w, overlap, margin, weight_dtype, x.device)
        tiles = [(image, top, left) for image in range(batch) for top in rows for left in cols]

        output: torch.Tensor | None = None
        for first in range(0, len(tiles), batch_size):
            chunk = tiles[first : first + batch_size]
            inputs = torch.stack(
                [padded[image, :, top : top + tile_h, left : left + tile_w] for image, top, left in chunk]
            )
            result = model(inputs, _tile_cond(padded_cond, spatial, batch, chunk, tile_h, tile_w))
            _check_output(result, len(chunk), tile_h, tile_w, model)
            if output is None:
                output = result.new_zeros((batch, result.shape[1], full_h, full_w))
            weights = torch.stack(
                [row_windows[top][:, None] * col_windows[left][None, :] for _, top, left in chunk]
            ).to(result)
            result = result * weights[:, None]
            for tile_result, (image, top, left) in zip(result, chunk):
                output[image, :, top : top + tile_h, left : left + tile_w] += tile_result
            del inputs, result, weights  # free the batch before the next forward allocates its own
            if progress is not None:
                progress(first + len(chunk), len(tiles))

        assert output is not None  # at least one tile always exists
        # Dividing by the two axis sums in turn avoids materialising the H×W weight map.
        output /= row_total.to(output)[:, None]
        output /= col_total.to(output)[None, :]
        return crop_to(output, height, width)


# -- self-ensemble --------------------------------------------------------------------------


def _dihedral(x: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    """Apply (optional horizontal flip, then ``turns`` counter-clockwise quarter turns)."""
    if flip:
        x = x.flip(-1)
    # rot90 returns a strided view for odd turns; backbones that ``.view()`` their input need
    # it contiguous.
    return torch.rot90(x, turns, dims=(-2, -1)).contiguous() if turns else x


def _dihedral_inverse(x: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    """Undo :func:`_dihedral` with the same arguments."""
    if turns:
        x = torch.rot90(x, -turns, dims=(-2, -1))
    return x.flip(-1) if flip else x


def self_ensemble(
    model: ModelFn,
    x: torch.Tensor,
    cond: Mapping[str, Any] | None = None,
    *,
    run: RunFn | None = None,
) -> torch.Tensor:
    """×8 geometric self-ensemble: average the model over the 8 rotations and flips of ``x``.

    Each of the 8 dihedral transforms (0/90/180/270 degree rotations, with and without a
    horizontal flip) is applied to ``x`` and to the per-pixel maps in ``cond``, run through
    ``run``, transformed back and averaged. Odd quarter turns swap ``H`` and ``W``, so padding
    must be recomputed per transform; ``run`` does that.

    Args:
        model: a denoiser.
        x: ``N×C×H×W`` image batch, nominally in ``[0, 1]``.
        cond: conditions; per-pixel ``...×H×W`` maps are transformed with ``x``.
        run: ``run(model, x, cond) -> y`` for one transformed batch; default
            :func:`denoise_padded`. Pass ``functools.partial(tiled_denoise, tile=...)`` to
            combine tiling with ensembling.

    Returns:
        ``N×C_out×H×W`` mean of the 8 back-transformed outputs.
    """
    _require_image_shape(x)
    run = denoise_padded if run is None else run
    height, width = x.shape[-2:]
    spatial = spatial_condition_keys(cond, height, width)
    total: torch.Tensor | None = None
    for turns, flip in _DIHEDRAL:
        transformed_cond = cond
        if cond is not None and spatial:
            transformed_cond = {
                key: _dihedral(value, turns, flip) if key in spatial else value
                for key, value in cond.items()
            }
        output = _dihedral_inverse(run(model, _dihedral(x, turns, flip), transformed_cond), turns, flip)
        # Clone the first output: it may alias ``x`` (an identity model) and is updated in place.
        total = output.clone() if total is None else total.add_(output)
        del output
    assert total is not None
    return total.div_(len(_DIHEDRAL))


# -- entry point ----------------------------------------------------------------------------


def _validate_image(model: ModelFn, x: Any) -> None:
    """Raise ``InvalidInputError`` naming what is wrong with a model input."""
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"expected an N×C×H×W tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise InvalidInputError(f"expected an N×C×H×W tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InvalidInputError(f"expected a float tensor (float32 in [0, 1]), got dtype {x.dtype}")
    if x.numel() == 0:
        raise InvalidInputError(f"expected a non-empty image batch, got shape {tuple(x.shape)}")
    in_channels = getattr(model, "in_channels", None)
    if isinstance(in_channels, int) and x.shape[1] != in_channels:
        raise InvalidInputError(
            f"{type(model).__name__} expects {in_channels} input channels, got {x.shape[1]} "
            f"(shape {tuple(x.shape)})"
        )
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise InvalidInputError(f"input holds {bad} NaN/inf value(s) (shape {tuple(x.shape)})")


def _validate_cond(cond: Any, x: torch.Tensor) -> None:
    if cond is None:
        return
    if not isinstance(cond, Mapping):
        raise InvalidInputError(
            f"cond must be a mapping of condition name to value, got {type(cond).__name__}"
        )
    batch, _, height, width = x.shape
    for key in spatial_condition_keys(cond, height, width):
        _check_map_batch(cond[key], key, batch)
    for key, value in cond.items():
        if (
            isinstance(value, torch.Tensor)
            and value.is_floating_point()
            and not bool(torch.isfinite(value).all())
        ):
            raise InvalidInputError(f"cond[{key!r}] holds NaN/inf values")


def _resolve_device(device: str | torch.device | None, x: torch.Tensor) -> torch.device:
    if device is None:
        return x.device
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InvalidInputError(f"invalid device {device!r}: {error}") from error


def _same_device(a: torch.device, b: torch.device) -> bool:
    # ``cuda`` without an index means the current device; do not reject it against ``cuda:0``.
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def _check_model_device(model: ModelFn, device: torch.device) -> None:
    """Fail early, with a fix, when the model's weights live elsewhere than its input will."""
    if not isinstance(model, torch.nn.Module):
        return
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    if tensor is not None and not _same_device(tensor.device, device):
        raise InvalidInputError(
            f"{type(model).__name__} is on {tensor.device} but the input runs on {device}; "
            f"call model.to({str(device)!r}) first or pass device={str(tensor.device)!r}"
        )


class _EnsembleProgress:
    """Turn per-pass ``progress(done, total)`` reports into one count over all passes."""

    def __init__(self, progress: Callable[[int, int], None], passes: int) -> None:
        self._progress = progress
        self._passes = passes
        self._finished = 0

    def __call__(self, done: int, total: int) -> None:
        self._progress(self._finished * total + done, self._passes * total)
        if done == total:
            self._finished += 1


def _counting_run(progress: Callable[[int, int], None], passes: int) -> RunFn:
    """:func:`denoise_padded` that reports ``progress(pass, passes)`` after each pass."""
    completed = 0

    def run(model: ModelFn, x: torch.Tensor, cond: Mapping[str, Any] | None) -> torch.Tensor:
        nonlocal completed
        output = denoise_padded(model, x, cond)
        completed += 1
        progress(completed, passes)
        return output

    return run


def denoise(
    model: ModelFn,
    x: torch.Tensor,
    cond: Mapping[str, Any] | None = None,
    *,
    tile: int | None = None,
    overlap: int = 32,
    batch_size: int = 4,
    margin: int | None = None,
    ensemble: bool = False,
    device: str | torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Denoise an image batch: validate, pad or tile, optionally self-ensemble.

    The single entry point for callers such as the CLI. Runs under ``torch.no_grad()`` (see
    :func:`tiled_denoise` for why not ``inference_mode``). The model is not moved: it must
    already be on ``device``.

    Args:
        model: a denoiser (``in_channels`` and ``size_multiple`` are read when present).
        x: ``N×C×H×W`` float image batch, nominally float32 in ``[0, 1]``; must be finite.
        cond: conditions; tensor values are moved to ``device`` with ``x`` (top level only).
        tile: tile size for :func:`tiled_denoise`; ``None`` runs the whole image at once.
        overlap: tile overlap in pixels (only with ``tile``).
        batch_size: tiles per forward pass (only with ``tile``).
        margin: pixels at each inner tile edge that get zero blending weight (default
            ``overlap // 4``); tiled output equals untiled output when it is at least the
            network's receptive-field radius (see :func:`tiled_denoise`).
        ensemble: average over the ×8 geometric self-ensemble (8× slower).
        device: where to run; default ``x``'s device.
        progress: called as ``progress(done, total)``: per tile batch when tiling (counted over
            all ensemble passes), else once per pass.

    Returns:
        ``N×C_out×H×W`` estimate on ``x``'s original device (not clipped).

    Raises:
        InvalidInputError: ``x`` is not a finite, non-empty, floating ``N×C×H×W`` tensor with
            the model's ``in_channels``; ``cond`` has a non-finite tensor or a misshapen map;
            invalid tiling options or device; or the model's weights are on another device.
    """
    _validate_image(model, x)
    _validate_cond(cond, x)
    target = _resolve_device(device, x)
    _check_model_device(model, target)

    inputs = x.to(target)
    moved_cond = None if cond is None else {
        key: value.to(target) if isinstance(value, torch.Tensor) else value for key, value in cond.items()
    }

    passes = len(_DIHEDRAL) if ensemble else 1
    run: RunFn
    if tile is not None:
        # Validate up front, not after the first ensemble pass has already run.
        _validate_tiling(tile, overlap, batch_size, margin, _size_multiple(model))
        if progress is not None and ensemble:
            progress = _EnsembleProgress(progress, passes)
        run = functools.partial(
            tiled_denoise, tile=tile, overlap=overlap, batch_size=batch_size, margin=margin, progress=progress
        )
    elif progress is not None:
        run = _counting_run(progress, passes)
    else:
        run = denoise_padded

    with torch.no_grad():
        if ensemble:
            output = self_ensemble(model, inputs, moved_cond, run=run)
        else:
            output = run(model, inputs, moved_cond)
    return output.to(x.device)
