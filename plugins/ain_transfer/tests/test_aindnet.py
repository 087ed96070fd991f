"""AINDNet: conformance, the paper's parameter counts, the estimator, the AIN module and the roles."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from noiseshift.api import DENOISERS, InvalidInputError
from noiseshift.testing import check_denoiser
from noiseshift_ain_transfer import AdaptiveInstanceNorm, AINDNet, NoiseLevelEstimator, count_parameters


def _tiny(**extra) -> AINDNet:
    torch.manual_seed(0)
    return AINDNet(preset="tiny", **extra).eval()


@pytest.mark.parametrize(
    "config",
    [{"preset": "tiny"}, {"preset": "tiny", "coarse_scale": 4}, {"preset": "tiny", "modulation": "in_concat"}],
    ids=["release", "paper_scale", "in_concat"],
)
def test_conforms(config: dict) -> None:
    check_denoiser(AINDNet, config=config)


def test_registered() -> None:
    assert DENOISERS.lookup("aindnet") is AINDNet
    assert DENOISERS.lookup("ain_transfer.aindnet") is AINDNet


def test_paper_preset_parameter_counts() -> None:
    # methods.md §1.7: estimator 29,675 (paper Table 1's "29.7 K"), total 13,764,014 ("13.7 M"),
    # all AIN modules 5,158,400, the 1x1 tail 195.
    counts = count_parameters(preset="paper")
    assert counts["total"] == 13_764_014
    assert counts["estimator"] == 29_675
    assert counts["ain"] == 5_158_400
    assert counts["tail"] == 195
    assert counts["domain"] == 29_675 + 5_158_400 + 195
    # The paper's 1/4 coarse map has the same layers.
    assert count_parameters(preset="paper", coarse_scale=4)["total"] == 13_764_014


def test_meta_count_matches_a_real_build() -> None:
    torch.manual_seed(0)
    model = AINDNet(preset="small")
    assert sum(p.numel() for p in model.parameters()) == count_parameters(preset="small")["total"]
    assert model.config()["blocks"] == [1, 1, 2, 1, 1] and model.config()["preset"] == "small"
    assert count_parameters(preset="small", blocks=[2, 2, 5, 3, 2])["total"] > count_parameters(preset="small")["total"]


@pytest.mark.parametrize("scale", [8, 4])
def test_estimator_scales_and_fusion(scale: int) -> None:
    model = _tiny(coarse_scale=scale)
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model(x)
    aux = model.aux_outputs
    assert set(aux) == {"sigma", "sigma_fine", "sigma_coarse"}
    assert aux["sigma_coarse"].shape == (2, 3, 32 // scale, 48 // scale)
    assert aux["sigma"].shape == aux["sigma_fine"].shape == (2, 3, 32, 48)
    assert model.size_multiple == scale
    up = F.interpolate(aux["sigma_coarse"], size=(32, 48), mode="bilinear", align_corners=False)
    torch.testing.assert_close(aux["sigma"], 0.8 * up + 0.2 * aux["sigma_fine"])
    assert (aux["sigma_coarse"] >= 0).all() and (aux["sigma_fine"] >= 0).all()


def test_estimator_layers_follow_the_release() -> None:
    estimator = NoiseLevelEstimator(3, 32)
    shapes = [tuple(m.weight.shape) for m in estimator.children()]
    assert shapes == [(32, 3, 3, 3), (32, 32, 3, 3), (32, 32, 3, 3), (32, 32, 3, 3), (3, 32, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3)]


def test_ain_is_instance_norm_times_one_plus_gamma_plus_beta() -> None:
    torch.manual_seed(0)
    ain = AdaptiveInstanceNorm(channels=5, map_channels=3, hidden=7)
    h = torch.randn(2, 5, 8, 8) * 3 + 1
    noise_map = torch.rand(2, 3, 8, 8)
    mean = h.mean(dim=(2, 3), keepdim=True)
    var = h.var(dim=(2, 3), keepdim=True, unbiased=False)
    hidden = F.relu(ain.trunk(noise_map))
    expected = (h - mean) / torch.sqrt(var + 1e-5) * (1 + ain.gamma(hidden)) + ain.beta(hidden)
    torch.testing.assert_close(ain(h, noise_map), expected, atol=1e-5, rtol=1e-5)
    assert tuple(ain.trunk.weight.shape) == (7, 3, 5, 5)
    assert tuple(ain.gamma.weight.shape) == tuple(ain.beta.weight.shape) == (5, 7, 3, 3)


def test_ain_modulates_pixel_wise_with_the_noise_map() -> None:
    torch.manual_seed(0)
    ain = AdaptiveInstanceNorm(channels=4, map_channels=3, hidden=8)
    h = torch.randn(1, 4, 16, 16)
    low, high = torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)
    high[..., 8:, :] = 0.5  # more noise in the bottom half
    difference = (ain(h, high) - ain(h, low)).abs().sum(dim=(0, 1))
    assert difference[:5].max() < 1e-6 < difference[11:].min()


def test_roles_are_the_papers_transfer_set() -> None:
    model = _tiny()
    groups = model.parameter_groups()
    names = {id(p): n for n, p in model.named_parameters()}
    domain = {names[id(p)] for p in groups["domain"]}
    assert domain == {names[id(p)] for r in ("estimator", "ain", "tail") for p in groups[r]}
    assert {names[id(p)] for p in groups["first"]} == {"head1.weight", "head1.bias"}
    assert {names[id(p)] for p in groups["last"]} == {"tail.weight", "tail.bias"}
    assert all(n.startswith("estimator.") for n in (names[id(p)] for p in groups["estimator"]))
    frozen = set(names.values()) - domain
    # Frozen during transfer: heads, AIN-ResBlock convolutions, skip ResBlocks, transposed convs.
    assert {"head1.weight", "encoder1.0.conv1.weight", "skip1.conv1.weight", "up1.weight"} <= frozen
    assert not any(".norm1." in n or ".norm2." in n for n in frozen)


def test_in_concat_baseline_replaces_ain_by_affine_instance_norm() -> None:
    model = _tiny(modulation="in_concat")
    assert model.head1.in_channels == 6
    ain_role = model.parameter_groups()["ain"]
    assert ain_role and all(p.dim() == 1 for p in ain_role)  # per-channel affines only
    assert not any(isinstance(m, AdaptiveInstanceNorm) for m in model.modules())


def test_output_is_global_residual_of_the_input() -> None:
    model = _tiny()
    with torch.no_grad():
        model.tail.weight.zero_()
        model.tail.bias.zero_()
        x = torch.rand(1, 3, 16, 16)
        torch.testing.assert_close(model(x), x)


def test_bad_arguments_and_sizes_are_refused() -> None:
    for kwargs, match in [
        ({"preset": "huge"}, "preset"),
        ({"coarse_scale": 2}, "coarse_scale"),
        ({"modulation": "gated"}, "modulation"),
        ({"blocks": [1, 1, 1]}, "blocks"),
        ({"width": 0}, "width"),
        ({"out_channels": 1}, "out_channels"),
        ({"lambda_ms": 1.5}, "lambda_ms"),
    ]:
        with pytest.raises(InvalidInputError, match=match):
            AINDNet(**{"preset": "tiny", **kwargs})
    with pytest.raises(InvalidInputError, match="multiples of size_multiple=8"):
        _tiny()(torch.rand(1, 3, 20, 16))
    with pytest.raises(InvalidInputError, match="input channels"):
        _tiny()(torch.rand(1, 1, 16, 16))
