"""ZS-N2N and Neighbor2Neighbor: the sub-samplers against hand computations, the losses against
independent re-computations, reproducibility, gradients and argument checks."""

from __future__ import annotations

import pytest
import torch

import noiseshift_lan
from noiseshift.api import LOSSES, InvalidInputError
from noiseshift.testing import temporary_plugin
from noiseshift_lan import (
    Neighbor2NeighborLoss,
    ZeroShotN2NLoss,
    apply_neighbour_pairs,
    build_self_supervised_loss,
    draw_neighbour_pairs,
    neighbour_subsample,
    zsn2n_downsample,
)
from noiseshift_lan.sampling import NEIGHBOUR_PAIRS

IMAGE_4X4 = torch.tensor([
    [0.10, 0.90, 0.30, 0.00],
    [0.50, 0.20, 0.80, 0.60],
    [0.70, 0.40, 1.00, 0.25],
    [0.05, 0.35, 0.45, 0.15],
])
# By hand: D1 averages the anti-diagonal (0,1),(1,0) of every 2×2 cell, D2 the diagonal (0,0),(1,1).
D1_BY_HAND = torch.tensor([[(0.90 + 0.50) / 2, (0.00 + 0.80) / 2], [(0.40 + 0.05) / 2, (0.25 + 0.45) / 2]])
D2_BY_HAND = torch.tensor([[(0.10 + 0.20) / 2, (0.30 + 0.60) / 2], [(0.70 + 0.35) / 2, (1.00 + 0.15) / 2]])


def test_zsn2n_downsamplers_match_a_hand_computation() -> None:
    image = torch.stack([IMAGE_4X4, 2 * IMAGE_4X4, IMAGE_4X4.flip(-1)])[None]  # 1×3×4×4, channels differ
    down1, down2 = zsn2n_downsample(image)
    assert down1.shape == down2.shape == (1, 3, 2, 2)
    torch.testing.assert_close(down1[0, 0], D1_BY_HAND)
    torch.testing.assert_close(down2[0, 0], D2_BY_HAND)
    torch.testing.assert_close(down1[0, 1], 2 * D1_BY_HAND)  # per channel (depthwise)
    # Mirroring swaps the diagonals: D1 of the mirrored image is D2 of the original, mirrored.
    torch.testing.assert_close(down1[0, 2], D2_BY_HAND.flip(-1))


def test_zsn2n_downsamplers_drop_an_odd_last_row_and_column() -> None:
    image = torch.zeros(2, 1, 5, 5)
    image[:, :, :4, :4] = IMAGE_4X4
    image[:, :, 4, :] = 7.0
    image[:, :, :, 4] = 7.0
    down1, down2 = zsn2n_downsample(image)
    assert down1.shape == (2, 1, 2, 2)
    torch.testing.assert_close(down1[1, 0], D1_BY_HAND)
    torch.testing.assert_close(down2[1, 0], D2_BY_HAND)


def _positions(size: int, channels: int = 3) -> torch.Tensor:
    """An image whose every value encodes its (channel, row, column)."""
    rows = torch.arange(size).view(1, size, 1).float()
    cols = torch.arange(size).view(1, 1, size).float()
    chans = torch.arange(channels).view(channels, 1, 1).float()
    return (chans * 10_000 + rows * 100 + cols).unsqueeze(0)


def test_neighbour_subsampler_picks_one_pixel_of_every_cell_never_the_same_and_adjacent() -> None:
    size = 16
    image = _positions(size).expand(2, -1, -1, -1).clone()
    first, second, pairs = neighbour_subsample(image, torch.Generator().manual_seed(3))
    assert first.shape == second.shape == (2, 3, size // 2, size // 2) and pairs.shape == (2, size // 2, size // 2)
    cell_rows = torch.arange(size // 2).view(size // 2, 1)
    cell_cols = torch.arange(size // 2).view(1, size // 2)
    picked = []
    for sub in (first, second):
        channel = torch.div(sub, 10_000, rounding_mode="floor")
        rest = sub - channel * 10_000
        row = torch.div(rest, 100, rounding_mode="floor").long()
        col = (rest - row * 100).long()
        assert torch.equal(channel, torch.arange(3).view(1, 3, 1, 1).float().expand_as(channel))
        # Exactly one pixel per 2×2 cell: the picked pixel lies in that cell ...
        assert torch.equal(torch.div(row, 2, rounding_mode="floor"), cell_rows.expand_as(row))
        assert torch.equal(torch.div(col, 2, rounding_mode="floor"), cell_cols.expand_as(col))
        # ... at the same position in every channel.
        assert torch.equal(row, row[:, :1].expand_as(row)) and torch.equal(col, col[:, :1].expand_as(col))
        picked.append((row, col))
    (row1, col1), (row2, col2) = picked
    assert ((row1 != row2) | (col1 != col2)).all()  # never the same pixel
    assert torch.equal((row1 - row2).abs() + (col1 - col2).abs(), torch.ones_like(row1))  # neighbours
    # The two images of the batch get their own draws.
    assert not torch.equal(pairs[0], pairs[1])


def test_neighbour_subsampler_is_reproducible_and_uses_all_eight_pairs() -> None:
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    one = neighbour_subsample(image, torch.Generator().manual_seed(5))
    two = neighbour_subsample(image, torch.Generator().manual_seed(5))
    other = neighbour_subsample(image, torch.Generator().manual_seed(6))
    assert all(torch.equal(a, b) for a, b in zip(one, two))
    assert not torch.equal(one[2], other[2])
    counts = torch.bincount(one[2].flatten(), minlength=8)
    assert counts.numel() == 8 and (counts > 1024 / 8 * 0.6).all()  # roughly uniform over the 8 pairs


def test_the_same_draw_sub_samples_another_image_identically() -> None:
    image = torch.rand(2, 3, 8, 10, generator=torch.Generator().manual_seed(1))
    pairs = draw_neighbour_pairs(2, 8, 10, torch.Generator().manual_seed(2))
    first, second = apply_neighbour_pairs(image, pairs)
    first2, second2 = apply_neighbour_pairs(2 * image + 1, pairs)
    torch.testing.assert_close(first2, 2 * first + 1)
    torch.testing.assert_close(second2, 2 * second + 1)
    with pytest.raises(InvalidInputError, match="pair indices"):
        apply_neighbour_pairs(image, pairs[:, :2])


def _reference_cells(x: torch.Tensor) -> list[torch.Tensor]:
    """The four positions of every 2×2 cell by strided slicing (independent of the module)."""
    return [x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]]


def _toy_denoiser(x: torch.Tensor) -> torch.Tensor:
    """A fixed, differentiable, non-linear 'denoiser' that maps C channels to C channels."""
    return 0.6 * x + 0.2 * torch.tanh(x.mean(dim=1, keepdim=True)) + 0.05


def test_zsn2n_loss_matches_its_formula() -> None:
    noisy = torch.rand(2, 3, 8, 6, generator=torch.Generator().manual_seed(0))
    p0, p1, p2, p3 = _reference_cells(noisy)
    d1, d2 = (p1 + p2) / 2, (p0 + p3) / 2
    f = _toy_denoiser
    q0, q1, q2, q3 = _reference_cells(f(noisy))
    fd1, fd2 = (q1 + q2) / 2, (q0 + q3) / 2

    def mse(a, b):
        return ((a - b) ** 2).mean()

    residual = 0.5 * (mse(d1, f(d2)) + mse(d2, f(d1)))
    consistency = 0.5 * (mse(f(d1), fd1) + mse(f(d2), fd2))
    value = ZeroShotN2NLoss()(f, noisy)
    torch.testing.assert_close(value, residual + consistency)
    weighted = ZeroShotN2NLoss(residual_weight=2.0, consistency_weight=0.5)(f, noisy)
    torch.testing.assert_close(weighted, 2 * residual + 0.5 * consistency)
    assert float(ZeroShotN2NLoss()(lambda x: x, torch.ones(1, 1, 4, 4))) == 0.0  # a flat image is its own N2N target


def test_nbr2nbr_loss_matches_its_formula_and_ramps_the_regulariser() -> None:
    noisy = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    f = _toy_denoiser
    pairs = draw_neighbour_pairs(1, 8, 8, torch.Generator().manual_seed(4))
    table = torch.tensor(NEIGHBOUR_PAIRS)[pairs]  # 1×4×4×2 cell positions

    def pick(x: torch.Tensor, which: int) -> torch.Tensor:
        cells = torch.stack(_reference_cells(x), dim=-1)  # N×C×h×w×4
        index = table[..., which].unsqueeze(1).unsqueeze(-1).expand(*cells.shape[:-1], 1)
        return cells.gather(-1, index).squeeze(-1)

    g1, g2 = pick(noisy, 0), pick(noisy, 1)
    estimate = f(noisy).clamp(0, 1)
    diff = f(g1).clamp(0, 1) - g2
    reg = diff - (pick(estimate, 0) - pick(estimate, 1))
    loss = Neighbor2NeighborLoss()
    for step, total in ((1, 20), (11, 20), (20, 20)):
        weight = 0.1 * (step - 1) / total
        value = loss(f, noisy, generator=torch.Generator().manual_seed(4), step=step, total_steps=total)
        torch.testing.assert_close(value, diff.square().mean() + weight * reg.square().mean())
    assert loss.regulariser_weight(1, 20) == 0.0 and loss.regulariser_weight(20, 20) == pytest.approx(0.095)


@pytest.mark.parametrize("loss", [ZeroShotN2NLoss(), Neighbor2NeighborLoss()], ids=["zsn2n", "nbr2nbr"])
def test_gradients_reach_the_input_and_the_denoiser(loss) -> None:
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    offset = torch.zeros(1, 3, 12, 12, requires_grad=True)
    noisy = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    value = loss(lambda x: x + conv(x), noisy + offset, generator=torch.Generator().manual_seed(0), step=2,
                 total_steps=3)
    assert value.dim() == 0 and float(value.detach()) > 0
    value.backward()
    assert offset.grad is not None and offset.grad.abs().sum() > 0
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_bad_calls_raise_clear_errors() -> None:
    noisy = torch.rand(1, 3, 8, 8)
    with pytest.raises(InvalidInputError, match="self-supervised loss: call it as loss\\(denoise_fn"):
        ZeroShotN2NLoss()(noisy, noisy)
    with pytest.raises(InvalidInputError, match="needs an explicit torch.Generator"):
        Neighbor2NeighborLoss()(_toy_denoiser, noisy)
    with pytest.raises(InvalidInputError, match="as many output as input channels"):
        ZeroShotN2NLoss()(lambda x: x[:, :1], noisy)
    with pytest.raises(InvalidInputError, match="step <= total_steps"):
        ZeroShotN2NLoss()(_toy_denoiser, noisy, step=4, total_steps=3)
    with pytest.raises(InvalidInputError, match="at least 2×2"):
        ZeroShotN2NLoss()(_toy_denoiser, torch.rand(1, 3, 1, 8))
    with pytest.raises(InvalidInputError, match="gamma"):
        Neighbor2NeighborLoss(gamma=-1)


def test_registered_in_losses_and_built_by_name_or_config() -> None:
    assert LOSSES.lookup("zsn2n") is ZeroShotN2NLoss and LOSSES.lookup("nbr2nbr") is Neighbor2NeighborLoss
    assert LOSSES.lookup("lan.nbr2nbr") is Neighbor2NeighborLoss
    built = build_self_supervised_loss({"type": "nbr2nbr", "gamma": 0.3})
    assert isinstance(built, Neighbor2NeighborLoss) and built.gamma == 0.3
    with pytest.raises(InvalidInputError, match="pixel loss"):
        build_self_supervised_loss("l1")
    with temporary_plugin(noiseshift_lan, name="lan_under_test"):
        assert LOSSES.lookup("lan_under_test.zsn2n") is ZeroShotN2NLoss


def test_a_function_registered_as_a_self_supervised_loss_is_usable_by_the_adapters() -> None:
    import types

    from noiseshift.api import hookimpl
    from noiseshift_lan import LAN

    def identity_gap(denoise_fn, noisy, *, generator=None, step=1, total_steps=1):
        return (denoise_fn(noisy) - noisy).square().mean()

    identity_gap.self_supervised = True

    def register_losses(register):
        register(identity_gap, name="identity_gap")

    plugin = types.SimpleNamespace(register_losses=hookimpl(specname="register_losses")(register_losses))
    with temporary_plugin(plugin, name="function_loss_test"):
        assert build_self_supervised_loss("identity_gap") is identity_gap
        with pytest.raises(InvalidInputError, match="takes no options"):
            build_self_supervised_loss({"type": "identity_gap", "weight": 2})
        adapter = LAN(steps=1, loss="identity_gap")
        assert adapter.objective is identity_gap and adapter.config()["loss"] == "identity_gap"
