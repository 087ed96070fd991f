"""Losses that supervise a backbone's auxiliary output (a noise-level estimate) with the true σ map."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
import torch
from torch import nn

from noiseshift.denoiser import Denoiser
from noiseshift.errors import InvalidInputError
from noiseshift.testing import temporary_plugin
from noiseshift.training import Trainer

SEEN: list[dict] = []


class EstimatingNet(Denoiser):
    """A 1-conv denoiser that also predicts a noise map, like AINDNet's estimator."""

    name: ClassVar[str] = "estimating_net_for_tests"

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 3, 3, padding=1)
        self.estimator = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, noisy: torch.Tensor, cond=None) -> torch.Tensor:
        self.aux_outputs = {"sigma": self.estimator(noisy)}
        return noisy - self.body(noisy)

    def parameter_groups(self):
        return self.groups_from_modules(self.body, self.body, [self.estimator])


class MapLoss(nn.Module):
    """L1 on the image plus L1 of the estimate against the true map; records what it saw."""

    name: ClassVar[str] = "map_loss_for_tests"
    needs_noise_map: ClassVar[bool] = True

    def forward(self, output, clean, *, aux, sigma):
        if "sigma" not in aux:
            raise InvalidInputError("map_loss_for_tests needs a backbone with a 'sigma' auxiliary output")
        SEEN.append({"aux": aux["sigma"].detach().clone(), "sigma": sigma.detach().clone(), "shape": output.shape})
        return (output - clean).abs().mean() + (aux["sigma"] - sigma).abs().mean()


def test_forward_with_aux_returns_a_copy_of_this_calls_outputs() -> None:
    net = EstimatingNet()
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    output, aux = net.forward_with_aux(image)
    assert output.shape == image.shape and set(aux) == {"sigma"} and aux["sigma"].shape == image.shape
    from noiseshift.registry import DENOISERS

    plain = DENOISERS.build({"type": "dncnn", "depth": 2, "width": 4})
    assert plain.forward_with_aux(image)[1] == {}


def test_the_trainer_feeds_the_true_noise_map_and_the_estimate(tiny_config, tmp_path: Path) -> None:
    SEEN.clear()
    config = tiny_config(iters=3, interval=3, ema="None", extra="model = dict(type='estimating_net_for_tests')\n")
    with temporary_plugin(EstimatingNet, name="t_est"), temporary_plugin(MapLoss, name="t_loss"):
        Trainer(config, work_dir=tmp_path / "run", cfg_options={"train_cfg.loss": "map_loss_for_tests"}).train()
    assert len(SEEN) == 3
    for record in SEEN:
        sigma = record["sigma"]
        assert sigma.shape == record["shape"] == record["aux"].shape
        # Gaussian noise with σ drawn per image in [0, 50/255]: a constant map per image.
        per_image = sigma.flatten(1)
        assert torch.all(per_image.max(1).values == per_image.min(1).values)
        assert 0 <= float(sigma.min()) and float(sigma.max()) <= 50 / 255 + 1e-6
    assert not torch.equal(SEEN[0]["sigma"], SEEN[1]["sigma"])


def test_a_noise_map_loss_on_a_backbone_without_an_estimate_fails_clearly(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(iters=2, interval=2, ema="None")
    with temporary_plugin(MapLoss, name="t_loss"), pytest.raises(InvalidInputError, match="auxiliary output"):
        Trainer(config, work_dir=tmp_path / "run", cfg_options={"train_cfg.loss": "map_loss_for_tests"}).train()
