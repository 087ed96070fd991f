"""The multi-scale asymmetric estimation loss and the synthetic-stage objective."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from noiseshift.api import LOSSES, InvalidInputError
from noiseshift_ain_transfer import AINDNet, AINDNetSyntheticLoss, MultiScaleAsymmetricLoss


def _aux(fine: torch.Tensor, coarse: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"sigma": fine, "sigma_fine": fine, "sigma_coarse": coarse}


def test_registered_with_the_noise_map_flag() -> None:
    assert LOSSES.lookup("ms_asymm") is MultiScaleAsymmetricLoss
    assert LOSSES.lookup("aindnet_synthetic") is AINDNetSyntheticLoss
    assert MultiScaleAsymmetricLoss.needs_noise_map and AINDNetSyntheticLoss.needs_noise_map


@pytest.mark.parametrize("alpha", [0.25, 0.1])
def test_under_estimates_cost_one_minus_alpha_over_alpha_times_more(alpha: float) -> None:
    loss = MultiScaleAsymmetricLoss(alpha=alpha)
    sigma = torch.full((1, 3, 16, 16), 0.1)
    under = loss(aux=_aux(sigma - 0.02, F.avg_pool2d(sigma, 8) - 0.02), sigma=sigma)
    over = loss(aux=_aux(sigma + 0.02, F.avg_pool2d(sigma, 8) + 0.02), sigma=sigma)
    assert float(under / over) == pytest.approx((1 - alpha) / alpha, rel=1e-5)
    # Absolute value: both scales off by 0.02 everywhere, weights 0.2 + 0.8.
    assert float(under) == pytest.approx((1 - alpha) * 0.02**2, rel=1e-5)
    assert float(loss(aux=_aux(sigma, F.avg_pool2d(sigma, 8)), sigma=sigma)) == 0.0


def test_the_two_scales_and_their_weights() -> None:
    loss = MultiScaleAsymmetricLoss()
    generator = torch.Generator().manual_seed(0)
    sigma = torch.rand(2, 3, 32, 32, generator=generator) * 0.1
    exact_coarse = F.avg_pool2d(sigma, 8)
    # Only the fine map wrong (over-estimated by 0.05): 0.2 · 0.25 · 0.05².
    only_fine = loss(aux=_aux(sigma + 0.05, exact_coarse), sigma=sigma)
    assert float(only_fine) == pytest.approx(0.2 * 0.25 * 0.05**2, rel=1e-4)
    # Only the coarse map wrong (under-estimated by 0.05): 0.8 · 0.75 · 0.05².
    only_coarse = loss(aux=_aux(sigma, exact_coarse - 0.05), sigma=sigma)
    assert float(only_coarse) == pytest.approx(0.8 * 0.75 * 0.05**2, rel=1e-4)


@pytest.mark.parametrize("scale", [4, 8])
def test_coarse_target_is_the_true_map_pooled_to_the_coarse_size(scale: int) -> None:
    loss = MultiScaleAsymmetricLoss()
    generator = torch.Generator().manual_seed(1)
    sigma = torch.rand(1, 3, 32, 32, generator=generator) * 0.1
    assert float(loss(aux=_aux(sigma, F.avg_pool2d(sigma, scale)), sigma=sigma)) == 0.0
    other = 8 if scale == 4 else 4
    wrong = F.interpolate(F.avg_pool2d(sigma, other), size=(32 // scale,) * 2, mode="nearest")
    assert float(loss(aux=_aux(sigma, wrong), sigma=sigma)) > 0.0


def test_single_map_backbones_and_one_channel_targets() -> None:
    loss = MultiScaleAsymmetricLoss(coarse_scale=4)
    sigma = torch.full((1, 1, 16, 16), 0.05)
    estimate = torch.full((1, 3, 16, 16), 0.04)
    # Only a fused map: both terms are computed from it (pooled by coarse_scale for the coarse one).
    assert float(loss(aux={"sigma": estimate}, sigma=sigma)) == pytest.approx(0.75 * 0.01**2, rel=1e-5)


def test_missing_estimate_or_truth_is_a_clear_error() -> None:
    loss = MultiScaleAsymmetricLoss()
    sigma = torch.full((1, 3, 16, 16), 0.05)
    with pytest.raises(InvalidInputError, match=r"aux_outputs\['sigma'\].*aindnet"):
        loss(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), aux={}, sigma=sigma)
    with pytest.raises(InvalidInputError, match="true noise std map"):
        loss(aux={"sigma": sigma}, sigma=None)
    with pytest.raises(InvalidInputError, match="does not match"):
        loss(aux={"sigma": sigma}, sigma=torch.zeros(1, 3, 8, 8))
    with pytest.raises(InvalidInputError, match="integer down-scaling"):
        loss(aux=_aux(sigma, torch.zeros(1, 3, 5, 5)), sigma=sigma)
    with pytest.raises(InvalidInputError, match="alpha"):
        MultiScaleAsymmetricLoss(alpha=1.0)
    with pytest.raises(InvalidInputError, match=r"aux_outputs\['sigma'\]"):
        AINDNetSyntheticLoss()(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_synthetic_objective_is_l1_plus_weighted_estimation_loss() -> None:
    generator = torch.Generator().manual_seed(2)
    output, clean = torch.rand(2, 3, 16, 16, generator=generator), torch.rand(2, 3, 16, 16, generator=generator)
    sigma = torch.rand(2, 3, 16, 16, generator=generator) * 0.1
    aux = _aux(sigma * 1.3, F.avg_pool2d(sigma, 8) * 0.7)
    estimation = MultiScaleAsymmetricLoss()(aux=aux, sigma=sigma)
    for weight in (0.05, 1.0):
        total = AINDNetSyntheticLoss(weight=weight)(output, clean, aux=aux, sigma=sigma)
        torch.testing.assert_close(total, (output - clean).abs().mean() + weight * estimation)
    built = LOSSES.build({"type": "aindnet_synthetic"})
    assert built.weight == 0.05 and built.estimation.alpha == 0.25


def test_estimation_loss_trains_the_estimator_of_aindnet() -> None:
    torch.manual_seed(0)
    model = AINDNet(preset="tiny")
    noisy, clean = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    output, aux = model.forward_with_aux(noisy)
    value = AINDNetSyntheticLoss(weight=1.0)(output, clean, aux=aux, sigma=torch.full((2, 3, 16, 16), 0.3))
    value.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.estimator.parameters())
