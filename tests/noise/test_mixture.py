"""The ``mixture`` noise model: one component per image, drawn with the given weights."""

from __future__ import annotations

import pytest
import torch

from noiseshift.errors import InvalidInputError
from noiseshift.noise_model import NoiseModel
from noiseshift.registry import NOISE_MODELS
from noiseshift.testing import check_noise_model
from noiseshift.types import NoisySample


def test_conformance() -> None:
    check_noise_model(NOISE_MODELS.lookup("mixture"))


def test_components_are_chosen_per_image_with_the_weights() -> None:
    model = NOISE_MODELS.build({"type": "mixture", "weights": [3, 1], "components": [
        {"type": "gaussian", "sigma": 0.1}, {"type": "gaussian", "sigma": 0.3}]})
    clean = torch.full((2000, 1, 8, 8), 0.5)
    drawn = model(clean, torch.Generator().manual_seed(0))
    chosen = drawn.meta["component"]
    assert abs(float((chosen == 0).float().mean()) - 0.75) < 0.04
    # Each image carries its component's noise level, in the image and in the σ map.
    std = (drawn.noisy - clean).flatten(1).std(dim=1)
    assert torch.all((std < 0.2) == (chosen == 0))
    assert torch.equal(drawn.sigma[:, 0, 0, 0], torch.where(chosen == 0, 0.1, 0.3))
    assert drawn.sigma.shape == clean.shape


def test_a_zero_weight_component_is_never_used_and_config_rebuilds() -> None:
    model = NOISE_MODELS.build({"type": "mixture", "weights": [0, 1]})
    clean = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    drawn = model(clean, torch.Generator().manual_seed(2))
    assert torch.all(drawn.meta["component"] == 1)
    again = NOISE_MODELS.build({"type": "mixture", **model.config()})
    assert torch.equal(again(clean, torch.Generator().manual_seed(2)).noisy, drawn.noisy)


def test_sigma_is_none_when_a_chosen_component_has_none() -> None:
    class Blank(NoiseModel):
        name = "blank"

        def sample(self, clean, generator):
            return NoisySample(noisy=clean + 0.01)

    model = NOISE_MODELS.build({"type": "mixture", "components": [Blank()]})
    assert model(torch.rand(2, 3, 4, 4), torch.Generator()).sigma is None


@pytest.mark.parametrize("options, message", [
    ({"components": []}, "non-empty list"),
    ({"components": [{"sigma": 0.1}]}, "dict with 'type'"),
    ({"components": [{"type": "mixture"}]}, "cannot itself be a mixture"),
    ({"weights": [1, 2, 3]}, "3 weights for 2 components"),
    ({"weights": [0, 0]}, "not all zero"),
    ({"weights": [1, -1]}, ">= 0"),
])
def test_bad_options_are_named(options, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        NOISE_MODELS.build({"type": "mixture", **options})
