"""Tests of ``noiseshift.inference``: padding, tiling, self-ensemble and the ``denoise`` entry point."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import pytest
import torch
from torch import nn

from noiseshift.denoiser import Denoiser
from noiseshift.errors import InvalidInputError
from noiseshift.inference import (
    crop_to,
    denoise,
    denoise_padded,
    pad_to_multiple,
    self_ensemble,
    tile_weights,
    tiled_denoise,
)

# -- tiny test denoisers ----------------------------------------------------------------------


class ConvNet(Denoiser):
    """A residual 3-layer 3×3 conv net with seeded weights; receptive-field radius 3."""

    name = "test_convnet"

    def __init__(self, channels: int = 3, features: int = 16, seed: int = 0) -> None:
        super().__init__()
        self.in_channels = self.out_channels = channels
        generator = torch.Generator().manual_seed(seed)
        self.layers = nn.ModuleList(
            [
                nn.Conv2d(channels, features, 3, padding=1),
                nn.Conv2d(features, features, 3, padding=1),
                nn.Conv2d(features, channels, 3, padding=1),
            ]
        )
        with torch.no_grad():
            for layer in self.layers:
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.3)
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator) * 0.1)

    def forward(self, noisy: torch.Tensor, cond: Mapping[str, Any] | None = None) -> torch.Tensor:
        features = torch.relu(self.layers[0](noisy))
        features = torch.relu(self.layers[1](features))
        return noisy - self.layers[2](features)


class Blur(Denoiser):
    """A fixed 3×3 binomial blur with zero padding: equivariant to shifts, rotations and flips."""

    name = "test_blur"

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.in_channels = self.out_channels = channels
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps[:, None] * taps[None, :]) / 16
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone())

    def forward(self, noisy: torch.Tensor, cond: Mapping[str, Any] | None = None) -> torch.Tensor:
        return nn.functional.conv2d(noisy, self.kernel, padding=1, groups=noisy.shape[1])


class MultipleOf(Denoiser):
    """Scales its input; fails unless height and width are multiples of ``size_multiple``."""

    name = "test_multiple_of"

    def __init__(self, multiple: int = 8) -> None:
        super().__init__()
        self.size_multiple = multiple
        self.seen: list[tuple[int, ...]] = []

    def forward(self, noisy: torch.Tensor, cond: Mapping[str, Any] | None = None) -> torch.Tensor:
        self.seen.append(tuple(noisy.shape))
        height, width = noisy.shape[-2:]
        assert height % self.size_multiple == 0 and width % self.size_multiple == 0, noisy.shape
        return noisy * 0.5


class AddSigma(Denoiser):
    """Returns ``noisy + sigma``: its output depends on where each sigma value sits."""

    name = "test_add_sigma"
    conditions = frozenset({"sigma", "iso"})

    def __init__(self, multiple: int = 1) -> None:
        super().__init__()
        self.size_multiple = multiple

    def forward(self, noisy: torch.Tensor, cond: Mapping[str, Any] | None = None) -> torch.Tensor:
        assert cond is not None
        sigma = cond["sigma"]
        assert sigma.shape[-2:] == noisy.shape[-2:], (sigma.shape, noisy.shape)
        assert sigma.shape[0] in (1, noisy.shape[0]), (sigma.shape, noisy.shape)
        if "iso" in cond:
            # A per-image value must arrive with one entry per item of the (tile) batch.
            assert cond["iso"].shape == (noisy.shape[0],), (cond["iso"].shape, noisy.shape)
            assert cond["sensor"] == [f"cam{int(iso)}" for iso in cond["iso"]]
        if "nlf" in cond:
            assert cond["nlf"] == (0.1, 0.2), cond["nlf"]
        return noisy + sigma


class Identity(Denoiser):
    """Returns its input object itself (the worst case for in-place accumulation)."""

    name = "test_identity"

    def forward(self, noisy: torch.Tensor, cond: Mapping[str, Any] | None = None) -> torch.Tensor:
        return noisy


def _image(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


# -- padding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("multiple", [8, 16])
def test_padded_output_keeps_odd_sizes_and_model_sees_multiples(multiple: int) -> None:
    model = MultipleOf(multiple)
    x = _image(1, 3, 37, 53)
    y = denoise_padded(model, x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, x * 0.5)
    assert all(h % multiple == 0 and w % multiple == 0 for *_, h, w in model.seen)


def test_pad_to_multiple_reflects_and_crop_undoes_it() -> None:
    x = _image(2, 3, 5, 6)
    padded, (pad_h, pad_w) = pad_to_multiple(x, 4)
    assert (pad_h, pad_w) == (3, 2)
    assert padded.shape == (2, 3, 8, 8)
    torch.testing.assert_close(padded, nn.functional.pad(x, (0, 2, 0, 3), mode="reflect"))
    torch.testing.assert_close(crop_to(padded, 5, 6), x)
    same, amounts = pad_to_multiple(x, 1)
    assert same is x and amounts == (0, 0)


def test_pad_falls_back_to_replicate_when_too_small_for_reflect() -> None:
    x = _image(1, 1, 2, 9)
    padded, (pad_h, pad_w) = pad_to_multiple(x, 8)
    assert (pad_h, pad_w) == (6, 7)
    # Rows: 6 > 2 - 1, so replicated; columns: 7 <= 9 - 1, so reflected.
    torch.testing.assert_close(padded[..., 2:, :9], x[..., 1:2, :].expand(1, 1, 6, 9))
    torch.testing.assert_close(padded[..., :2, 9:], x[..., :, 1:8].flip(-1))


def test_padding_pads_spatial_cond_maps_too() -> None:
    model = AddSigma(multiple=8)
    x, sigma = _image(2, 3, 21, 30), _image(2, 1, 21, 30, seed=2)
    torch.testing.assert_close(denoise_padded(model, x, {"sigma": sigma, "camera": "x"}), x + sigma)


@pytest.mark.parametrize("multiple", [0, -2, 2.0])
def test_pad_rejects_bad_multiple(multiple: Any) -> None:
    with pytest.raises(InvalidInputError, match="multiple"):
        pad_to_multiple(_image(1, 1, 4, 4), multiple)


# -- tiling -----------------------------------------------------------------------------------


def test_tiled_blur_equals_untiled_everywhere() -> None:
    model = Blur()
    x = _image(1, 3, 70, 90)
    untiled = denoise_padded(model, x)
    tiled = tiled_denoise(model, x, tile=32, overlap=8, batch_size=3)
    torch.testing.assert_close(tiled, untiled, atol=1e-6, rtol=0)


def test_tiled_convnet_matches_untiled() -> None:
    model = ConvNet()
    # Stride 64: 150 and 230 leave remainders, so the last row and column of tiles are shifted.
    x = _image(1, 3, 150, 230)
    with torch.no_grad():
        untiled = model(x)
    tiled = tiled_denoise(model, x, tile=96, overlap=32)
    difference = (tiled - untiled).abs().max().item()
    assert difference < 1e-4, f"max |tiled - untiled| = {difference:.3g}"


def test_margin_at_receptive_field_radius_makes_tiling_exact() -> None:
    model = ConvNet()
    x = _image(1, 3, 150, 230)
    with torch.no_grad():
        untiled = model(x)
    differences = [
        (tiled_denoise(model, x, tile=96, overlap=32, margin=margin) - untiled).abs().max().item()
        for margin in range(4)
    ]
    # Pixels within the receptive-field radius (3) of a tile edge are wrong; each margin pixel
    # ignored removes one ring of them until none is left.
    assert differences == sorted(differences, reverse=True), differences
    assert differences[3] < 1e-5 < differences[2], differences


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap", "margin"),
    [
        (70, 90, 32, 8, None),
        (150, 230, 96, 32, 0),
        (65, 200, 64, 31, 15),
        (33, 97, 32, 0, None),
        (7, 300, 64, 16, 4),
    ],
)
def test_tile_weights_positive_and_full_at_border(
    height: int, width: int, tile: int, overlap: int, margin: int | None
) -> None:
    weights = tile_weights(height, width, tile=tile, overlap=overlap, margin=margin)
    assert weights.shape == (height, width)
    assert bool((weights > 0).all()), f"min weight {weights.min().item()}"
    for edge in (weights[0], weights[-1], weights[:, 0], weights[:, -1]):
        assert bool((edge >= 1 - 1e-6).all())


def test_tile_weights_form_partition_of_unity_on_a_regular_grid() -> None:
    # 32 + 3 * 24 = 104: tiles line up exactly, so no shifted last tile and no renormalisation.
    weights = tile_weights(104, 104, tile=32, overlap=8)
    torch.testing.assert_close(weights, torch.ones(104, 104))


def test_tiled_handles_odd_sizes_with_size_multiple() -> None:
    model = MultipleOf(8)
    x = _image(1, 3, 75, 101)
    y = tiled_denoise(model, x, tile=37, overlap=8)  # rounded down to 32
    torch.testing.assert_close(y, x * 0.5)
    assert {shape[-2:] for shape in model.seen} == {(32, 32)}


def test_image_smaller_than_tile_falls_back_to_padded_run() -> None:
    model = MultipleOf(8)
    x = _image(2, 3, 20, 30)
    calls: list[tuple[int, int]] = []
    y = tiled_denoise(model, x, tile=64, overlap=16, progress=lambda done, total: calls.append((done, total)))
    torch.testing.assert_close(y, x * 0.5)
    assert model.seen == [(2, 3, 24, 32)]
    assert calls == [(1, 1)]


def test_one_axis_shorter_than_tile_is_padded_on_that_axis_only() -> None:
    model = AddSigma(multiple=8)
    x, sigma = _image(1, 3, 20, 150), _image(1, 1, 20, 150, seed=2)
    y = tiled_denoise(model, x, {"sigma": sigma}, tile=64, overlap=16)
    torch.testing.assert_close(y, x + sigma)


def test_tiled_batch_of_two_images() -> None:
    model = ConvNet()
    x = _image(2, 3, 90, 70)
    with torch.no_grad():
        untiled = model(x)
    tiled = tiled_denoise(model, x, tile=48, overlap=16, batch_size=5)
    difference = (tiled - untiled).abs().max().item()
    assert difference < 1e-4, f"max |tiled - untiled| = {difference:.3g}"


@pytest.mark.parametrize("sigma_batch", [1, 2])
def test_tiled_crops_spatial_cond_and_gathers_per_image_values(sigma_batch: int) -> None:
    model = AddSigma()
    x, sigma = _image(2, 3, 70, 90), _image(sigma_batch, 1, 70, 90, seed=3)
    cond = {
        "sigma": sigma,
        "iso": torch.tensor([100.0, 200.0]),
        "sensor": ["cam100", "cam200"],
        "nlf": (0.1, 0.2),  # a tuple of length N is not per-image data: it must pass through
    }
    y = tiled_denoise(model, x, cond, tile=32, overlap=8, batch_size=3)
    torch.testing.assert_close(y, x + sigma)


def test_progress_counts_up_to_total() -> None:
    calls: list[tuple[int, int]] = []
    x = _image(2, 3, 70, 90)
    tiled_denoise(Blur(), x, tile=32, overlap=8, batch_size=4, progress=lambda d, t: calls.append((d, t)))
    # Stride 24: rows start at 0, 24, 38 (shifted), columns at 0, 24, 48, 58 (shifted).
    total = 2 * 3 * 4
    assert calls == [(min(done, total), total) for done in range(4, total + 4, 4)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tile": 4}, "size_multiple=8"),
        ({"tile": 0}, "tile must be a positive integer"),
        ({"tile": 64, "overlap": 32}, "must exceed 2\\*overlap=64"),
        ({"tile": 70, "overlap": 32}, "rounded down to 64"),
        ({"tile": 64, "overlap": -1}, "overlap must be a non-negative integer"),
        ({"tile": 64, "batch_size": 0}, "batch_size must be a positive integer"),
        ({"tile": 64, "overlap": 16, "margin": 8}, "margin=8 must be less than overlap/2=8"),
    ],
)
def test_bad_tiling_arguments_raise(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        tiled_denoise(MultipleOf(8), _image(1, 3, 100, 100), **kwargs)


def test_spatial_cond_with_wrong_leading_dimension_raises() -> None:
    with pytest.raises(InvalidInputError, match="leading dimension"):
        tiled_denoise(AddSigma(), _image(2, 3, 70, 90), {"sigma": _image(3, 1, 70, 90)}, tile=32, overlap=8)


def test_misbehaving_model_output_is_reported() -> None:
    def shrink(x: torch.Tensor, cond: Mapping[str, Any] | None) -> torch.Tensor:
        return x[..., 1:, :]

    with pytest.raises(InvalidInputError, match="returned"):
        tiled_denoise(shrink, _image(1, 3, 70, 90), tile=32, overlap=8)


def test_tiled_no_grad_false_lets_gradients_through() -> None:
    model = ConvNet()
    x = _image(1, 3, 40, 50).requires_grad_()
    tiled_denoise(model, x, tile=32, overlap=8, no_grad=False).sum().backward()
    assert x.grad is not None and model.layers[0].weight.grad is not None


class GradientStep(Denoiser):
    """A test-time adapter in miniature: one gradient step on a scale inside its own forward."""

    name = "test_gradient_step"

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, noisy: torch.Tensor, cond: Mapping[str, Any] | None = None) -> torch.Tensor:
        with torch.enable_grad():
            loss = (noisy * self.scale).square().mean()
            (gradient,) = torch.autograd.grad(loss, self.scale)
        return noisy * (self.scale - gradient).detach()


def test_models_can_enable_grad_inside_tiled_and_plain_runs() -> None:
    # Fails under torch.inference_mode(); the reason the core uses torch.no_grad().
    x = _image(1, 3, 40, 50)
    tiled = denoise(GradientStep(), x, tile=32, overlap=8)
    assert tiled.shape == x.shape and not tiled.requires_grad
    assert denoise(GradientStep(), x).shape == x.shape


# -- self-ensemble ----------------------------------------------------------------------------


def test_ensemble_of_equivariant_model_equals_plain_output() -> None:
    model, x = Blur(), _image(2, 3, 21, 34)
    torch.testing.assert_close(self_ensemble(model, x), model(x), atol=1e-6, rtol=0)


def test_ensemble_of_identity_is_input_and_input_untouched() -> None:
    x = _image(1, 3, 13, 17)
    original = x.clone()
    torch.testing.assert_close(self_ensemble(Identity(), x), original)
    assert torch.equal(x, original)


def test_ensemble_transforms_cond_maps_with_image() -> None:
    model = AddSigma(multiple=8)
    x, sigma = _image(1, 3, 19, 30), _image(1, 1, 19, 30, seed=4)
    torch.testing.assert_close(self_ensemble(model, x, {"sigma": sigma}), x + sigma)


def test_ensemble_combines_with_tiling() -> None:
    model = AddSigma(multiple=8)
    x, sigma = _image(1, 3, 45, 77), _image(1, 1, 45, 77, seed=5)
    run = functools.partial(tiled_denoise, tile=32, overlap=8)
    torch.testing.assert_close(self_ensemble(model, x, {"sigma": sigma}, run=run), x + sigma)


# -- denoise() ----------------------------------------------------------------------------------


def test_denoise_on_cpu_device_matches_direct_call() -> None:
    model, x = ConvNet(), _image(1, 3, 40, 44)
    with torch.no_grad():
        expected = model(x)
    y = denoise(model, x, device="cpu")
    assert y.device == x.device
    torch.testing.assert_close(y, expected)


def test_denoise_tiled_ensemble_reports_overall_progress() -> None:
    model, x = Blur(), _image(1, 3, 40, 56)
    calls: list[tuple[int, int]] = []
    y = denoise(model, x, tile=32, overlap=8, ensemble=True, progress=lambda d, t: calls.append((d, t)))
    torch.testing.assert_close(y, model(x), atol=1e-6, rtol=0)
    done = [d for d, _ in calls]
    assert done == sorted(set(done)) and calls[-1][0] == calls[-1][1]
    assert {t for _, t in calls} == {calls[-1][1]} and calls[-1][1] % 8 == 0


def test_denoise_untiled_progress_counts_passes() -> None:
    calls: list[tuple[int, int]] = []
    denoise(Blur(), _image(1, 3, 16, 16), ensemble=True, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(k, 8) for k in range(1, 9)]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_denoise_rejects_non_finite_input(bad: float) -> None:
    x = _image(1, 3, 16, 16)
    x[0, 1, 3, 4] = bad
    with pytest.raises(InvalidInputError, match="NaN/inf"):
        denoise(ConvNet(), x)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (_image(1, 4, 16, 16), "expects 3 input channels, got 4"),
        (_image(3, 16, 16), "N×C×H×W"),
        (torch.ones(1, 3, 8, 8, dtype=torch.uint8), "float"),
        (torch.ones(0, 3, 8, 8), "non-empty"),
    ],
)
def test_denoise_rejects_bad_input(x: torch.Tensor, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        denoise(ConvNet(), x)


def test_denoise_rejects_bad_tiling_before_running() -> None:
    with pytest.raises(InvalidInputError, match="2\\*overlap"):
        denoise(ConvNet(), _image(1, 3, 16, 16), tile=32, overlap=16, ensemble=True)


def test_denoise_rejects_model_on_other_device() -> None:
    with pytest.raises(InvalidInputError, match="model.to"):
        denoise(ConvNet(), _image(1, 3, 16, 16), device="meta")
