"""Tests of the ``restormer`` denoiser: conformance, official checkpoint layout, equality with the
official (reshape-based) computation, presets, roles, padding and tiling, CLI."""

from __future__ import annotations

import copy
import math
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import noiseshift_restormer_backbone
import noiseshift
from noiseshift.api import DENOISERS, InvalidInputError, WeightsError, load_into, load_state_dict, save
from noiseshift.image_io import read_image, write_image
from noiseshift.inference import denoise
from noiseshift.testing import check_denoiser, temporary_plugin
from noiseshift_restormer_backbone import PRESETS, Restormer, count_parameters
from noiseshift_restormer_backbone.restormer import GDFN, MDTA, ChannelLayerNorm, TransformerBlock

MICRO = {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 0, "heads": [1, 1, 2, 2]}
"""A very small configuration for tests that only need the plumbing."""


def _perturbed(model: Restormer, seed: int = 0) -> Restormer:
    """Move norm scales/shifts and temperatures off their initial 1/0 so they matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".norm" in name or name.endswith("temperature"):
                param.add_(0.3 * torch.randn(param.shape, generator=generator))
    return model


# -- the official computation, written from the paper / methods.md §6.2, for comparison -------


def reference_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Official LayerNorm: N×C×H×W → N×HW×C tokens, normalise each token, back to N×C×H×W."""
    batch, channels, height, width = x.shape
    tokens = x.flatten(2).transpose(1, 2).contiguous()  # to_3d
    variance = tokens.var(-1, keepdim=True, unbiased=False)
    if bias is None:  # BiasFree: the numerator is not centred
        out = tokens / torch.sqrt(variance + 1e-5) * weight
    else:
        out = (tokens - tokens.mean(-1, keepdim=True)) / torch.sqrt(variance + 1e-5) * weight + bias
    return out.transpose(1, 2).reshape(batch, channels, height, width)  # to_4d


def reference_attention(module: MDTA, x: torch.Tensor) -> torch.Tensor:
    """Official MDTA with explicitly L2-normalised q and k."""
    batch, channels, height, width = x.shape
    q, k, v = module.qkv_dwconv(module.qkv(x)).chunk(3, dim=1)
    shape = (batch, module.heads, channels // module.heads, height * width)
    q, k, v = q.reshape(shape), k.reshape(shape), v.reshape(shape)
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    attn = ((q @ k.transpose(-2, -1)) * module.temperature).softmax(dim=-1)
    return module.project_out((attn @ v).reshape(batch, channels, height, width))


def as_reference(model: Restormer) -> Restormer:
    """A copy of ``model`` whose norms, attention, FFN and blocks compute the official way."""
    model = copy.deepcopy(model)

    def norm(self: ChannelLayerNorm, x: torch.Tensor) -> torch.Tensor:
        return reference_layer_norm(x, self.body.weight, self.body.bias)

    def ffn(self: GDFN, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)

    def block(self: TransformerBlock, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))

    patches = {ChannelLayerNorm: norm, MDTA: reference_attention, GDFN: ffn, TransformerBlock: block}
    for module in model.modules():
        for kind, forward in patches.items():
            if isinstance(module, kind):
                module.forward = types.MethodType(forward, module)
    return model


# -- the official state-dict layout (methods.md §6.3), built without looking at the model ----

HIDDEN = {48: 127, 96: 255, 192: 510, 384: 1021}
"""GDFN hidden widths of the paper model (methods.md §6.2: int truncation of C·2.66)."""


def official_shapes(in_channels: int = 3, out_channels: int = 3, with_bias: bool = False) -> dict[str, tuple[int, ...]]:
    """Key → shape of the official Restormer state dict (paper configuration)."""
    shapes: dict[str, tuple[int, ...]] = {"patch_embed.proj.weight": (48, in_channels, 3, 3)}

    def blocks(prefix: str, count: int, channels: int, heads: int) -> None:
        hidden = HIDDEN[channels]
        for index in range(count):
            p = f"{prefix}.{index}"
            for norm in ("norm1", "norm2"):
                shapes[f"{p}.{norm}.body.weight"] = (channels,)
                if with_bias:
                    shapes[f"{p}.{norm}.body.bias"] = (channels,)
            shapes[f"{p}.attn.temperature"] = (heads, 1, 1)
            shapes[f"{p}.attn.qkv.weight"] = (3 * channels, channels, 1, 1)
            shapes[f"{p}.attn.qkv_dwconv.weight"] = (3 * channels, 1, 3, 3)
            shapes[f"{p}.attn.project_out.weight"] = (channels, channels, 1, 1)
            shapes[f"{p}.ffn.project_in.weight"] = (2 * hidden, channels, 1, 1)
            shapes[f"{p}.ffn.dwconv.weight"] = (2 * hidden, 1, 3, 3)
            shapes[f"{p}.ffn.project_out.weight"] = (channels, hidden, 1, 1)

    blocks("encoder_level1", 4, 48, 1)
    shapes["down1_2.body.0.weight"] = (24, 48, 3, 3)
    blocks("encoder_level2", 6, 96, 2)
    shapes["down2_3.body.0.weight"] = (48, 96, 3, 3)
    blocks("encoder_level3", 6, 192, 4)
    shapes["down3_4.body.0.weight"] = (96, 192, 3, 3)
    blocks("latent", 8, 384, 8)
    shapes["up4_3.body.0.weight"] = (768, 384, 3, 3)
    shapes["reduce_chan_level3.weight"] = (192, 384, 1, 1)
    blocks("decoder_level3", 6, 192, 4)
    shapes["up3_2.body.0.weight"] = (384, 192, 3, 3)
    shapes["reduce_chan_level2.weight"] = (96, 192, 1, 1)
    blocks("decoder_level2", 6, 96, 2)
    shapes["up2_1.body.0.weight"] = (192, 96, 3, 3)
    blocks("decoder_level1", 4, 96, 1)
    blocks("refinement", 4, 96, 1)
    shapes["output.weight"] = (out_channels, 96, 3, 3)
    return shapes


def test_official_layout_has_the_documented_size() -> None:
    bias_free, with_bias = official_shapes(), official_shapes(with_bias=True)
    assert len(bias_free) == 406 and len(with_bias) == 494
    assert sum(math.prod(shape) for shape in bias_free.values()) == 26_111_668
    assert sum(math.prod(shape) for shape in with_bias.values()) == 26_126_644


@pytest.mark.parametrize(
    ("layer_norm_type", "channels", "filename"),
    [("BiasFree", 3, "real_denoising.pth"), ("WithBias", 3, "deraining.pth"),
     ("BiasFree", 1, "gaussian_gray_denoising_blind.pth")],
)
def test_official_checkpoint_loads_strictly(tmp_path: Path, layer_norm_type: str, channels: int, filename: str) -> None:
    shapes = official_shapes(channels, channels, with_bias=layer_norm_type == "WithBias")
    generator = torch.Generator().manual_seed(3)
    params = {key: torch.randn(shape, generator=generator) * 0.02 for key, shape in shapes.items()}
    path = tmp_path / filename
    torch.save({"params": params}, path)

    model = Restormer(in_channels=channels, out_channels=channels, layer_norm_type=layer_norm_type)
    assert count_parameters(model) == sum(math.prod(s) for s in shapes.values())
    state = load_state_dict(path)
    load_into(model, state, strict=True, source=str(path))
    loaded = model.state_dict()
    assert sorted(loaded) == sorted(params)
    assert all(torch.equal(loaded[key], params[key]) for key in params)
    # The same file through the top-level loader, naming the architecture (CLI: --model-type).
    rebuilt = noiseshift.load(path, model_type="restormer",
                              config={"in_channels": channels, "out_channels": channels,
                                      "layer_norm_type": layer_norm_type})
    assert all(torch.equal(rebuilt.state_dict()[key], params[key]) for key in params)


def test_a_mismatched_checkpoint_is_rejected_by_name(tmp_path: Path) -> None:
    shapes = official_shapes()
    params = {key: torch.zeros(shape) for key, shape in shapes.items()}
    params["refinement.3.attn.temperature.typo"] = params.pop("refinement.3.attn.temperature")
    path = tmp_path / "broken.pth"
    torch.save({"params": params}, path)
    with pytest.raises(WeightsError, match=r"refinement\.3\.attn\.temperature"):
        load_into(Restormer(), load_state_dict(path), strict=True)
    # A WithBias checkpoint does not load into a BiasFree model.
    with_bias = {key: torch.zeros(shape) for key, shape in official_shapes(with_bias=True).items()}
    with pytest.raises(WeightsError, match="unexpected 88 key"):
        load_into(Restormer(), with_bias, strict=True)


# -- equality with the official computation ----------------------------------------------------


@pytest.mark.parametrize("layer_norm_type", ["BiasFree", "WithBias"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_layer_norm_equals_the_reshape_based_reference(layer_norm_type: str, channels_last: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    norm = ChannelLayerNorm(48, layer_norm_type)
    with torch.no_grad():
        norm.body.weight.copy_(torch.rand(48, generator=generator) + 0.5)
        if norm.body.bias is not None:
            norm.body.bias.copy_(torch.randn(48, generator=generator))
    # Features with a non-zero mean per pixel, where BiasFree (uncentred numerator) differs
    # from a standard layer norm.
    x = torch.randn(2, 48, 24, 40, generator=generator) * 2 + torch.rand(2, 1, 24, 40, generator=generator)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x_ref = x.detach().clone().requires_grad_(True)
    x = x.requires_grad_(True)

    out = norm(x)
    expected = reference_layer_norm(x_ref, norm.body.weight, norm.body.bias)
    assert out.shape == expected.shape
    # Outputs are of order 1–5; measured max |diff| ≈ 1e-6 (float32 rounding).
    assert (out - expected).abs().max() < 3e-6
    upstream = torch.randn(out.shape, generator=generator)
    grads = torch.autograd.grad(out, [x, norm.body.weight], upstream)
    expected_grads = torch.autograd.grad(expected, [x_ref, norm.body.weight], upstream)
    for got, want in zip(grads, expected_grads):
        assert (got - want).abs().max() <= 1e-5 * max(1.0, float(want.abs().max()))


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
def test_attention_equals_the_normalise_first_reference(heads: int, channels_last: bool) -> None:
    torch.manual_seed(0)
    attention = MDTA(16, heads, bias=False)
    with torch.no_grad():
        attention.temperature.copy_(torch.tensor([2.5, 0.7][:heads]).view(heads, 1, 1))
    x = torch.randn(2, 16, 12, 20)
    if channels_last:
        attention = attention.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got, want = attention(x), reference_attention(attention, x)
    assert (got - want).abs().max() < 2e-6


def test_whole_network_equals_the_official_computation() -> None:
    torch.manual_seed(0)
    for layer_norm_type in ("BiasFree", "WithBias"):
        model = _perturbed(Restormer(preset="tiny", num_blocks=[2, 1, 1, 2], layer_norm_type=layer_norm_type)).eval()
        reference = as_reference(model)
        x = torch.rand(2, 3, 16, 32, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            want = reference(x)  # the official layout: contiguous N×C×H×W activations
            reference.channels_last_on_cpu = False
            want_nchw = reference(x)
            got = model(x)  # channels-last inside, the default on CPUs
            model.channels_last_on_cpu = False
            got_nchw = model(x)
        # Measured max |diff| ≈ 4e-7–7e-7 for outputs in ~[−0.5, 1.5].
        assert got.shape == want.shape and got.is_contiguous()
        for output in (got, got_nchw):
            for expected in (want, want_nchw):
                assert (output - expected).abs().max() < 3e-6, layer_norm_type


@pytest.mark.parametrize("channels_last", [True, False])
def test_training_gradients_equal_the_official_computation(channels_last: bool) -> None:
    torch.manual_seed(0)
    model = _perturbed(Restormer(**MICRO, layer_norm_type="WithBias"))
    reference = as_reference(model)
    reference.channels_last_on_cpu = False
    model.channels_last_on_cpu = channels_last
    x = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(2))
    model(x).square().mean().backward()
    reference(x).square().mean().backward()
    for (name, got), (_, want) in zip(model.named_parameters(), reference.named_parameters()):
        assert got.grad is not None and want.grad is not None, name
        assert (got.grad - want.grad).abs().max() <= 1e-4 * max(1e-3, float(want.grad.abs().max())), name


# -- conformance, registration, configuration ------------------------------------------------


def test_conforms_with_the_smoke_preset() -> None:
    check_denoiser(Restormer, config=Restormer.smoke_config)


def test_conforms_as_a_raw_with_bias_model() -> None:
    check_denoiser(Restormer, config={**MICRO, "in_channels": 4, "out_channels": 4, "layer_norm_type": "WithBias"})


def test_registered_under_its_scope() -> None:
    with temporary_plugin(noiseshift_restormer_backbone, name="restormer_under_test"):
        assert DENOISERS.lookup("restormer_under_test.restormer") is Restormer
        model = DENOISERS.build({"type": "restormer_under_test.restormer", "preset": "tiny"})
        assert isinstance(model, Restormer) and model.size_multiple == 8


def test_presets_fill_only_what_is_not_given() -> None:
    model = Restormer(preset="tiny", dim=24, heads=[1, 1, 2, 2])
    config = model.config()
    assert config["dim"] == 24 and config["heads"] == [1, 1, 2, 2]
    assert config["num_blocks"] == PRESETS["tiny"]["num_blocks"]
    assert config["preset"] == "tiny"
    rebuilt = Restormer(**config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    # Explicit values win over the preset, so a file's config rebuilds the same network even if
    # the preset changed since.
    assert Restormer(**{**config, "preset": "paper"}).config()["dim"] == 24
    assert Restormer().config()["num_blocks"] == [4, 6, 6, 8]


def test_documented_parameter_counts() -> None:
    expected = {"paper": 26_111_668, "small": 3_809_486, "tiny": 799_747}  # class docstring table
    assert set(expected) == set(PRESETS)
    for preset, count in expected.items():
        assert count_parameters(Restormer(preset=preset)) == count
    assert count_parameters(Restormer(layer_norm_type="WithBias")) == 26_126_644


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"preset": "huge"}, "unknown preset"),
        ({"layer_norm_type": "biasfree"}, "layer_norm_type"),
        ({"heads": [1, 2, 4]}, "heads must be 4"),
        ({"preset": "tiny", "heads": [1, 3, 4, 8]}, r"heads\[1\] = 3"),
        ({"preset": "tiny", "dim": 15}, "dim must be even"),
        ({"in_channels": 4, "out_channels": 3}, "residual"),
        ({"preset": "tiny", "num_refinement_blocks": -1}, "num_refinement_blocks"),
    ],
)
def test_bad_configurations_are_rejected(config: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Restormer(**config)


def test_channel_changing_model_without_residual() -> None:
    model = Restormer(**MICRO, in_channels=4, out_channels=3, residual=False).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 4, 16, 16)).shape == (1, 3, 16, 16)


def test_parameter_roles() -> None:
    model = Restormer(preset="tiny", layer_norm_type="WithBias")
    names = {id(p): n for n, p in model.named_parameters()}
    groups = model.parameter_groups()
    assert {names[id(p)] for p in groups["first"]} == {"patch_embed.proj.weight"}
    assert {names[id(p)] for p in groups["last"]} == {"output.weight"}
    pattern = re.compile(r"\.norm[12]\.body\.(weight|bias)$|\.attn\.temperature$|^output\.")
    expected_domain = {n for n in names.values() if pattern.search(n)}
    assert {names[id(p)] for p in groups["domain"]} == expected_domain
    # 8 blocks in the tiny preset (3 encoder, latent, 3 decoder, refinement): 2 norms × (weight,
    # bias) + 1 temperature each, plus the output convolution.
    assert len(expected_domain) == 8 * 5 + 1
    assert len(groups["all"]) == len(names)


# -- sizes, padding, tiling, CLI -----------------------------------------------------------------


def test_sizes_not_divisible_by_8_are_padded_by_the_core_only_when_needed() -> None:
    torch.manual_seed(0)
    model = Restormer(**MICRO).eval()
    x = torch.rand(1, 3, 60, 44, generator=torch.Generator().manual_seed(1))
    with pytest.raises(InvalidInputError, match="multiples of 8"):
        model(x)
    # The official Gaussian-denoising test: reflect-pad bottom/right to a multiple of 8, crop back.
    with torch.no_grad():
        want = model(F.pad(x, (0, 4, 0, 4), mode="reflect"))[..., :60, :44]
        exact = model(x[..., :56, :40])
    assert torch.allclose(denoise(model, x), want, atol=1e-6)
    assert torch.equal(denoise(model, x[..., :56, :40]), exact)


def test_tiled_inference_is_close_to_untiled() -> None:
    """Restormer's attention mixes channels with statistics of the whole input, so tiles do not
    reproduce the untiled output exactly (no margin makes it exact). Measured with this seeded
    tiny model on a 64×112 image split into 2 tiles of 64 (overlap 16): max |diff| 0.0089,
    mean |diff| 0.00086, against a mean |output − input| of 0.086 (seeds 1 and 2: max 0.0098 /
    0.017, mean 0.00085 / 0.0017). Bounds are ~2× the seed-0 values."""
    torch.manual_seed(0)
    model = Restormer(preset="tiny").eval()
    generator = torch.Generator().manual_seed(1)
    ys, xs = torch.linspace(0, 1, 64).view(1, 1, 64, 1), torch.linspace(0, 1, 112).view(1, 1, 1, 112)
    clean = (0.5 + 0.3 * torch.sin(8 * xs) * torch.cos(5 * ys)).expand(1, 3, 64, 112)
    noisy = (clean + 0.1 * torch.randn(1, 3, 64, 112, generator=generator)).clamp(0, 1)
    reports: list[tuple[int, int]] = []
    tiled = denoise(model, noisy, tile=64, overlap=16, progress=lambda done, total: reports.append((done, total)))
    untiled = denoise(model, noisy)
    assert reports[-1] == (2, 2)
    difference = (tiled - untiled).abs()
    assert float(difference.max()) < 0.02
    assert float(difference.mean()) < 0.002
    assert float(difference.mean()) < 0.05 * float((untiled - noisy).abs().mean())


def test_cli_denoises_a_large_image_with_tiles(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Restormer(**MICRO).eval()
    weights = save(model, tmp_path / "restormer_micro.safetensors")
    generator = torch.Generator().manual_seed(4)
    image = torch.rand(1, 3, 400 // 8, 600 // 8, generator=generator)
    image = F.interpolate(image, size=(400, 600), mode="bilinear", align_corners=False)
    noisy = (image + 0.05 * torch.randn(image.shape, generator=generator)).clamp(0, 1)
    write_image(tmp_path / "in" / "photo.png", noisy)
    noisy = read_image(tmp_path / "in" / "photo.png")  # the 8-bit values the CLI reads

    completed = subprocess.run(
        [sys.executable, "-m", "noiseshift.cli", "denoise", str(tmp_path / "in" / "photo.png"),
         "-o", str(tmp_path / "out"), "--model", str(weights), "--tile", "256", "--overlap", "32"],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = read_image(tmp_path / "out" / "photo.png")
    assert result.shape == (1, 3, 400, 600)
    expected = denoise(model, noisy, tile=256, overlap=32).clamp(0, 1)
    # The CLI writes 8 bits: at most half a level of rounding apart.
    assert float((result - expected).abs().max()) <= 0.5 / 255 + 1e-6
