"""A small residual U-Net for image denoising, trainable on a CPU.

References:
    O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional Networks for Biomedical Image
    Segmentation", MICCAI 2015. https://arxiv.org/abs/1505.04597 — the encoder/decoder with
    skip concatenation, max-pool down-sampling and 2×2 transposed-convolution up-sampling.

    J. Lehtinen et al., "Noise2Noise: Learning Image Restoration without Clean Data", ICML 2018.
    https://arxiv.org/abs/1803.04189 — the use of a U-Net with leaky ReLUs (slope 0.1) as a
    denoising backbone.

This is not a reproduction of either paper's exact network: it is a compact, conventional
denoising U-Net (widths doubling per level, same-padded convolutions so the output has the
input's size, a global residual connection) meant as a second, multi-scale built-in backbone.

Layout for ``depth = 3`` and base width ``W`` (every block is 2 × [conv3×3 + LeakyReLU])::

    size   encoder (down: 2×2 max-pool)         decoder (up: 2×2 stride-2 transposed conv)
    H      encoder[0]: C → W      ──skip──►  decoder[2]: (W + W) → W     ─► conv1×1: W → C = r
    H/2    encoder[1]: W → 2W     ──skip──►  decoder[1]: (2W + 2W) → 2W  ─► upsample[2]: 2W → W
    H/4    encoder[2]: 2W → 4W    ──skip──►  decoder[0]: (4W + 4W) → 4W  ─► upsample[1]: 4W → 2W
    H/8    bottleneck: 4W → 8W  ───────────────────────────────────────► upsample[0]: 8W → 4W

Each decoder block takes its up-sampled features concatenated with the encoder skip of the same
size; the output is ``noisy + r``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..denoiser import Denoiser
from ..errors import InvalidInputError
from ..types import Conditions

__all__ = ["UNet"]

_NORMS: tuple[str, ...] = ("none", "instance", "batch")


def _norm_layer(norm: str, channels: int) -> nn.Module:
    """The normalisation after a convolution; affine so it can carry domain statistics."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def _conv_block(in_channels: int, out_channels: int, norm: str, negative_slope: float) -> nn.Sequential:
    """Two ``conv3×3 [+ norm] + LeakyReLU`` layers at one resolution."""
    layers: list[nn.Module] = []
    for channels_in in (in_channels, out_channels):
        # A bias right before a normalisation layer is cancelled by its mean subtraction.
        layers.append(nn.Conv2d(channels_in, out_channels, kernel_size=3, padding=1, bias=norm == "none"))
        layers.append(_norm_layer(norm, out_channels))
        layers.append(nn.LeakyReLU(negative_slope, inplace=True))
    return nn.Sequential(*layers)


class UNet(Denoiser):
    """Residual U-Net denoiser: ``output = noisy + f(noisy)``.

    Each level has two 3×3 convolutions with leaky ReLUs; the encoder halves the resolution
    with 2×2 max-pooling and the decoder doubles it with 2×2 stride-2 transposed convolutions,
    concatenating the encoder features of the same resolution. Widths double per level
    (``width · 2^level``), the bottleneck sits ``depth`` poolings down, and a 1×1 convolution
    maps the last decoder features to the residual added to the input.

    Parameter counts of the defaults (``in_channels=out_channels=3, width=32, depth=3``):
    **1,925,667** with ``norm="none"``; 1,927,075 with ``norm="instance"`` or ``"batch"``
    (the 1,408 biases of the 3×3 convolutions are dropped and 1,408 norm scale/shift pairs,
    2,816 parameters, added). Of the ``"none"`` model, the bottleneck alone holds 885,248
    (46 %).

    Initialisation: 3×3 and 1×1 convolutions use He (Kaiming) normal initialisation with the
    leaky-ReLU gain and zero biases; transposed convolutions keep PyTorch's default. Both draw
    from torch's global RNG: call ``torch.manual_seed`` before construction for reproducible
    weights.

    Parameter roles (``parameter_groups``):
        first: the first 3×3 convolution (input layer).
        last: the 1×1 output convolution.
        domain: with ``norm="instance"`` or ``"batch"``, every normalisation layer's affine
            scale and shift plus the output convolution (AIN-style modulation + output layer).
            With ``norm="none"`` there is no modulation to adapt, so it is the full-resolution
            decoder block plus the output convolution: the small head that maps features to
            the noise residual (27,811 parameters for the defaults, 1.4 %; with a norm the
            role holds 2,915). The bottleneck is deliberately not included: it holds almost
            half of the parameters, so adapting it would amount to full fine-tuning.

    Args:
        in_channels: channels of the noisy input (3 for sRGB, 4 for packed raw, 1 for gray).
        out_channels: channels of the output; must equal ``in_channels`` when ``residual``.
        width: channels at full resolution; level ``l`` has ``width · 2^l``.
        depth: number of 2× down-samplings; height and width must be multiples of ``2^depth``.
        norm: ``"none"``, ``"instance"`` (affine InstanceNorm) or ``"batch"`` after every 3×3
            convolution of the encoder, bottleneck and decoder.
        negative_slope: slope of the leaky ReLUs (0.1 as in Noise2Noise).
        residual: add the network output to the input (global residual learning); when
            ``False`` the network outputs the clean estimate directly.

    Raises:
        InvalidInputError: for a non-positive width, depth or channel count, an unknown
            ``norm``, or ``residual`` with ``in_channels != out_channels``.
    """

    name = "unet"
    size_multiple = 8  # the default depth of 3; each instance sets 2**depth
    smoke_config: ClassVar[dict[str, Any]] = {"width": 8}  # conformance and sweep tests

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int = 32,
        depth: int = 3,
        norm: str = "none",
        negative_slope: float = 0.1,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1 or in_channels < 1 or out_channels < 1:
            raise InvalidInputError(
                f"unet: depth, width and channel counts must be positive, got depth={depth}, "
                f"width={width}, in_channels={in_channels}, out_channels={out_channels}"
            )
        if norm not in _NORMS:
            raise InvalidInputError(f"unet: norm must be one of {list(_NORMS)}, got {norm!r}")
        if residual and in_channels != out_channels:
            raise InvalidInputError(
                f"unet: the global residual adds the input to the output, so it needs "
                f"in_channels == out_channels (got {in_channels} and {out_channels}); "
                f"pass residual=False for a channel-changing model"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = 2**depth
        self.norm = norm
        self.residual = residual

        widths = [width * 2**level for level in range(depth + 1)]
        self.encoder = nn.ModuleList(
            [_conv_block(in_channels, widths[0], norm, negative_slope)]
            + [_conv_block(widths[level - 1], widths[level], norm, negative_slope) for level in range(1, depth)]
        )
        self.bottleneck = _conv_block(widths[depth - 1], widths[depth], norm, negative_slope)
        # Decoder modules are stored coarse to fine, the order in which forward uses them.
        coarse_to_fine = range(depth - 1, -1, -1)
        self.upsample = nn.ModuleList(
            [nn.ConvTranspose2d(widths[level + 1], widths[level], kernel_size=2, stride=2) for level in coarse_to_fine]
        )
        self.decoder = nn.ModuleList(
            [_conv_block(2 * widths[level], widths[level], norm, negative_slope) for level in coarse_to_fine]
        )
        self.output = nn.Conv2d(widths[0], out_channels, kernel_size=1)

        self._init_weights(negative_slope)

    def _init_weights(self, negative_slope: float) -> None:
        """He-normal 3×3/1×1 convolutions with the leaky-ReLU gain, zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=negative_slope, nonlinearity="leaky_relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, noisy: torch.Tensor, cond: Conditions | None = None) -> torch.Tensor:
        """Denoise a batch.

        Args:
            noisy: ``N×in_channels×H×W`` float tensor, nominally in ``[0, 1]``; ``H`` and ``W``
                must be multiples of ``size_multiple = 2**depth``.
            cond: ignored (the U-Net is blind: it declares no conditions).

        Returns:
            ``N×out_channels×H×W`` clean estimate (not clipped).

        Raises:
            InvalidInputError: for a malformed input or a size that is not a multiple of
                ``size_multiple``.
        """
        self.check_input(noisy)
        height, width = noisy.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise InvalidInputError(
                f"unet: height and width must be multiples of size_multiple={self.size_multiple} "
                f"(2**depth), got {height}×{width}; pad the input first (noiseshift's inference "
                f"helpers pad to size_multiple automatically)"
            )

        features = noisy
        skips: list[torch.Tensor] = []
        for level, block in enumerate(self.encoder):
            if level:
                features = F.max_pool2d(features, kernel_size=2)
            features = block(features)
            skips.append(features)
        features = self.bottleneck(F.max_pool2d(features, kernel_size=2))
        for upsample, block, skip in zip(self.upsample, self.decoder, reversed(skips)):
            features = block(torch.cat([upsample(features), skip], dim=1))
        restored = self.output(features)
        return noisy + restored if self.residual else restored

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by role; see the class docstring for what each role holds."""
        if self.norm == "none":
            domain: list[nn.Module] = [self.decoder[-1], self.output]
        else:
            norms = [m for m in self.modules() if isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d))]
            domain = [*norms, self.output]
        return self.groups_from_modules(first=self.encoder[0][0], last=self.output, domain=domain)
