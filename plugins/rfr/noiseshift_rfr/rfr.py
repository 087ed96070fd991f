"""RFR — Restore-from-Restored (Lee, Lee, Cho, Kim & Kim): single-image test-time fine-tuning.

Algorithm (the paper's Algorithm 1):

1. pseudo-clean ``X̃ = f_θ(Y)`` from the pretrained weights, computed once per image;
2. ``M`` times: draw fresh noise ``N`` from the pretraining noise mechanism, apply a random
   flip / rotation jointly to input and target, take one Adam step on ``‖f_θ(X̃ + N) − X̃‖²``;
3. output ``f_θ*(Y)``; the weights are then restored (episodic).

A fully convolutional network treats the re-noised self-similar patches of ``X̃`` as a small
training set, so the adapted network averages them (the paper's Eqs. 2–3).

Implementation choices (the paper leaves them open; the first author's video-RFR code is the
reference for the conventions marked "video code"):

* ``X̃`` is clipped to ``[0, 1]``, and so is ``X̃ + N`` (``clip=True``; video code): real noisy
  inputs are valid images too.
* The flip / rotation is one of the 8 dihedral transforms, drawn per step, applied to ``X̃``
  before the noise is added. For i.i.d. noise this is the same as transforming input and target
  jointly; for camera noise models (CBDNet) the fresh draw is equally valid.
* The backbone stays in eval mode (video code): normalisation statistics are not re-estimated
  from one image.
* Large images: ``crop`` adapts on a random ``crop×crop`` window of ``X̃`` per step (the whole
  image's self-similarity is still used across steps, while the backward pass needs memory for
  one crop only), and ``tile`` runs the final ``f_θ*(Y)`` tile by tile
  (``noiseshift.inference.tiled_denoise``). The alternative — the CLI's ``--tile`` — adapts
  separately on every tile, ``M`` steps each, which is slower and sees less of the image.
* When the backbone reads a ``sigma`` condition and the noise model returns a σ map, the map of
  the drawn noise is given to the backbone during adaptation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from noiseshift.api import (
    LOSSES,
    NOISE_MODELS,
    AdaptedDenoiser,
    Conditions,
    Denoiser,
    InvalidInputError,
    NoiseModel,
    TestTimeAdapter,
)
from noiseshift.inference import denoise_padded, tiled_denoise

__all__ = ["RFR", "DEFAULT_NOISE"]

DEFAULT_NOISE: dict[str, Any] = {"type": "gaussian", "sigma": [0.0, 50 / 255]}
"""The paper's Gaussian setting with an unknown level: σ drawn from ``U[0, 50/255]`` per step."""


def _build_noise(spec: str | Mapping[str, Any] | NoiseModel) -> tuple[NoiseModel, Any]:
    """The noise model and its JSON form (``spec`` as given, or the instance's config)."""
    if isinstance(spec, NoiseModel):
        return spec, {"type": spec.name, **spec.config()}
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
        raise InvalidInputError(
            f"rfr: noise must be a noise model name or config such as {{'type': 'gaussian', 'sigma': 0.1}}, "
            f"got {spec!r}"
        )
    return NOISE_MODELS.build(dict(spec)), dict(spec)


def _build_pixel_loss(spec: str | Mapping[str, Any]) -> Any:
    config = {"type": spec} if isinstance(spec, str) else dict(spec)
    if not isinstance(config.get("type"), str):
        raise InvalidInputError(f"rfr: loss must be a registry name or config, got {spec!r}")
    component = LOSSES.lookup(config["type"])
    if getattr(component, "self_supervised", False):
        raise InvalidInputError(
            f"rfr: loss {config['type']!r} is self-supervised; RFR compares f(X̃ + N) with the pseudo-clean X̃ "
            "and needs a pixel loss such as 'l2' or 'l1'"
        )
    if isinstance(component, type):
        return LOSSES.build(config)
    if len(config) > 1:
        raise InvalidInputError(f"rfr: loss {config['type']!r} is a function and takes no options")
    return component


def _dihedral(x: torch.Tensor, quarter_turns: int, flip: bool) -> torch.Tensor:
    x = x.flip(-1) if flip else x
    return torch.rot90(x, quarter_turns, dims=(-2, -1)) if quarter_turns else x


class RFR(TestTimeAdapter):
    """Restore-from-Restored: fine-tune on re-noised copies of the network's own output.

    Args:
        steps: fine-tuning iterations ``M`` per image (paper: 10, 20 or 40; 40 in most tables).
        lr: Adam learning rate (paper: ``1e-5`` for real noise; not stated for Gaussian, where
            the authors' video code also uses ``1e-5``).
        noise: the pretraining noise mechanism, as a ``NOISE_MODELS`` config: Gaussian with the
            true σ (``{"type": "gaussian", "sigma": 25/255}``), with an unknown σ
            (``{"type": "gaussian", "sigma": [0, 50/255]}``, the default), or CBDNet's camera
            noise for real photographs (``{"type": "cbdnet"}`` from the ``cbdnet_noise`` plugin,
            e.g. with ``"crf_dir"``); any registered noise model works.
        loss: a pixel loss from ``LOSSES`` (``"l2"``, the paper's MSE; ``"l1"`` also allowed).
        role: the backbone parameters that train (``"all"``, as in the paper; ``"last"`` etc.
            for cheaper variants).
        augment: random flip / rotation of each pseudo pair.
        crop: adapt on a random ``crop×crop`` window per step (rounded down to the backbone's
            size multiple; ``None``: the whole image).
        tile: run the final prediction in ``tile×tile`` tiles with ``overlap`` pixels of overlap
            (``None``: the whole image at once).
        overlap: tile overlap of the final prediction.
        clip: clip ``X̃`` and ``X̃ + N`` to ``[0, 1]``.
        seed: seed of the noise / crop / transform generator (reset per image).
    """

    name: ClassVar[str] = "rfr"
    smoke_config: ClassVar[dict[str, Any]] = {"steps": 2, "lr": 1e-4}

    def __init__(
        self,
        *,
        steps: int = 40,
        lr: float = 1e-5,
        noise: str | Mapping[str, Any] | NoiseModel | None = None,
        loss: str | Mapping[str, Any] = "l2",
        role: str = "all",
        augment: bool = True,
        crop: int | None = None,
        tile: int | None = None,
        overlap: int = 32,
        clip: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(steps=steps, lr=lr, seed=seed)
        for label, value in (("crop", crop), ("tile", tile)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
                raise InvalidInputError(f"rfr: {label} must be None or an integer >= 2, got {value!r}")
        if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
            raise InvalidInputError(f"rfr: overlap must be an integer >= 0, got {overlap!r}")
        if tile is not None and tile <= 2 * overlap:
            raise InvalidInputError(f"rfr: tile={tile} must exceed 2*overlap={2 * overlap}; lower overlap")
        if not isinstance(role, str) or not role:
            raise InvalidInputError(f"rfr: role must be a parameter role name, got {role!r}")
        self.noise_model, self.noise_spec = _build_noise(DEFAULT_NOISE if noise is None else noise)
        self.pixel_loss = _build_pixel_loss(loss)
        self.loss_spec: Any = loss if isinstance(loss, str) else dict(loss)
        self.role = role
        self.augment = bool(augment)
        self.crop = crop
        self.tile = tile
        self.overlap = overlap
        self.clip = bool(clip)
        self._pseudo_clean: torch.Tensor | None = None

    @property
    def trainable(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.role,)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(), "noise": self.noise_spec, "loss": self.loss_spec, "role": self.role,
            "augment": self.augment, "crop": self.crop, "tile": self.tile, "overlap": self.overlap,
            "clip": self.clip,
        }

    def wrap(self, backbone: Denoiser) -> AdaptedDenoiser:
        """Bind to ``backbone``: a differentiable network mapping C channels to C channels."""
        if isinstance(backbone, Denoiser):
            if not getattr(backbone, "trainable", True):
                raise InvalidInputError(
                    f"adapter 'rfr' fine-tunes the backbone, but {backbone.name or type(backbone).__name__!r} is a "
                    "parameter-free denoiser (trainable=False); use a network backbone"
                )
            if backbone.in_channels != backbone.out_channels:
                raise InvalidInputError(
                    f"adapter 'rfr' feeds the re-noised output back into the backbone, so it needs as many output "
                    f"as input channels (got {backbone.in_channels} -> {backbone.out_channels})"
                )
            wanted = self.noise_model.in_channels
            if wanted is not None and wanted != backbone.in_channels:
                raise InvalidInputError(
                    f"adapter 'rfr': noise model {self.noise_model.name!r} works on {wanted}-channel images but the "
                    f"backbone takes {backbone.in_channels} channels"
                )
        return super().wrap(backbone)

    # -- the TestTimeAdapter steps ---------------------------------------------------------

    def configure(self, backbone: Denoiser, noisy: torch.Tensor, cond: Conditions | None) -> list[torch.Tensor]:
        """Compute the pseudo-clean ``X̃`` with the pretrained weights; the role's weights train."""
        with torch.no_grad():
            pseudo = denoise_padded(backbone, noisy, cond)
        self._pseudo_clean = (pseudo.clamp(0, 1) if self.clip else pseudo).detach()
        params = backbone.parameters_for(self.role)
        if not params:
            raise InvalidInputError(
                f"adapter 'rfr': {backbone.name or type(backbone).__name__} has no parameters in role {self.role!r}"
            )
        for param in params:
            param.requires_grad_(True)
        return list(params)

    def _crop_window(self, backbone: Denoiser, height: int, width: int) -> tuple[int, int]:
        multiple = backbone.size_multiple
        size = self.crop if self.crop is not None else max(height, width)
        crop_h = max(min(size, height) // multiple * multiple, min(multiple, height))
        crop_w = max(min(size, width) // multiple * multiple, min(multiple, width))
        return crop_h, crop_w

    def loss(
        self,
        backbone: Denoiser,
        noisy: torch.Tensor,
        cond: Conditions | None,
        params: list[torch.Tensor],
        generator: torch.Generator,
    ) -> torch.Tensor:
        """``loss(f(T(X̃) + N), T(X̃))`` for a fresh noise draw ``N`` and a random transform ``T``."""
        assert self._pseudo_clean is not None, "configure() computes the pseudo-clean image first"
        target = self._pseudo_clean
        height, width = target.shape[-2:]
        maps = {
            key: value for key, value in (cond or {}).items()
            if isinstance(value, torch.Tensor) and value.dim() >= 3 and tuple(value.shape[-2:]) == (height, width)
        }
        if self.crop is not None and (self.crop < height or self.crop < width):
            crop_h, crop_w = self._crop_window(backbone, height, width)
            top = int(torch.randint(height - crop_h + 1, (1,), generator=generator, device=generator.device))
            left = int(torch.randint(width - crop_w + 1, (1,), generator=generator, device=generator.device))
            window = (..., slice(top, top + crop_h), slice(left, left + crop_w))
            target = target[window]
            maps = {key: value[window] for key, value in maps.items()}
        if self.augment:
            draw = torch.randint(8, (1,), generator=generator, device=generator.device)
            turns, flip = int(draw) % 4, bool(int(draw) // 4)
            target = _dihedral(target, turns, flip)
            maps = {key: _dihedral(value, turns, flip) for key, value in maps.items()}
        sample = self.noise_model(target, generator)
        pseudo_noisy = sample.noisy.clamp(0, 1) if self.clip else sample.noisy
        step_cond: dict[str, Any] = {**(cond or {}), **maps}
        if "sigma" in backbone.conditions and sample.sigma is not None:
            step_cond["sigma"] = sample.sigma
        output = denoise_padded(backbone, pseudo_noisy, step_cond or None)
        return self.pixel_loss(output, target)

    def predict(
        self,
        backbone: Denoiser,
        noisy: torch.Tensor,
        cond: Conditions | None,
        params: list[torch.Tensor],
    ) -> torch.Tensor:
        """``f_θ*(Y)``, whole or tiled."""
        if self.tile is not None and (noisy.shape[-2] > self.tile or noisy.shape[-1] > self.tile):
            return tiled_denoise(backbone, noisy, cond, tile=self.tile, overlap=self.overlap)
        return denoise_padded(backbone, noisy, cond)

    def adapt_and_denoise(
        self, backbone: Denoiser, noisy: torch.Tensor, cond: Conditions | None
    ) -> torch.Tensor:
        try:
            return super().adapt_and_denoise(backbone, noisy, cond)
        finally:
            self._pseudo_clean = None  # no image data outlives its episode
