"""Restormer: an efficient transformer for high-resolution image restoration.

Reference:
    S. W. Zamir, A. Arora, S. Khan, M. Hayat, F. S. Khan and M.-H. Yang, "Restormer: Efficient
    Transformer for High-Resolution Image Restoration", CVPR 2022.
    https://arxiv.org/abs/2111.09881 — official code: https://github.com/swz30/Restormer

A checkpoint-compatible re-implementation: module and parameter names, shapes and the forward
computation are those of the authors' model, so their released ``{'params': state_dict}``
files (``real_denoising.pth``, ``gaussian_color_denoising_blind.pth``, ...) load strictly with
``noiseshift.api.load_into(model, load_state_dict(path))``. The computation is reorganised for
speed without changing its result (see "Implementation notes" below).

Layout (``dim = C``, four levels, every stage a stack of transformer blocks)::

    noisy ─► patch_embed: conv3×3 (in → C)
    H     encoder_level1 (C,  heads[0]) ──────────────────skip────────────┐
          down1_2: conv3×3 C → C/2, PixelUnshuffle(2)                     │
    H/2   encoder_level2 (2C, heads[1]) ───────────skip──────────┐        │
          down2_3                                                │        │
    H/4   encoder_level3 (4C, heads[2]) ────skip────┐            │        │
          down3_4                                   │            │        │
    H/8   latent (8C, heads[3])                     │            │        │
          up4_3: conv3×3 8C → 16C, PixelShuffle(2) ─┴► cat, reduce_chan_level3 (1×1, 8C → 4C)
    H/4   decoder_level3 (4C, heads[2]) ─► up3_2 ───────────────┴► cat, reduce_chan_level2 (4C → 2C)
    H/2   decoder_level2 (2C, heads[1]) ─► up2_1 ────────────────────────┴► cat (2C, no reduction)
    H     decoder_level1 (2C, heads[0]) ─► refinement (2C, heads[0])
          ─► output: conv3×3 (2C → out) ─► + noisy (global residual)

A transformer block is ``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))``:

* LN: layer normalisation over the channels of each pixel (biased variance, eps 1e-5).
  ``BiasFree`` divides the *uncentred* input by the centred standard deviation and scales;
  ``WithBias`` is the standard layer norm with scale and shift.
* MDTA (multi-Dconv head transposed attention): 1×1 conv to q, k, v (3C), depthwise 3×3 conv;
  per head, q and k (``C/heads × HW``) are L2-normalised along ``HW`` and the ``C/heads ×
  C/heads`` attention ``softmax(q·kᵀ · temperature)`` mixes the channels of v; 1×1 projection.
  The attention is over *channels*, so its cost is linear in the number of pixels.
* GDFN (gated-Dconv feed-forward): 1×1 conv C → 2·hidden, depthwise 3×3, split in two,
  ``GELU(a) · b``, 1×1 conv hidden → C, with ``hidden = int(C · ffn_expansion_factor)``.

Implementation notes (same outputs as the official code up to float rounding, ~1e-6; the
plugin's tests compare against a reshape-based re-statement of the official computation):

* On CPUs the batch runs channels-last (N×H×W×C storage) inside ``forward``: the depthwise
  convolutions, which dominate CPU time in the official N×C×H×W layout, run ~2× faster, and
  peak memory drops by about a quarter. Parameters keep their usual layout (1×1 and depthwise
  kernels are the same bytes in both layouts). ``channels_last_on_cpu = False`` turns it off.
* Layer norm works on the feature map directly instead of reshaping to ``N×HW×C`` tokens and
  back around every norm, and computes the variance in two plain passes (mean, then mean
  squared deviation) rather than with ``torch.var``'s slower Welford update; in channels-last
  layout the ``WithBias`` norm is one fused ``F.layer_norm`` on a zero-copy view.
* MDTA computes the raw Gram matrix ``q·kᵀ`` and divides it by the outer product of the row
  norms, rather than materialising normalised copies of q and k (two ``C×HW`` tensors per
  block); ``F.normalize``'s ``1e-12`` norm floor is kept. q, k and v are strided views of the
  convolution output, never copies.
* Residual additions and the GDFN gate reuse freshly produced buffers (in place) where autograd
  allows it, which lowers peak memory at inference.

Measured speed and memory: ``tools/perf/restormer_speed.py`` and ``docs/backbones.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from noiseshift.api import Conditions, Denoiser, InvalidInputError

__all__ = ["LAYER_NORM_TYPES", "PRESETS", "Restormer", "count_parameters"]

LAYER_NORM_TYPES: tuple[str, ...] = ("BiasFree", "WithBias")
"""The official names of the two layer-norm variants (``LayerNorm_type`` in the authors' code)."""

_EPS = 1e-5
"""Layer-norm epsilon of the official code."""

_NORM_FLOOR = 1e-12
"""``torch.nn.functional.normalize``'s default floor on the norm, used by the official MDTA."""

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's model (all released checkpoints): 26,111,668 parameters with BiasFree norms.
    "paper": {
        "dim": 48,
        "num_blocks": [4, 6, 6, 8],
        "num_refinement_blocks": 4,
        "heads": [1, 2, 4, 8],
        "ffn_expansion_factor": 2.66,
    },
    # Half the width, half the depth: 3,809,486 parameters; trains on a CPU on small patches.
    "small": {
        "dim": 24,
        "num_blocks": [2, 3, 3, 4],
        "num_refinement_blocks": 2,
        "heads": [1, 2, 4, 8],
        "ffn_expansion_factor": 2.66,
    },
    # One block per stage at width 16: 799,747 parameters; for smoke tests, demos and quick
    # CPU fine-tuning experiments.
    "tiny": {
        "dim": 16,
        "num_blocks": [1, 1, 1, 1],
        "num_refinement_blocks": 1,
        "heads": [1, 2, 4, 8],
        "ffn_expansion_factor": 2.66,
    },
}
"""Named size presets. A preset fills the size arguments the caller leaves as ``None``."""

def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module``."""
    return sum(parameter.numel() for parameter in module.parameters())


# -- building blocks ----------------------------------------------------------------------


class _NormAffine(nn.Module):
    """Holds a layer norm's affine parameters under the official names (``body.weight/bias``)."""

    def __init__(self, channels: int, with_bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if with_bias else None


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channels of every pixel of an ``N×C×H×W`` tensor.

    ``BiasFree``: ``x / sqrt(var_c(x) + 1e-5) · weight`` (numerator not centred);
    ``WithBias``: ``(x − mean_c(x)) / sqrt(var_c(x) + 1e-5) · weight + bias``; ``var_c`` is the
    biased variance over channels. Parameters live in ``body`` so the state-dict keys are the
    official ``normX.body.weight`` / ``normX.body.bias``.

    Args:
        channels: ``C``.
        layer_norm_type: ``"BiasFree"`` or ``"WithBias"``.
    """

    def __init__(self, channels: int, layer_norm_type: str) -> None:
        super().__init__()
        self.with_bias = layer_norm_type == "WithBias"
        self.body = _NormAffine(channels, self.with_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (``N×C×H×W``, any memory format); returns the same shape and format."""
        weight, bias = self.body.weight, self.body.bias
        channels = x.shape[1]
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        if channels_last:
            # The N×H×W×C view is contiguous: reduce over the innermost axis, no copy.
            x = x.permute(0, 2, 3, 1)
            if bias is not None:
                return F.layer_norm(x, (channels,), weight, bias, _EPS).permute(0, 3, 1, 2)
            axis = -1
        else:
            axis = 1
            weight = weight.view(1, channels, 1, 1)
            bias = None if bias is None else bias.view(1, channels, 1, 1)
        # Two passes (mean, then mean squared deviation) instead of torch.var's Welford
        # update: several times faster on CPUs, equally accurate for these short reductions.
        centred = x - x.mean(dim=axis, keepdim=True)
        scale = (centred * centred).mean(dim=axis, keepdim=True).add_(_EPS).rsqrt_()
        if bias is None:
            out = (x * weight).mul_(scale)
        else:
            # ``centred`` is saved for the backward of its square: reuse it only without autograd.
            normalised = centred * scale if torch.is_grad_enabled() else centred.mul_(scale)
            out = torch.addcmul(bias, normalised, weight)
        return out.permute(0, 3, 1, 2) if channels_last else out


class MDTA(nn.Module):
    """Multi-Dconv head transposed attention: attention across channels, per head.

    Args:
        channels: ``C`` (divisible by ``heads``).
        heads: number of heads; each attends over ``C/heads`` channels.
        bias: biases in the convolutions (``False`` in every released model).
    """

    def __init__(self, channels: int, heads: int, bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, channels * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(
            channels * 3, channels * 3, kernel_size=3, padding=1, groups=channels * 3, bias=bias
        )
        self.project_out = nn.Conv2d(channels, channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N×C×H×W`` → ``N×C×H×W``."""
        batch, channels, height, width = x.shape
        heads, per_head, pixels = self.heads, channels // self.heads, height * width
        qkv = self.qkv_dwconv(self.qkv(x))
        channels_last = qkv.is_contiguous(memory_format=torch.channels_last) and not qkv.is_contiguous()
        if channels_last:
            # N×HW×(3·heads·C/heads) storage: take q, k, v as strided views (the matrix
            # products accept them without copies) and reduce the norms over the outer axis.
            tokens = qkv.permute(0, 2, 3, 1).reshape(batch, pixels, 3, heads, per_head)
            norms = torch.linalg.vector_norm(tokens[:, :, :2], dim=1)  # N × 2 × heads × C/heads
            q, k, v = (tokens[:, :, i].permute(0, 2, 3, 1) for i in range(3))  # N×heads×C/heads×HW
        else:
            split = qkv.reshape(batch, 3, heads, per_head, pixels)
            q, k, v = split.unbind(1)
            norms = torch.linalg.vector_norm(split[:, :2], dim=-1)
        # cos(q_i, k_j) = (q·kᵀ)_ij / (|q_i| |k_j|): the same as normalising q and k first (with
        # F.normalize's norm floor), without writing two normalised C×HW copies.
        norms = norms.clamp_min(_NORM_FLOOR)
        attn = q @ k.transpose(-2, -1)
        attn = attn / (norms[:, 0, :, :, None] * norms[:, 1, :, None, :]) * self.temperature
        attn = attn.softmax(dim=-1)
        if channels_last and heads == 1:
            # One head: (vᵀ·attnᵀ) is N×HW×C, which is channels-last storage already.
            out = (v.transpose(-2, -1) @ attn.transpose(-2, -1)).view(batch, height, width, channels)
            return self.project_out(out.permute(0, 3, 1, 2))
        out = (attn @ v).reshape(batch, channels, height, width)
        if channels_last:
            # Keep the layout of the input, or every later layer would run in the slower NCHW.
            out = out.contiguous(memory_format=torch.channels_last)
        return self.project_out(out)


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network.

    Args:
        channels: ``C``.
        expansion: hidden width factor; ``hidden = int(C · expansion)``.
        bias: biases in the convolutions.
    """

    def __init__(self, channels: int, expansion: float, bias: bool) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.project_in = nn.Conv2d(channels, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N×C×H×W`` → ``N×C×H×W``."""
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        gated = F.gelu(gate)
        # The product's backward needs GELU's output unchanged; only without autograd can the
        # GELU buffer hold the product.
        gated = gated.mul_(value) if not torch.is_grad_enabled() else gated * value
        return self.project_out(gated)


class TransformerBlock(nn.Module):
    """``x + MDTA(LN(x))``, then ``x + GDFN(LN(x))``; submodules ``norm1 attn norm2 ffn``."""

    def __init__(self, channels: int, heads: int, expansion: float, bias: bool, layer_norm_type: str) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(channels, layer_norm_type)
        self.attn = MDTA(channels, heads, bias)
        self.norm2 = ChannelLayerNorm(channels, layer_norm_type)
        self.ffn = GDFN(channels, expansion, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N×C×H×W`` → ``N×C×H×W``."""
        # Adding into the branch output (a fresh convolution result, which the convolution's
        # backward does not need) saves one feature-map allocation per residual.
        x = self.attn(self.norm1(x)).add_(x)
        return self.ffn(self.norm2(x)).add_(x)


class _PatchEmbed(nn.Module):
    """``proj``: 3×3 convolution from the image to ``dim`` features (official ``OverlapPatchEmbed``)."""

    def __init__(self, in_channels: int, dim: int, bias: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class _Resample(nn.Module):
    """A 3×3 convolution then a pixel (un)shuffle by 2, as ``body.0`` / ``body.1``.

    Down (official ``Downsample``): ``C×H×W → C/2×H×W → 2C×H/2×W/2``.
    Up (official ``Upsample``): ``C×H×W → 2C×H×W → C/2×2H×2W``.
    """

    def __init__(self, channels: int, down: bool) -> None:
        super().__init__()
        conv_out = channels // 2 if down else channels * 2
        shuffle = nn.PixelUnshuffle(2) if down else nn.PixelShuffle(2)
        self.body = nn.Sequential(nn.Conv2d(channels, conv_out, kernel_size=3, padding=1, bias=False), shuffle)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


# -- the network --------------------------------------------------------------------------


class Restormer(Denoiser):
    """Restormer (Zamir et al., CVPR 2022) with the official module names; paper preset by default.

    Size arguments left as ``None`` come from ``PRESETS[preset]``; explicit values win.
    ``config()`` returns every resolved value (plus the preset name), so saved weights rebuild
    the same architecture even if a preset's definition changes.

    ==========  ===  ============  ==========  =====================
    preset      dim  num_blocks    refinement  parameters (BiasFree)
    ==========  ===  ============  ==========  =====================
    ``paper``   48   [4, 6, 6, 8]  4           26,111,668
    ``small``   24   [2, 3, 3, 4]  2           3,809,486
    ``tiny``    16   [1, 1, 1, 1]  1           799,747
    ==========  ===  ============  ==========  =====================

    (heads ``[1, 2, 4, 8]`` and FFN expansion 2.66 in all; ``WithBias`` adds one bias per norm
    weight: 26,126,644 for the paper preset; counts are for 3 input and output channels.)

    Initialisation is PyTorch's default for every layer (as in the official code), attention
    temperatures 1, norm scales 1 and shifts 0; it draws from torch's global RNG, so call
    ``torch.manual_seed`` before construction for reproducible weights.

    Parameter roles (``parameter_groups``):
        first: the patch embedding convolution.
        last: the output convolution.
        domain: every layer norm's scale (and shift), every attention temperature, and the
            output convolution.

    Args:
        in_channels: channels of the noisy input (3 sRGB, 1 gray, 4 packed raw).
        out_channels: channels of the output; must equal ``in_channels`` when ``residual``.
        dim: feature channels at full resolution (paper 48); level ``i`` has ``dim·2^i``.
        num_blocks: transformer blocks of encoder levels 1–3 and the latent level (decoder
            levels 3–1 repeat the encoder counts); paper ``[4, 6, 6, 8]``.
        num_refinement_blocks: blocks after the decoder at full resolution (paper 4).
        heads: attention heads per level (paper ``[1, 2, 4, 8]``); must divide the channels of
            that level's blocks.
        ffn_expansion_factor: GDFN hidden width factor (paper 2.66).
        bias: biases in every convolution (``False`` in all released models).
        layer_norm_type: ``"BiasFree"`` (the denoising models) or ``"WithBias"`` (the official
            constructor default, used for deraining and deblurring).
        residual: add the input to the output convolution's result (the official model always
            does); ``False`` allows ``in_channels != out_channels``.
        preset: name in ``PRESETS`` that fills the size arguments left as ``None``.

    Raises:
        InvalidInputError: unknown preset or layer-norm type, bad sizes or head counts, or
            ``residual`` with differing channel counts.
    """

    name: ClassVar[str] = "restormer"
    size_multiple = 8
    smoke_config: ClassVar[dict[str, Any]] = {"preset": "tiny"}

    channels_last_on_cpu: bool = True
    """Run CPU batches in channels-last layout internally: measured 1.15–1.3× less CPU time and
    18–34 % less peak memory than N×C×H×W at 256²–512² (``tools/perf/restormer_speed.py``, one
    thread), same output to ~1e-6. The
    parameters keep their usual layout. A runtime switch (set it on an instance), not part of
    the architecture or the saved config; other devices run in the layout they are given."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        dim: int | None = None,
        num_blocks: Sequence[int] | None = None,
        num_refinement_blocks: int | None = None,
        heads: Sequence[int] | None = None,
        ffn_expansion_factor: float | None = None,
        bias: bool = False,
        layer_norm_type: str = "BiasFree",
        residual: bool = True,
        preset: str = "paper",
    ) -> None:
        super().__init__()
        if preset not in PRESETS:
            raise InvalidInputError(f"restormer: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        explicit = {
            "dim": dim,
            "num_blocks": num_blocks,
            "num_refinement_blocks": num_refinement_blocks,
            "heads": heads,
            "ffn_expansion_factor": ffn_expansion_factor,
        }
        size = {key: PRESETS[preset][key] if value is None else value for key, value in explicit.items()}
        self._resolved = _validated(size, in_channels, out_channels, layer_norm_type, residual)
        self._resolved.update(
            in_channels=in_channels,
            out_channels=out_channels,
            bias=bool(bias),
            layer_norm_type=layer_norm_type,
            residual=bool(residual),
            preset=preset,
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.residual = bool(residual)

        dim = self._resolved["dim"]
        blocks = self._resolved["num_blocks"]
        heads = self._resolved["heads"]
        expansion = self._resolved["ffn_expansion_factor"]

        def stage(channels: int, count: int, level_heads: int) -> nn.Sequential:
            return nn.Sequential(
                *(TransformerBlock(channels, level_heads, expansion, bias, layer_norm_type) for _ in range(count))
            )

        self.patch_embed = _PatchEmbed(in_channels, dim, bias)
        self.encoder_level1 = stage(dim, blocks[0], heads[0])
        self.down1_2 = _Resample(dim, down=True)
        self.encoder_level2 = stage(dim * 2, blocks[1], heads[1])
        self.down2_3 = _Resample(dim * 2, down=True)
        self.encoder_level3 = stage(dim * 4, blocks[2], heads[2])
        self.down3_4 = _Resample(dim * 4, down=True)
        self.latent = stage(dim * 8, blocks[3], heads[3])
        self.up4_3 = _Resample(dim * 8, down=False)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, kernel_size=1, bias=bias)
        self.decoder_level3 = stage(dim * 4, blocks[2], heads[2])
        self.up3_2 = _Resample(dim * 4, down=False)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, kernel_size=1, bias=bias)
        self.decoder_level2 = stage(dim * 2, blocks[1], heads[1])
        self.up2_1 = _Resample(dim * 2, down=False)
        # Level 1 keeps the concatenated 2·dim channels: no reduction, 2·dim from here on.
        self.decoder_level1 = stage(dim * 2, blocks[0], heads[0])
        self.refinement = stage(dim * 2, self._resolved["num_refinement_blocks"], heads[0])
        self.output = nn.Conv2d(dim * 2, out_channels, kernel_size=3, padding=1, bias=bias)

    def config(self) -> dict[str, Any]:
        """Every constructor argument, resolved (preset values filled in), JSON-serialisable."""
        return {key: list(value) if isinstance(value, list) else value for key, value in self._resolved.items()}

    def forward(self, noisy: torch.Tensor, cond: Conditions | None = None) -> torch.Tensor:
        """Denoise a batch.

        Args:
            noisy: ``N×in_channels×H×W`` float tensor, nominally in ``[0, 1]``, with ``H`` and
                ``W`` multiples of 8 (``noiseshift.inference.denoise`` pads other sizes). On
                CPUs it runs channels-last internally (see ``channels_last_on_cpu``).
            cond: ignored (Restormer is blind: it declares no conditions).

        Returns:
            ``N×out_channels×H×W`` clean estimate (not clipped), contiguous when ``noisy`` is.

        Raises:
            InvalidInputError: wrong rank, channel count or dtype, or a size not divisible by 8.
        """
        self.check_input(noisy)
        height, width = noisy.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise InvalidInputError(
                f"restormer: height and width must be multiples of {self.size_multiple}, got "
                f"{height}×{width}; run it through noiseshift.inference.denoise, which pads"
            )
        x = noisy
        if self.channels_last_on_cpu and x.device.type == "cpu":
            # Every later activation inherits the layout from here: 1×1 and depthwise weights
            # are layout-agnostic, and the attention keeps the layout of its input.
            x = x.contiguous(memory_format=torch.channels_last)
        enc1 = self.encoder_level1(self.patch_embed(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))

        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], dim=1)))
        del latent, enc3
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=1)))
        del dec3, enc2
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=1))
        del dec2, enc1
        out = self.output(self.refinement(dec1))
        if self.residual:
            out = out.add_(x)
        # Hand back the caller's layout (a cheap copy of the few output channels).
        return out.contiguous() if noisy.is_contiguous() and not out.is_contiguous() else out

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by role; see the class docstring for what each role holds."""
        norms = [module for module in self.modules() if isinstance(module, ChannelLayerNorm)]
        temperatures = [module.temperature for module in self.modules() if isinstance(module, MDTA)]
        return self.groups_from_modules(
            first=self.patch_embed,
            last=self.output,
            domain=[*norms, *temperatures, self.output],
        )


def _validated(
    size: Mapping[str, Any], in_channels: int, out_channels: int, layer_norm_type: str, residual: bool
) -> dict[str, Any]:
    """Check the resolved size arguments; returns them with lists normalised to ``list[int]``."""

    def positive_int(value: Any, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"restormer: {what} must be a positive integer, got {value!r}")
        return value

    def four_ints(value: Any, what: str) -> list[int]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 4:
            raise InvalidInputError(f"restormer: {what} must be 4 positive integers (one per level), got {value!r}")
        return [positive_int(item, f"every entry of {what}") for item in value]

    positive_int(in_channels, "in_channels")
    positive_int(out_channels, "out_channels")
    if layer_norm_type not in LAYER_NORM_TYPES:
        raise InvalidInputError(
            f"restormer: layer_norm_type must be one of {list(LAYER_NORM_TYPES)}, got {layer_norm_type!r}"
        )
    if residual and in_channels != out_channels:
        raise InvalidInputError(
            f"restormer: the global residual adds the input to the output, so it needs in_channels == "
            f"out_channels (got {in_channels} and {out_channels}); pass residual=False otherwise"
        )
    dim = positive_int(size["dim"], "dim")
    if dim % 2:
        raise InvalidInputError(f"restormer: dim must be even (down-sampling halves it first), got {dim}")
    blocks = four_ints(size["num_blocks"], "num_blocks")
    heads = four_ints(size["heads"], "heads")
    refinement = size["num_refinement_blocks"]
    if isinstance(refinement, bool) or not isinstance(refinement, int) or refinement < 0:
        raise InvalidInputError(f"restormer: num_refinement_blocks must be an integer >= 0, got {refinement!r}")
    expansion = size["ffn_expansion_factor"]
    if isinstance(expansion, bool) or not isinstance(expansion, (int, float)) or int(dim * expansion) < 1:
        raise InvalidInputError(
            f"restormer: ffn_expansion_factor must be a number with int(dim · factor) >= 1, got {expansion!r}"
        )
    # Channels each level's blocks see: encoder i at dim·2^i, decoder level 1 and refinement at 2·dim.
    for level, channels in ((0, dim), (0, dim * 2), (1, dim * 2), (2, dim * 4), (3, dim * 8)):
        if channels % heads[level]:
            raise InvalidInputError(
                f"restormer: heads[{level}] = {heads[level]} does not divide the {channels} channels of "
                f"level {level + 1} (dim = {dim})"
            )
    return {
        "dim": dim,
        "num_blocks": blocks,
        "num_refinement_blocks": refinement,
        "heads": heads,
        "ffn_expansion_factor": float(expansion),
    }
