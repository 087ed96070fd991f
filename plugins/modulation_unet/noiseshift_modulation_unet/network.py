"""ADL's channel-wise modulation network: a SID-style U-Net whose features are modulated by metadata.

References:
    Z. Qian, Y. Qi, Y. Law, Y. Fu, J. Lei and Q. Chen, "Adaptive Domain Learning for Cross-domain
    Image Denoising", NeurIPS 2024, §3.2 — the metadata vector (one-hot sensor type, ISO
    repeated ``n`` times), ``γ = 1 + tanh(MLP_γ(p, s))``, ``β = MLP_β(p, s)`` from two separate
    4-layer MLPs, and the channel-wise modulation ``F' = γ·F + β`` of a convolution's features.

    C. Chen, Q. Chen, J. Xu and V. Koltun, "Learning to See in the Dark", CVPR 2018 — the U-Net
    backbone: 4 down-samplings (2×2 max-pool), widths 32-64-128-256-512, two 3×3 convolutions
    with leaky ReLU (slope 0.2) per level, 2×2 stride-2 transposed convolutions without bias
    whose output is concatenated with the encoder features, a 1×1 output convolution.

The ADL paper leaves widths, placement and initialisation of the modulation open; the choices
here are constructor options (defaults in brackets):

* placement [``"all"``]: the modulation acts on the output of a 3×3 convolution, before its
  leaky ReLU. Layers are named ``enc{l}.{k}`` (encoder level ``l``, convolution ``k`` ∈ {0, 1};
  level 0 is full resolution), ``mid.{k}`` (bottleneck) and ``dec{l}.{k}`` (decoder level ``l``).
  ``modulate`` is ``"all"`` or a list of such names and of the groups ``"encoder"``,
  ``"bottleneck"``, ``"decoder"``. Transposed and output convolutions are never modulated.
* MLPs [4 layers, hidden width 64, ReLU]: ``Linear(D→h)``, ReLU, ``(Linear(h→h), ReLU) × 2``,
  ``Linear(h→C)``, one MLP for γ and one for β per modulated layer.
* initialisation [``identity_init=True``]: the last linear layer of every MLP is zero, so
  ``γ ≡ 1`` and ``β ≡ 0`` and the untrained network equals the plain U-Net with the same
  convolution weights; the metadata pathway grows from zero during training. Gradients reach
  those output layers at once (the hidden activations are not zero); the hidden layers start
  learning after the first update.

The ``N×C×H×W`` → ``N×C×1×1`` broadcast of γ and β means each image of a batch uses its own
sensor and ISO.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from noiseshift.api import Conditions, Denoiser, InvalidInputError

from .metadata import MetadataEncoder

__all__ = ["ChannelModulation", "ModulatedConv", "ModulationUNet", "PAPER_SENSORS"]

PAPER_SENSORS: tuple[str, ...] = ("G4", "GP", "IP", "N6", "S6")
"""The SIDD phones of ADL's first experiment group (Google Pixel, iPhone, Nexus 6, Galaxy S6,
LG G4), the default sensor vocabulary."""

_GROUPS: tuple[str, ...] = ("encoder", "bottleneck", "decoder")


def _mlp(in_features: int, hidden: int, out_features: int, layers: int) -> nn.Sequential:
    """``layers`` linear layers with ReLUs between them (none after the last)."""
    widths = [in_features] + [hidden] * (layers - 1) + [out_features]
    modules: list[nn.Module] = []
    for index, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
        if index:
            modules.append(nn.ReLU(inplace=True))
        modules.append(nn.Linear(width_in, width_out))
    return nn.Sequential(*modules)


class ChannelModulation(nn.Module):
    """Metadata → channel-wise scale and shift: ``γ = 1 + tanh(MLP_γ(m))``, ``β = MLP_β(m)``.

    Args:
        meta_dim: length ``D`` of the metadata vector.
        channels: channels ``C`` of the modulated feature map.
        hidden: hidden width of both MLPs.
        layers: linear layers per MLP (the paper: 4).
        identity_init: zero the last linear layer of both MLPs (``γ ≡ 1``, ``β ≡ 0``).
    """

    def __init__(self, meta_dim: int, channels: int, hidden: int, layers: int, identity_init: bool) -> None:
        super().__init__()
        self.gamma = _mlp(meta_dim, hidden, channels, layers)
        self.beta = _mlp(meta_dim, hidden, channels, layers)
        if identity_init:
            for mlp in (self.gamma, self.beta):
                nn.init.zeros_(mlp[-1].weight)
                nn.init.zeros_(mlp[-1].bias)

    def forward(self, meta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and shift for a batch.

        Args:
            meta: ``N×D`` metadata vectors.

        Returns:
            ``(γ, β)``, each ``N×C``; ``γ ∈ (0, 2)``.
        """
        return 1.0 + torch.tanh(self.gamma(meta)), self.beta(meta)


class ModulatedConv(nn.Module):
    """``LeakyReLU(γ·conv3×3(x) + β)``, or ``LeakyReLU(conv3×3(x))`` without modulation.

    Args:
        in_channels: input channels.
        out_channels: output channels ``C``.
        negative_slope: slope of the leaky ReLU.
        modulation: the γ/β generator for this layer, or ``None``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, negative_slope: float, modulation: ChannelModulation | None
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.modulation = modulation
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        """``N×C_in×H×W`` features and ``N×D`` metadata → ``N×C×H×W`` features."""
        features = self.conv(x)
        if self.modulation is not None:
            gamma, beta = self.modulation(meta)
            features = features * gamma[:, :, None, None] + beta[:, :, None, None]
        return F.leaky_relu(features, self.negative_slope)


class _Level(nn.Module):
    """The two modulated convolutions of one U-Net level."""

    def __init__(self, convs: Sequence[ModulatedConv]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x, meta)
        return x


class ModulationUNet(Denoiser):
    """ADL's channel-wise modulation network: a SID U-Net modulated by sensor type and ISO.

    Layout for ``levels = 4`` and base width ``W = 32`` (every level: 2 × [conv3×3 →
    γ·F + β → LeakyReLU 0.2]; encoder down-samples with 2×2 max-pool, decoder up-samples with a
    2×2 stride-2 transposed convolution and concatenates the encoder features)::

        size   encoder            decoder
        H      enc0: C → W     ─► dec0: 2W → W      ─► conv1×1: W → C_out
        H/2    enc1: W → 2W    ─► dec1: 4W → 2W
        H/4    enc2: 2W → 4W   ─► dec2: 8W → 4W
        H/8    enc3: 4W → 8W   ─► dec3: 16W → 8W
        H/16   mid:  8W → 16W

    The metadata vector of each image (:class:`~noiseshift_modulation_unet.metadata.MetadataEncoder`:
    one-hot sensor, normalised ISO repeated) feeds a pair of MLPs per modulated convolution.

    Parameter counts (4-channel raw in and out, the five default sensors, so ``D = 10``):
    **8,467,588** for the defaults, of which the 36 modulation MLPs (18 layers × γ and β) hold
    **707,584** (8.4 %) and the plain SID U-Net 7,760,004 (``modulate=[]``); 3-channel sRGB
    in and out: 8,467,267; ``unknown_sensor="fallback"`` (``D = 12``): 8,472,196. The
    ``smoke_config`` preset has 12,628 parameters.

    Parameter roles (``parameter_groups``):
        first: the first 3×3 convolution (``enc0.0``).
        last: the 1×1 output convolution.
        domain: every modulation MLP plus the output convolution — the metadata pathway and
            the output layer, what a transfer-learning adapter updates for a new sensor.
        modulation: every modulation MLP (without the output convolution).

    Args:
        in_channels: channels of the noisy input (4 for packed RGGB raw, 3 for sRGB).
        out_channels: channels of the output; must equal ``in_channels`` when ``residual``.
        sensors: the sensor vocabulary, in one-hot order; saved with the weights so a
            checkpoint knows which sensors it was trained on. Matching is case-insensitive.
        width: channels at full resolution; level ``l`` has ``width · 2^l`` (SID: 32).
        levels: number of 2× down-samplings (SID: 4); ``size_multiple = 2**levels``.
        negative_slope: slope of the leaky ReLUs (SID: 0.2).
        residual: add the input to the output (global residual). SID and ADL predict the clean
            image directly, hence ``False``.
        modulate: ``"all"`` or a list of layer names / groups (see the module docstring).
        mlp_hidden: hidden width of the modulation MLPs.
        mlp_layers: linear layers per MLP (ADL: 4).
        identity_init: zero-initialise the MLP output layers so ``γ ≡ 1``, ``β ≡ 0`` at start.
        unknown_sensor: ``"error"`` (unknown or missing sensor / missing ISO raise
            ``InvalidInputError``) or ``"fallback"`` (an extra unknown-sensor one-hot slot, and
            ``default_iso`` for a missing ISO).
        iso_norm: ``"log2"`` (``log2(iso/100) / log2(max_iso/100)``) or ``"linear"``
            (``iso / max_iso``).
        max_iso: the ISO that normalises to 1.
        default_iso: the ISO assumed when it is missing (``unknown_sensor="fallback"`` only); the
            default 1600 is the geometric middle of 100…25600 (0.5 under ``"log2"``).
        iso_repeat: how often the normalised ISO is repeated in the metadata vector; ``None``
            means as many times as there are one-hot slots (the paper's ``n``).

    Raises:
        InvalidInputError: for an invalid option.
    """

    name: ClassVar[str] = "modulation_unet"
    in_channels: int = 4
    out_channels: int = 4
    size_multiple: int = 16  # the default levels of 4; each instance sets 2**levels
    conditions: ClassVar[frozenset[str]] = frozenset({"sensor", "iso"})
    domain: ClassVar[str] = "any"

    smoke_config: ClassVar[dict[str, Any]] = {
        "in_channels": 4,
        "out_channels": 4,
        "sensors": ["SonyA7S2", "NikonD850"],
        "width": 4,
        "levels": 2,
        "mlp_hidden": 8,
    }
    smoke_cond: ClassVar[dict[str, Any]] = {"sensor": "SonyA7S2", "iso": 800.0}

    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 4,
        sensors: Sequence[str] = PAPER_SENSORS,
        width: int = 32,
        levels: int = 4,
        negative_slope: float = 0.2,
        residual: bool = False,
        modulate: str | Sequence[str] = "all",
        mlp_hidden: int = 64,
        mlp_layers: int = 4,
        identity_init: bool = True,
        unknown_sensor: str = "error",
        iso_norm: str = "log2",
        max_iso: float = 25600.0,
        default_iso: float = 1600.0,
        iso_repeat: int | None = None,
    ) -> None:
        super().__init__()
        for option, value in (
            ("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
            ("levels", levels), ("mlp_hidden", mlp_hidden), ("mlp_layers", mlp_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"modulation_unet: {option} must be a positive integer, got {value!r}")
        if residual and in_channels != out_channels:
            raise InvalidInputError(
                f"modulation_unet: the global residual adds the input to the output, so it needs "
                f"in_channels == out_channels (got {in_channels} and {out_channels})"
            )
        self.metadata = MetadataEncoder(
            sensors,
            unknown_sensor=unknown_sensor,
            iso_norm=iso_norm,
            max_iso=max_iso,
            default_iso=default_iso,
            iso_repeat=iso_repeat,
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = 2**levels
        self.levels = levels
        self.residual = residual

        widths = [width * 2**level for level in range(levels + 1)]
        names = self.layer_names(levels)
        chosen = self._resolve_modulate(modulate, names)
        self.modulated_layers: tuple[str, ...] = tuple(name for name in names if name in chosen)

        def level(prefix: str, channels_in: int, channels_out: int) -> _Level:
            convs = []
            for index, conv_in in enumerate((channels_in, channels_out)):
                modulation = None
                if f"{prefix}.{index}" in chosen:
                    modulation = ChannelModulation(
                        self.metadata.dim, channels_out, mlp_hidden, mlp_layers, identity_init
                    )
                convs.append(ModulatedConv(conv_in, channels_out, negative_slope, modulation))
            return _Level(convs)

        self.encoder = nn.ModuleList(
            [level(f"enc{lvl}", in_channels if lvl == 0 else widths[lvl - 1], widths[lvl]) for lvl in range(levels)]
        )
        self.bottleneck = level("mid", widths[levels - 1], widths[levels])
        # Decoder modules are stored coarse to fine, the order in which forward uses them.
        coarse_to_fine = range(levels - 1, -1, -1)
        self.upsample = nn.ModuleList(
            [nn.ConvTranspose2d(widths[lvl + 1], widths[lvl], kernel_size=2, stride=2, bias=False) for lvl in coarse_to_fine]
        )
        self.decoder = nn.ModuleList([level(f"dec{lvl}", 2 * widths[lvl], widths[lvl]) for lvl in coarse_to_fine])
        self.output = nn.Conv2d(widths[0], out_channels, kernel_size=1)

        self._init_convolutions(negative_slope)

    # -- construction helpers ---------------------------------------------------------------------

    @staticmethod
    def layer_names(levels: int) -> list[str]:
        """Names of the 3×3 convolutions that can be modulated, in forward order."""
        encoder = [f"enc{lvl}.{k}" for lvl in range(levels) for k in (0, 1)]
        decoder = [f"dec{lvl}.{k}" for lvl in range(levels - 1, -1, -1) for k in (0, 1)]
        return [*encoder, "mid.0", "mid.1", *decoder]

    @staticmethod
    def _resolve_modulate(modulate: str | Sequence[str], names: list[str]) -> set[str]:
        if isinstance(modulate, str):
            modulate = [modulate]
        if not isinstance(modulate, Sequence) or not all(isinstance(item, str) for item in modulate):
            raise InvalidInputError(
                f"modulation_unet: modulate must be 'all' or a list of layer names / groups, got {modulate!r}"
            )
        prefixes = {"encoder": "enc", "bottleneck": "mid", "decoder": "dec"}
        chosen: set[str] = set()
        for item in modulate:
            if item == "all":
                chosen.update(names)
            elif item in prefixes:
                chosen.update(name for name in names if name.startswith(prefixes[item]))
            elif item in names:
                chosen.add(item)
            else:
                raise InvalidInputError(
                    f"modulation_unet: unknown layer {item!r} in modulate; use 'all', a group "
                    f"{list(_GROUPS)} or layer names {names}"
                )
        return chosen

    def _init_convolutions(self, negative_slope: float) -> None:
        """He-normal 3×3/1×1 convolutions with the leaky-ReLU gain, zero biases.

        Transposed convolutions and the MLPs' hidden layers keep PyTorch's defaults. All draw
        from torch's global RNG: call ``torch.manual_seed`` before construction for
        reproducible weights.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=negative_slope, nonlinearity="leaky_relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    # -- public helpers ---------------------------------------------------------------------------

    @property
    def sensors(self) -> tuple[str, ...]:
        """The sensor vocabulary, in one-hot order."""
        return self.metadata.sensors

    def _named_layers(self) -> list[tuple[str, ModulatedConv]]:
        blocks: list[tuple[str, _Level]] = [(f"enc{lvl}", block) for lvl, block in enumerate(self.encoder)]
        blocks.append(("mid", self.bottleneck))
        blocks += [(f"dec{self.levels - 1 - i}", block) for i, block in enumerate(self.decoder)]
        return [(f"{prefix}.{k}", conv) for prefix, block in blocks for k, conv in enumerate(block.convs)]  # type: ignore[misc]

    def modulations(
        self, cond: Mapping[str, Any] | None, batch: int = 1
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The ``(γ, β)`` every modulated layer applies for the given metadata.

        Args:
            cond: conditions with ``sensor`` and ``iso``, as for ``forward``.
            batch: the batch size ``N`` the conditions describe.

        Returns:
            Layer name → ``(γ, β)``, each ``N×C`` on the model's device.
        """
        reference = self.output.weight
        meta = self.metadata.encode(cond, batch, device=reference.device, dtype=reference.dtype)
        return {
            name: conv.modulation(meta)
            for name, conv in self._named_layers()
            if conv.modulation is not None
        }

    # -- Denoiser interface -----------------------------------------------------------------------

    def forward(self, noisy: torch.Tensor, cond: Conditions | None = None) -> torch.Tensor:
        """Denoise a batch.

        Args:
            noisy: ``N×in_channels×H×W`` float tensor, nominally in ``[0, 1]``; ``H`` and ``W``
                must be multiples of ``size_multiple = 2**levels``.
            cond: ``sensor`` (a ``str`` or a list of ``N`` strings) and ``iso`` (a number, a list
                of ``N`` numbers or a tensor of 1 or ``N`` values); other keys are ignored. Both
                may be left out with ``unknown_sensor="fallback"``.

        Returns:
            ``N×out_channels×H×W`` clean estimate (not clipped).

        Raises:
            InvalidInputError: for a malformed input, a size that is not a multiple of
                ``size_multiple``, or missing / unknown / misshapen metadata.
        """
        self.check_input(noisy)
        height, width = noisy.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise InvalidInputError(
                f"modulation_unet: height and width must be multiples of size_multiple={self.size_multiple} "
                f"(2**levels), got {height}×{width}; pad the input first (noiseshift.inference.denoise "
                f"pads to size_multiple automatically)"
            )
        meta = self.metadata.encode(cond, noisy.shape[0], device=noisy.device, dtype=noisy.dtype)

        features = noisy
        skips: list[torch.Tensor] = []
        for lvl, block in enumerate(self.encoder):
            if lvl:
                features = F.max_pool2d(features, kernel_size=2)
            features = block(features, meta)
            skips.append(features)
        features = self.bottleneck(F.max_pool2d(features, kernel_size=2), meta)
        for upsample, block, skip in zip(self.upsample, self.decoder, reversed(skips)):
            features = block(torch.cat([upsample(features), skip], dim=1), meta)
        restored = self.output(features)
        return noisy + restored if self.residual else restored

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by role; see the class docstring for what each role holds."""
        mlps = [conv.modulation for _, conv in self._named_layers() if conv.modulation is not None]
        return self.groups_from_modules(
            first=self.encoder[0].convs[0].conv,  # type: ignore[index]
            last=self.output,
            domain=[*mlps, self.output],
            modulation=mlps,
        )
