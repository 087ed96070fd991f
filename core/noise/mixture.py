"""A mixture of noise models: each image gets its noise from one component, drawn at random.

Blind denoisers meant for "whatever noise a user has" are trained on several noise families at
once (e.g. AWGN of any level *and* signal-dependent Poisson-Gaussian noise); ``Mixture`` picks
one component per image with the given probabilities and applies it to that image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..errors import InvalidInputError
from ..noise_model import NoiseModel
from ..types import NoisySample

__all__ = ["Mixture"]

_DEFAULT_COMPONENTS: tuple[dict[str, Any], ...] = (
    {"type": "gaussian", "sigma": [0.0, 50 / 255]},
    {"type": "poisson_gaussian"},
)


class Mixture(NoiseModel):
    """Per-image random choice among noise models.

    Image ``i`` of a batch uses component ``k_i`` drawn from ``weights``; the components then
    draw their own parameters and noise, in component order, from the same generator, so one
    seed fixes everything.

    Args:
        components: the noise models, as instances or registry configs
            (``dict(type='gaussian', sigma=[0, 50/255])``). Default: blind Gaussian with
            σ ∈ [0, 50/255] and CBDNet-range Poisson-Gaussian, with equal weights.
        weights: relative probabilities, one per component (normalised; default equal).

    The returned ``NoisySample`` holds:
        noisy: ``N×C×H×W``, same dtype and device as ``clean``.
        sigma: ``N×C×H×W`` per-pixel σ when every component provides one, else ``None``.
        meta: ``{"component": N-vector of the chosen component indices}``.

    Raises:
        InvalidInputError: no components, components of different domains, weights that do
            not match the components or are negative / all zero.
    """

    name = "mixture"
    domain = "srgb"

    def __init__(
        self,
        components: Sequence[NoiseModel | Mapping[str, Any]] = _DEFAULT_COMPONENTS,
        weights: Sequence[float] | None = None,
    ) -> None:
        from noiseshift.registry import NOISE_MODELS

        if isinstance(components, (str, Mapping)) or not components:
            raise InvalidInputError("noise model 'mixture': components must be a non-empty list of noise models")
        models: list[NoiseModel] = []
        for item in components:
            if isinstance(item, NoiseModel):
                models.append(item)
            elif isinstance(item, Mapping) and "type" in item:
                if item["type"] in {self.name, f"noiseshift.{self.name}"}:
                    raise InvalidInputError("noise model 'mixture': a component cannot itself be a mixture")
                models.append(NOISE_MODELS.build(dict(item)))
            else:
                raise InvalidInputError(
                    f"noise model 'mixture': each component must be a NoiseModel or a dict with 'type', got {item!r}"
                )
        domains = {m.domain for m in models}
        if len(domains) != 1:
            raise InvalidInputError(f"noise model 'mixture': components mix domains {sorted(domains)}")
        channels = {m.in_channels for m in models} - {None}
        if len(channels) > 1:
            raise InvalidInputError(f"noise model 'mixture': components expect different channel counts {sorted(channels)}")
        if weights is None:
            weights = [1.0] * len(models)
        weights = [float(w) for w in weights]
        if len(weights) != len(models):
            raise InvalidInputError(
                f"noise model 'mixture': {len(weights)} weights for {len(models)} components"
            )
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise InvalidInputError(f"noise model 'mixture': weights must be >= 0 and not all zero, got {weights}")
        self.components = models
        self.weights = weights
        self.domain = domains.pop()  # type: ignore[misc]
        self.in_channels = channels.pop() if channels else None  # type: ignore[misc]

    def sample(self, clean: torch.Tensor, generator: torch.Generator | None) -> NoisySample:
        """Choose a component per image and apply it; see the class docstring."""
        batch = clean.shape[0]
        probabilities = torch.tensor(self.weights, dtype=torch.float64, device=clean.device)
        choice = torch.multinomial(probabilities, batch, replacement=True, generator=generator)
        noisy = torch.empty_like(clean)
        sigma: torch.Tensor | None = torch.empty_like(clean)
        for index, model in enumerate(self.components):
            rows = (choice == index).nonzero().flatten()
            if rows.numel() == 0:
                continue
            drawn = model(clean.index_select(0, rows), generator)
            noisy.index_copy_(0, rows, drawn.noisy)
            if drawn.sigma is None:
                sigma = None
            elif sigma is not None:
                sigma.index_copy_(0, rows, drawn.sigma.expand(rows.numel(), *clean.shape[1:]).to(clean.dtype))
        return NoisySample(noisy=noisy, sigma=sigma, meta={"component": choice})

    def config(self) -> dict[str, Any]:
        """Constructor arguments: component configs (``type`` + their ``config()``) and weights."""
        return {
            "components": [{"type": m.name, **m.config()} for m in self.components],
            "weights": list(self.weights),
        }
