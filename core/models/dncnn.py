"""DnCNN: a plain deep CNN that learns the noise residual.

Reference:
    K. Zhang, W. Zuo, Y. Chen, D. Meng and L. Zhang, "Beyond a Gaussian Denoiser: Residual
    Learning of Deep CNN for Image Denoising", IEEE Transactions on Image Processing 26(7),
    2017. https://doi.org/10.1109/TIP.2017.2662206

The constructor defaults are the paper's colour blind model CDnCNN-B: 20 layers of 3×3
convolutions with 64 channels, batch normalisation in the 18 middle layers, and residual
learning (the network predicts the noise, which is subtracted from the input).

Layout (``depth`` layers in total)::

    noisy ─► conv3×3(C→W) + ReLU                           head   (the "first" layer)
          ─► (depth−2) × [conv3×3(W→W) + BN + ReLU]         body
          ─► conv3×3(W→C)                                   tail   (the "last" layer)
          = predicted noise v;   output = noisy − v
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..denoiser import Denoiser
from ..errors import InvalidInputError
from ..types import Conditions

__all__ = ["DnCNN"]


class DnCNN(Denoiser):
    """DnCNN (Zhang et al., TIP 2017), blind colour configuration CDnCNN-B by default.

    Parameter count of the defaults (``in_channels=out_channels=3, depth=20, width=64,
    batch_norm=True``): **669,376** —
    head ``3·64·9 + 64 = 1,792``; body ``18 · (64·64·9 + 2·64) = 665,856`` (bias-free
    convolutions, the BN affine pairs); tail ``64·3·9 = 1,728`` (no bias). The grayscale
    DnCNN-S/B (``in_channels=out_channels=1``, depth 17 / 20) is the same class with other
    arguments.

    Details that follow the authors' code rather than the paper text:

    * the middle convolutions have no bias when followed by batch normalisation (BN's shift
      makes it redundant), and the output convolution never has one (the predicted noise is
      zero-mean);
    * BatchNorm uses ``eps=1e-4`` as in the authors' PyTorch re-implementation; its running-
      average momentum is PyTorch's default (0.1), because their ``momentum=0.95`` is a
      MatConvNet-style value that in PyTorch would weight the *new* batch by 95 %.

    Initialisation: convolution weights use He (Kaiming) normal initialisation as in the paper
    (fan-in, ReLU gain), biases are zero, BN scales one and shifts zero. It draws from torch's
    global RNG, so call ``torch.manual_seed`` before construction for reproducible weights.

    Parameter roles (``parameter_groups``):
        first: the head convolution.
        last: the tail (output) convolution.
        domain: every BatchNorm's affine scale and shift, plus the tail convolution — the
            normalisation-modulation and output layer that AIN-style transfer learning updates.
            Without batch normalisation it is the tail convolution only.

    Args:
        in_channels: channels of the noisy input (3 for sRGB, 1 for grayscale).
        out_channels: channels of the output; must equal ``in_channels`` when ``residual``.
        depth: total number of convolution layers (at least 2: head and tail).
        width: feature channels of the hidden layers.
        batch_norm: insert BatchNorm after each middle convolution.
        residual: predict the noise and subtract it from the input (residual learning); when
            ``False`` the network outputs the clean estimate directly.

    Raises:
        InvalidInputError: for a depth below 2, a non-positive width or channel count, or
            ``residual`` with ``in_channels != out_channels``.
    """

    name = "dncnn"
    size_multiple = 1
    smoke_config: ClassVar[dict[str, Any]] = {"depth": 5, "width": 16}  # conformance and sweep tests

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        depth: int = 20,
        width: int = 64,
        batch_norm: bool = True,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise InvalidInputError(f"dncnn: depth must be at least 2 (head + tail), got {depth}")
        if width < 1 or in_channels < 1 or out_channels < 1:
            raise InvalidInputError(
                f"dncnn: width and channel counts must be positive, got width={width}, "
                f"in_channels={in_channels}, out_channels={out_channels}"
            )
        if residual and in_channels != out_channels:
            raise InvalidInputError(
                f"dncnn: residual learning subtracts the predicted noise from the input, so it "
                f"needs in_channels == out_channels (got {in_channels} and {out_channels}); "
                f"pass residual=False for a channel-changing model"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.residual = residual

        self.head = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, padding=1, bias=True),
            nn.ReLU(inplace=True),
        )
        body: list[nn.Module] = []
        for _ in range(depth - 2):
            layer: list[nn.Module] = [
                nn.Conv2d(width, width, kernel_size=3, padding=1, bias=not batch_norm)
            ]
            if batch_norm:
                layer.append(nn.BatchNorm2d(width, eps=1e-4))
            layer.append(nn.ReLU(inplace=True))
            body.append(nn.Sequential(*layer))
        self.body = nn.Sequential(*body)
        self.tail = nn.Conv2d(width, out_channels, kernel_size=3, padding=1, bias=False)

        self._init_weights()

    def _init_weights(self) -> None:
        """He-normal convolutions, zero biases, identity BatchNorm affine parameters."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, noisy: torch.Tensor, cond: Conditions | None = None) -> torch.Tensor:
        """Denoise a batch.

        Args:
            noisy: ``N×in_channels×H×W`` float tensor, nominally in ``[0, 1]``; any ``H, W``.
            cond: ignored (DnCNN-B is blind: it declares no conditions).

        Returns:
            ``N×out_channels×H×W`` clean estimate (not clipped): ``noisy − v`` with ``v`` the
            predicted noise when ``residual``, else the network output itself.
        """
        self.check_input(noisy)
        predicted = self.tail(self.body(self.head(noisy)))
        return noisy - predicted if self.residual else predicted

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by role; see the class docstring for what each role holds."""
        norms = [module for module in self.body.modules() if isinstance(module, nn.BatchNorm2d)]
        return self.groups_from_modules(
            first=self.head[0],
            last=self.tail,
            domain=[*norms, self.tail],
        )
