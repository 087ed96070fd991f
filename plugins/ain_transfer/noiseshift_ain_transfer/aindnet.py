"""AINDNet: a U-Net of adaptive-instance-normalisation residual blocks with a noise-level estimator.

Reference:
    Y. Kim, J. W. Soh, G. Y. Park and N. I. Cho, "Transfer Learning from Synthetic to Real-Noise
    Denoising with Adaptive Instance Normalization", CVPR 2020, and the authors' test-only
    TensorFlow release terryoo/AINDNet (``code/model.py``), whose layer list this follows.

The network estimates a per-pixel noise level map from the noisy image, then denoises with a
U-Net whose residual blocks normalise every feature map per image and channel (instance norm)
and re-modulate it pixel-wise from that map (AIN, SPADE-style)::

    noisy y ─► estimator ─► σ̂_coarse (H/s) ──bilinear──► up ─► conv3×3+ReLU ×2 ─► σ̂_fine (H)
               σ̂ = λ_ms·up + (1 − λ_ms)·σ̂_fine                    (λ_ms = 0.8)
    y ─► conv3×3(3→W)+ReLU ─► 2×AIN-ResBlock(W) ───────────────┐ skip: ResBlock(W)
         avg-pool 2 ─► conv3×3(W→2W)+ReLU ─► 2×AIN-ResBlock(2W) ─┐ skip: ResBlock(2W)
         avg-pool 2 ─► conv3×3(2W→4W)+ReLU ─► 5×AIN-ResBlock(4W)  │
         convT2×2(4W→2W) + skip(2W) ─► 3×AIN-ResBlock(2W)  ◄──────┘
         convT2×2(2W→W)  + skip(W)  ─► 2×AIN-ResBlock(W)   ◄───────────────┘
         ─► conv1×1(W→3) = r;   output = y + r

    AIN(h, σ̂) = IN(h)·(1 + γ) + β,   [γ, β] = conv3×3 ∘ ReLU ∘ conv5×5(σ̂ resized to h)   (parallel heads)
    AIN-ResBlock(h) = h + conv3×3(LReLU(AIN(conv3×3(LReLU(AIN(h))))))     (pre-activation, slope 0.02)

Paper versus released code, and how each is exposed:

* **Coarse estimator scale.** The paper's coarse map is ``σ̂_4`` at 1/4 resolution (its target a
  4×4 average pool of the true map); the released code pools by 4 and then by 2 and outputs
  1/8 (terryoo/AINDNet#6, unanswered). ``coarse_scale=8`` (default, checkpoint layout of the
  release) or ``coarse_scale=4`` (the paper: the same layers without the last 2×2 pooling).
  Both have the same parameters; the estimation loss pools its target to whatever size the
  coarse map has.
* **γ/β heads** are parallel convolutions on a shared trunk as in the release (the paper figure
  draws them in sequence; the authors say parallel works better, terryoo/AINDNet#4).
* **Resizing the noise map** to a feature scale is bilinear as in the release (the paper says
  average pooling). PyTorch's bilinear resize uses half-pixel centres, TensorFlow 1's
  ``resize_bilinear`` does not, so a port of the TF checkpoint differs slightly (not needed
  here: the weights were never released in a form this project can use).

``modulation="in_concat"`` builds the paper's Table 6 baseline instead ("IN + Concat"): every
AIN module is replaced by an instance norm with its own learned per-channel affine, and the
estimated map is concatenated to the noisy image at the input (the first convolution takes
``2·in_channels`` channels); everything else is identical.

Parameter roles (``parameter_groups``):
    first: the first 3×3 convolution.  last: the 1×1 output convolution.
    domain: the paper's transfer set — every AIN module (trunk and both heads), the whole
        noise estimator, and the output convolution (with ``in_concat``: the instance-norm
        affines instead of the AIN modules).
    estimator / ain / tail: the three parts of ``domain`` on their own.
    all: every parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from noiseshift.api import Conditions, Denoiser, InvalidInputError

__all__ = ["AINDNet", "AdaptiveInstanceNorm", "AINResBlock", "NoiseLevelEstimator", "PRESETS", "count_parameters"]

PRESETS: dict[str, dict[str, Any]] = {
    # The paper / released code: 13,764,014 parameters, estimator 29,675.
    "paper": {"width": 64, "ain_hidden": 64, "estimator_width": 32, "blocks": [2, 2, 5, 3, 2]},
    # Trains on a CPU in minutes (tools/studies/ain_transfer.py): 403,518 parameters.
    "small": {"width": 16, "ain_hidden": 16, "estimator_width": 16, "blocks": [1, 1, 2, 1, 1]},
    # Smoke tests.
    "tiny": {"width": 4, "ain_hidden": 4, "estimator_width": 4, "blocks": [1, 1, 1, 1, 1]},
}
"""Named sizes; a preset fills the size arguments the caller leaves as ``None``."""

MODULATIONS: tuple[str, ...] = ("ain", "in_concat")
COARSE_SCALES: tuple[int, ...] = (4, 8)


def _truncated_normal_(weight: torch.Tensor, std: float) -> None:
    """TensorFlow-style truncated normal: redraws outside two standard deviations."""
    nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)


def _variance_scaling_(conv: nn.Conv2d, factor: float = 0.02) -> None:
    """TF1 ``variance_scaling_initializer(factor, FAN_IN, truncated normal)``: std √(1.3·factor/fan_in)."""
    fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    _truncated_normal_(conv.weight, math.sqrt(1.3 * factor / fan_in))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def _glorot_(conv: nn.Conv2d) -> None:
    """TF-slim's default convolution initialiser: Glorot-uniform weights, zero bias."""
    nn.init.xavier_uniform_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def _conv(in_channels: int, out_channels: int, kernel: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=bias)


def _resize(image: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize (half-pixel centres) that leaves same-size inputs untouched."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=tuple(size), mode="bilinear", align_corners=False)


class NoiseLevelEstimator(nn.Module):
    """Two-scale noise-level estimator (scope ``fcn_avg`` of the release).

    Layers (all 3×3, stride 1, same padding, ReLU after every convolution, outputs included)::

        conv1, conv2 (C→E→E) ─► avg-pool 4 ─► conv3, conv4 (E→E) ─► [avg-pool 2 when s = 8]
        ─► conv5 (E→C) = σ̂_coarse at 1/s ─► bilinear to H×W ─► conv6, conv7 (C→C) = σ̂_fine
        σ̂ = λ_ms·up(σ̂_coarse) + (1 − λ_ms)·σ̂_fine

    The fine map is computed from the upsampled coarse map, not from full-resolution features
    (as released). Parameters: ``9·C·E + E + 3·(9·E² + E) + 9·E·C + C + 2·(9·C² + C)`` —
    29,675 for ``C = 3, E = 32``.

    Args:
        channels: image (and noise map) channels ``C``.
        width: feature channels ``E``.
        coarse_scale: 8 (release) or 4 (paper).
        lambda_ms: weight of the upsampled coarse map in the fused map.
    """

    def __init__(self, channels: int = 3, width: int = 32, coarse_scale: int = 8, lambda_ms: float = 0.8) -> None:
        super().__init__()
        self.coarse_scale = coarse_scale
        self.lambda_ms = lambda_ms
        self.conv1 = _conv(channels, width, 3)
        self.conv2 = _conv(width, width, 3)
        self.conv3 = _conv(width, width, 3)
        self.conv4 = _conv(width, width, 3)
        self.conv5 = _conv(width, channels, 3)
        self.conv6 = _conv(channels, channels, 3)
        self.conv7 = _conv(channels, channels, 3)

    def forward(self, noisy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Estimate the noise level.

        Args:
            noisy: ``N×C×H×W`` with ``H, W`` multiples of ``coarse_scale``.

        Returns:
            ``(coarse, fine, fused)``: ``N×C×H/s×W/s``, ``N×C×H×W`` and ``N×C×H×W`` noise std
            estimates (non-negative, image units).
        """
        features = F.relu(self.conv2(F.relu(self.conv1(noisy))))
        features = F.avg_pool2d(features, 4)
        features = F.relu(self.conv4(F.relu(self.conv3(features))))
        if self.coarse_scale == 8:
            features = F.avg_pool2d(features, 2)
        coarse = F.relu(self.conv5(features))
        upsampled = _resize(coarse, noisy.shape[-2:])
        fine = F.relu(self.conv7(F.relu(self.conv6(upsampled))))
        fused = self.lambda_ms * upsampled + (1.0 - self.lambda_ms) * fine
        return coarse, fine, fused


class AdaptiveInstanceNorm(nn.Module):
    """AIN: ``IN(h)·(1 + γ(σ̂)) + β(σ̂)`` with pixel-wise ``γ, β`` from the noise map.

    ``IN`` normalises each image and channel over ``H, W`` (biased variance, ``ε`` inside the
    square root) and has no affine of its own. The noise map is resized bilinearly to the
    feature size by the caller; a 5×5 trunk (``map_channels → hidden``, ReLU) feeds two parallel
    3×3 heads (``hidden → channels``) for ``γ`` and ``β``.

    Args:
        channels: feature channels ``C``.
        map_channels: noise-map channels.
        hidden: trunk width (64 in the paper).
        eps: instance-norm stability constant.
    """

    def __init__(self, channels: int, map_channels: int = 3, hidden: int = 64, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.trunk = _conv(map_channels, hidden, 5)
        self.gamma = _conv(hidden, channels, 3)
        self.beta = _conv(hidden, channels, 3)

    def forward(self, features: torch.Tensor, noise_map: torch.Tensor) -> torch.Tensor:
        """Normalise ``features`` (``N×C×h×w``) and modulate with ``noise_map`` (``N×M×h×w``)."""
        normalized = F.instance_norm(features, eps=self.eps)
        hidden = F.relu(self.trunk(noise_map))
        return normalized * (1.0 + self.gamma(hidden)) + self.beta(hidden)


class _InstanceNormAffine(nn.InstanceNorm2d):
    """Instance norm with a learned per-channel affine, ignoring the noise map (``in_concat``)."""

    def forward(self, features: torch.Tensor, noise_map: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        return super().forward(features)


class AINResBlock(nn.Module):
    """Pre-activation residual block: ``h + conv(LReLU(AIN(conv(LReLU(AIN(h))))))``.

    Args:
        channels: feature channels (unchanged by the block).
        map_channels: noise-map channels.
        hidden: AIN trunk width.
        negative_slope: leaky-ReLU slope (0.02).
        eps: instance-norm constant.
        modulation: ``"ain"``, or ``"in_concat"`` for affine instance norms without the map.
    """

    def __init__(
        self,
        channels: int,
        map_channels: int = 3,
        hidden: int = 64,
        negative_slope: float = 0.02,
        eps: float = 1e-5,
        modulation: str = "ain",
    ) -> None:
        super().__init__()
        self.negative_slope = negative_slope

        def norm() -> nn.Module:
            if modulation == "ain":
                return AdaptiveInstanceNorm(channels, map_channels, hidden, eps)
            return _InstanceNormAffine(channels, eps=eps, affine=True)

        self.norm1 = norm()
        self.conv1 = _conv(channels, channels, 3)
        self.norm2 = norm()
        self.conv2 = _conv(channels, channels, 3)

    def forward(self, features: torch.Tensor, noise_map: torch.Tensor) -> torch.Tensor:
        hidden = self.conv1(F.leaky_relu(self.norm1(features, noise_map), self.negative_slope))
        hidden = self.conv2(F.leaky_relu(self.norm2(hidden, noise_map), self.negative_slope))
        return features + hidden


class _ResBlock(nn.Module):
    """Plain residual block on the skip paths: ``h + conv3×3(ReLU(conv3×3(h)))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv(channels, channels, 3)
        self.conv2 = _conv(channels, channels, 3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.conv2(F.relu(self.conv1(features)))


class _Stage(nn.ModuleList):
    """A sequence of AIN-ResBlocks that all see the same noise map."""

    def forward(self, features: torch.Tensor, noise_map: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for block in self:
            features = block(features, noise_map)
        return features


class AINDNet(Denoiser):
    """AINDNet (Kim et al., CVPR 2020); the paper / released-code network by default.

    Size arguments left as ``None`` come from ``PRESETS[preset]``; explicit values win, and
    ``config()`` records every resolved value.

    ==========  =====  ==========  =========  ===============  ==========================
    preset      width  ain_hidden  estimator  blocks           parameters (estimator)
    ==========  =====  ==========  =========  ===============  ==========================
    ``paper``   64     64          32         2/2/5/3/2        13,764,014 (29,675)
    ``small``   16     16          16         1/1/2/1/1        403,518 (8,011)
    ``tiny``    4      4           4          1/1/1/1/1        21,058 (835)
    ==========  =====  ==========  =========  ===============  ==========================

    (Three input channels, ``modulation="ain"``; ``count_parameters`` gives any other.)

    Initialisation follows the release: AIN and AIN-ResBlock convolutions use TF1's
    variance-scaling initialiser with factor 0.02 (truncated normal, std √(0.026/fan_in), so
    each block starts close to the identity), transposed convolutions a truncated normal with
    std 0.02, everything else Glorot-uniform; biases are zero. Draws come from torch's global
    RNG: call ``torch.manual_seed`` before construction for reproducible weights.

    Every ``forward`` sets ``aux_outputs``: ``sigma`` (the fused estimate ``σ̂``, ``N×C×H×W``),
    ``sigma_fine`` (``N×C×H×W``) and ``sigma_coarse`` (``N×C×H/s×W/s``), noise standard
    deviations in image units, for the estimation loss (``ms_asymm``) and for inspection.

    Args:
        in_channels: image channels (3 for sRGB); the output has as many.
        out_channels: must equal ``in_channels`` (global residual).
        width: channels at full resolution ``W`` (``2W`` and ``4W`` below).
        ain_hidden: width of every AIN trunk.
        estimator_width: feature channels of the noise-level estimator.
        blocks: AIN-ResBlocks per stage: encoder 1, encoder 2, bottleneck, decoder 2, decoder 1.
        coarse_scale: 8 (release, default) or 4 (paper); see the module docstring.
        lambda_ms: weight of the coarse map in the fused estimate (0.8).
        negative_slope: leaky-ReLU slope inside the AIN-ResBlocks (0.02).
        eps: instance-norm ε (1e-5).
        modulation: ``"ain"`` or ``"in_concat"`` (the paper's Table 6 baseline).
        preset: ``"paper"``, ``"small"`` or ``"tiny"``.

    Raises:
        InvalidInputError: unknown preset, modulation or coarse scale, non-positive sizes, a
            ``blocks`` list that is not five non-negative counts, or ``out_channels != in_channels``.
    """

    name: ClassVar[str] = "aindnet"
    smoke_config: ClassVar[dict[str, Any]] = {"preset": "tiny"}

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int | None = None,
        ain_hidden: int | None = None,
        estimator_width: int | None = None,
        blocks: Sequence[int] | None = None,
        coarse_scale: int = 8,
        lambda_ms: float = 0.8,
        negative_slope: float = 0.02,
        eps: float = 1e-5,
        modulation: str = "ain",
        preset: str = "paper",
    ) -> None:
        super().__init__()
        resolved = _resolve(
            in_channels=in_channels, out_channels=out_channels, width=width, ain_hidden=ain_hidden,
            estimator_width=estimator_width, blocks=blocks, coarse_scale=coarse_scale, lambda_ms=lambda_ms,
            negative_slope=negative_slope, eps=eps, modulation=modulation, preset=preset,
        )
        self._resolved = resolved
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = coarse_scale  # ≥ the U-Net's 4 for both scales
        self.modulation = modulation
        width, hidden = resolved["width"], resolved["ain_hidden"]
        counts = resolved["blocks"]
        widths = (width, 2 * width, 4 * width)

        def stage(channels: int, count: int) -> _Stage:
            return _Stage(
                AINResBlock(channels, in_channels, hidden, negative_slope, eps, modulation) for _ in range(count)
            )

        self.estimator = NoiseLevelEstimator(in_channels, resolved["estimator_width"], coarse_scale, lambda_ms)
        head_in = 2 * in_channels if modulation == "in_concat" else in_channels
        self.head1 = _conv(head_in, widths[0], 3)
        self.encoder1 = stage(widths[0], counts[0])
        self.head2 = _conv(widths[0], widths[1], 3)
        self.encoder2 = stage(widths[1], counts[1])
        self.head3 = _conv(widths[1], widths[2], 3)
        self.bottleneck = stage(widths[2], counts[2])
        self.up2 = nn.ConvTranspose2d(widths[2], widths[1], kernel_size=2, stride=2, bias=False)
        self.skip2 = _ResBlock(widths[1])
        self.decoder2 = stage(widths[1], counts[3])
        self.up1 = nn.ConvTranspose2d(widths[1], widths[0], kernel_size=2, stride=2, bias=False)
        self.skip1 = _ResBlock(widths[0])
        self.decoder1 = stage(widths[0], counts[4])
        self.tail = _conv(widths[0], out_channels, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.ConvTranspose2d):
                _truncated_normal_(module.weight, 0.02)
            elif isinstance(module, (AdaptiveInstanceNorm, AINResBlock)):
                for conv in module.children():
                    if isinstance(conv, nn.Conv2d):
                        _variance_scaling_(conv)
            elif isinstance(module, (NoiseLevelEstimator, _ResBlock)):
                for conv in module.children():
                    _glorot_(conv)
        for conv in (self.head1, self.head2, self.head3, self.tail):
            _glorot_(conv)

    def config(self) -> dict[str, Any]:
        """Every constructor argument, resolved (preset values filled in), JSON-serialisable."""
        return {key: list(value) if isinstance(value, (list, tuple)) else value for key, value in self._resolved.items()}

    def forward(self, noisy: torch.Tensor, cond: Conditions | None = None) -> torch.Tensor:
        """Denoise a batch and record the noise-level estimate in ``aux_outputs``.

        Args:
            noisy: ``N×in_channels×H×W`` float tensor in ``[0, 1]``, ``H`` and ``W`` multiples
                of ``size_multiple`` (= ``coarse_scale``; ``noiseshift.inference`` pads).
            cond: ignored (AINDNet is blind: it estimates its own noise map).

        Returns:
            ``N×out_channels×H×W`` clean estimate (not clipped), ``noisy + residual``.

        Raises:
            InvalidInputError: malformed input or a size that is not a multiple of ``size_multiple``.
        """
        self.check_input(noisy)
        height, width = noisy.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise InvalidInputError(
                f"aindnet: height and width must be multiples of size_multiple={self.size_multiple} "
                f"(the estimator's 1/{self.size_multiple} scale), got {height}×{width}; pad the input first "
                f"(noiseshift.inference pads automatically)"
            )
        coarse, fine, fused = self.estimator(noisy)
        self.aux_outputs = {"sigma": fused, "sigma_fine": fine, "sigma_coarse": coarse}
        half = _resize(fused, (height // 2, width // 2))
        quarter = _resize(fused, (height // 4, width // 4))

        head_input = torch.cat([noisy, fused], dim=1) if self.modulation == "in_concat" else noisy
        enc1 = self.encoder1(F.relu(self.head1(head_input)), fused)
        enc2 = self.encoder2(F.relu(self.head2(F.avg_pool2d(enc1, 2))), half)
        features = self.bottleneck(F.relu(self.head3(F.avg_pool2d(enc2, 2))), quarter)
        features = self.decoder2(self.up2(features) + self.skip2(enc2), half)
        features = self.decoder1(self.up1(features) + self.skip1(enc1), fused)
        return noisy + self.tail(features)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by role; see the module docstring."""
        norms = [m for m in self.modules() if isinstance(m, (AdaptiveInstanceNorm, _InstanceNormAffine))]
        return self.groups_from_modules(
            first=self.head1,
            last=self.tail,
            domain=[*norms, self.estimator, self.tail],
            estimator=[self.estimator],
            ain=norms,
            tail=[self.tail],
        )


def _resolve(**args: Any) -> dict[str, Any]:
    preset = args["preset"]
    if preset not in PRESETS:
        raise InvalidInputError(f"aindnet: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    for key in ("width", "ain_hidden", "estimator_width", "blocks"):
        if args[key] is None:
            args[key] = PRESETS[preset][key]
    if args["modulation"] not in MODULATIONS:
        raise InvalidInputError(f"aindnet: modulation must be one of {list(MODULATIONS)}, got {args['modulation']!r}")
    if args["coarse_scale"] not in COARSE_SCALES:
        raise InvalidInputError(
            f"aindnet: coarse_scale must be 8 (released code) or 4 (paper), got {args['coarse_scale']!r}"
        )
    for key in ("in_channels", "width", "ain_hidden", "estimator_width"):
        if not isinstance(args[key], int) or isinstance(args[key], bool) or args[key] < 1:
            raise InvalidInputError(f"aindnet: {key} must be a positive integer, got {args[key]!r}")
    if args["out_channels"] != args["in_channels"]:
        raise InvalidInputError(
            f"aindnet: the global residual adds the input to the output, so out_channels must equal "
            f"in_channels (got {args['out_channels']} and {args['in_channels']})"
        )
    blocks = args["blocks"]
    if (
        isinstance(blocks, (str, bytes)) or len(list(blocks)) != 5
        or any(not isinstance(b, int) or isinstance(b, bool) or b < 0 for b in blocks)
    ):
        raise InvalidInputError(
            f"aindnet: blocks must be five non-negative counts (encoder 1, encoder 2, bottleneck, "
            f"decoder 2, decoder 1), got {blocks!r}"
        )
    args["blocks"] = [int(b) for b in blocks]
    if not 0.0 <= float(args["lambda_ms"]) <= 1.0:
        raise InvalidInputError(f"aindnet: lambda_ms must be in [0, 1], got {args['lambda_ms']!r}")
    if not float(args["eps"]) > 0:
        raise InvalidInputError(f"aindnet: eps must be > 0, got {args['eps']!r}")
    return args


def count_parameters(**config: Any) -> dict[str, int]:
    """Parameter counts of an ``AINDNet(**config)``, by part, without allocating any weights.

    Builds the model on PyTorch's ``meta`` device (shapes only), so the 13.8 M paper preset
    costs milliseconds.

    Returns:
        ``{"total", "estimator", "ain", "tail", "domain"}``.
    """
    with torch.device("meta"):
        model = AINDNet(**config)
    groups = model.parameter_groups()
    counts = {role: sum(p.numel() for p in groups[role]) for role in ("estimator", "ain", "tail", "domain")}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
