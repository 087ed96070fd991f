"""Tests of the ``modulation_unet`` backbone (ADL's channel-wise modulation U-Net)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import noiseshift
import noiseshift_modulation_unet
from noiseshift.api import DENOISERS, InvalidInputError
from noiseshift.inference import denoise
from noiseshift.testing import check_denoiser, temporary_plugin
from noiseshift_modulation_unet import ChannelModulation, MetadataEncoder, ModulationUNet

SENSORS = ["SonyA7S2", "NikonD850", "CanonEOS70D"]
TINY = {"sensors": SENSORS, "width": 4, "levels": 2, "mlp_hidden": 8}


def _model(seed: int = 0, *, randomise_modulation: bool = True, **overrides) -> ModulationUNet:
    """A tiny model; by default with random MLP output layers so the metadata matters."""
    torch.manual_seed(seed)
    model = ModulationUNet(**{**TINY, **overrides}).eval()
    if randomise_modulation:
        generator = torch.Generator().manual_seed(seed + 100)
        with torch.no_grad():
            for param in model.parameters_for("modulation"):
                param.copy_(0.5 * torch.randn(param.shape, generator=generator))
    return model


def _image(batch: int = 1, channels: int = 4, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(seed))


# -- conformance ------------------------------------------------------------------------------


def test_conforms_raw_with_cond() -> None:
    check_denoiser(ModulationUNet, config=ModulationUNet.smoke_config, cond=ModulationUNet.smoke_cond)


def test_conforms_srgb_fallback_without_cond() -> None:
    config = {**TINY, "in_channels": 3, "out_channels": 3, "unknown_sensor": "fallback", "residual": True}
    check_denoiser(ModulationUNet, config=config)


def test_registered_under_its_scope() -> None:
    assert DENOISERS.lookup("modulation_unet") is ModulationUNet
    with temporary_plugin(noiseshift_modulation_unet, name="mu_under_test"):
        assert DENOISERS.lookup("mu_under_test.modulation_unet") is ModulationUNet


def test_class_attributes_and_size_multiple() -> None:
    assert ModulationUNet.conditions == frozenset({"sensor", "iso"})
    assert ModulationUNet.size_multiple == 16
    assert ModulationUNet(width=2, mlp_hidden=2).size_multiple == 16
    assert ModulationUNet(width=2, levels=3, mlp_hidden=2).size_multiple == 8


# -- initialisation -----------------------------------------------------------------------------


def test_identity_init_gives_gamma_one_beta_zero() -> None:
    model = _model(randomise_modulation=False)
    cond = {"sensor": ["SonyA7S2", "CanonEOS70D"], "iso": [100.0, 6400.0]}
    modulations = model.modulations(cond, batch=2)
    assert set(modulations) == set(model.layer_names(2))
    for gamma, beta in modulations.values():
        assert torch.equal(gamma, torch.ones_like(gamma))
        assert torch.equal(beta, torch.zeros_like(beta))


def test_identity_init_equals_the_unmodulated_network() -> None:
    modulated = _model(randomise_modulation=False)
    plain = ModulationUNet(**{**TINY, "modulate": []}).eval()
    # The plain network has the same convolutions and none of the MLPs.
    missing, unexpected = plain.load_state_dict(modulated.state_dict(), strict=False)
    assert not missing and unexpected and all(".modulation." in key for key in unexpected)
    x = _image(2)
    with torch.no_grad():
        for cond in ({"sensor": "SonyA7S2", "iso": 100.0}, {"sensor": "NikonD850", "iso": 12800.0}):
            assert torch.allclose(modulated(x, cond), plain(x, cond), atol=1e-6)
    # ... and the metadata does not matter yet.
    with torch.no_grad():
        a = modulated(x, {"sensor": "SonyA7S2", "iso": 100.0})
        b = modulated(x, {"sensor": "NikonD850", "iso": 12800.0})
    assert torch.equal(a, b)


def test_identity_init_still_trains_the_mlp_output_layers() -> None:
    model = _model(randomise_modulation=False).train()
    model(_image(), {"sensor": "SonyA7S2", "iso": 800.0}).square().mean().backward()
    modulations = [m for m in model.modules() if isinstance(m, ChannelModulation)]
    last_layers = [m.gamma[-1].weight for m in modulations] + [m.beta[-1].weight for m in modulations]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in last_layers)


def test_gamma_stays_in_zero_two() -> None:
    model = _model()
    with torch.no_grad():
        for param in model.parameters_for("modulation"):
            param.mul_(50)  # saturate the tanh
        modulations = model.modulations({"sensor": "SonyA7S2", "iso": 25600.0})
    for gamma, _ in modulations.values():
        assert float(gamma.min()) >= 0 and float(gamma.max()) <= 2


# -- the metadata changes the output ---------------------------------------------------------------


def test_different_sensors_and_isos_give_different_outputs() -> None:
    model = _model()
    x = _image()
    with torch.no_grad():
        sony = model(x, {"sensor": "SonyA7S2", "iso": 800.0})
        nikon = model(x, {"sensor": "NikonD850", "iso": 800.0})
        sony_high = model(x, {"sensor": "SonyA7S2", "iso": 6400.0})
    assert (sony - nikon).abs().max() > 1e-4
    assert (sony - sony_high).abs().max() > 1e-4


def test_sensor_names_match_case_insensitively() -> None:
    model = _model()
    x = _image()
    with torch.no_grad():
        assert torch.equal(model(x, {"sensor": "SonyA7S2", "iso": 800}), model(x, {"sensor": " sonya7s2 ", "iso": 800}))


def test_batch_with_per_image_metadata_equals_per_image_calls() -> None:
    model = _model()
    x = _image(3)
    sensors = ["SonyA7S2", "CanonEOS70D", "NikonD850"]
    isos = [100.0, 3200.0, 800.0]
    with torch.no_grad():
        batched_list = model(x, {"sensor": sensors, "iso": isos})
        batched_tensor = model(x, {"sensor": tuple(sensors), "iso": torch.tensor(isos)})
        single = torch.cat([model(x[i : i + 1], {"sensor": sensors[i], "iso": isos[i]}) for i in range(3)])
    assert torch.allclose(batched_list, single, atol=1e-5)
    assert torch.equal(batched_list, batched_tensor)
    assert not torch.allclose(single[0], single[1], atol=1e-4)


def test_srgb_three_channels() -> None:
    model = _model(in_channels=3, out_channels=3)
    x = _image(2, channels=3)
    with torch.no_grad():
        out = model(x, {"sensor": "NikonD850", "iso": 400.0})
    assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    with pytest.raises(InvalidInputError, match="4 input channels"):
        _model()(x, {"sensor": "NikonD850", "iso": 400.0})


# -- metadata encoding ----------------------------------------------------------------------------------


def test_metadata_vector_layout_and_iso_normalisation() -> None:
    encoder = MetadataEncoder(SENSORS)
    vector = encoder.encode({"sensor": ["NikonD850", "SonyA7S2"], "iso": [100.0, 1600.0]}, 2)
    assert vector.shape == (2, 6) and vector.dtype == torch.float32
    assert vector[:, :3].tolist() == [[0, 1, 0], [1, 0, 0]]
    # log2 rule: ISO 100 -> 0, max_iso 25600 -> 1, 1600 = 4 of 8 stops -> 0.5, repeated n = 3 times.
    assert vector[0, 3:].tolist() == [0.0, 0.0, 0.0]
    assert vector[1, 3:].tolist() == [0.5, 0.5, 0.5]
    linear = MetadataEncoder(SENSORS, iso_norm="linear", max_iso=6400.0, iso_repeat=1)
    assert linear.encode({"sensor": "SonyA7S2", "iso": 1600.0}, 1).tolist() == [[1, 0, 0, 0.25]]
    assert math.isclose(float(MetadataEncoder(SENSORS).normalise_iso(torch.tensor(25600.0))), 1.0)


def test_fallback_slot_and_default_iso() -> None:
    encoder = MetadataEncoder(SENSORS, unknown_sensor="fallback", default_iso=1600.0)
    assert encoder.slots == 4 and encoder.fallback_slot == 3 and encoder.dim == 8
    vector = encoder.encode({"sensor": ["Fuji X-T30", None, "CanonEOS70D"], "iso": [None, 100.0, 25600.0]}, 3)
    assert vector[:, :4].tolist() == [[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 1, 0]]
    assert vector[:, 4].tolist() == [0.5, 0.0, 1.0]
    assert torch.equal(encoder.encode(None, 2), encoder.encode({"sensor": "unknown", "iso": 1600.0}, 2))


# -- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ({"sensor": "Fuji", "iso": 800.0}, r"unknown sensor 'Fuji'; this model knows \['SonyA7S2', 'NikonD850', 'CanonEOS70D'\]"),
        ({"iso": 800.0}, r"needs cond\['sensor'\] \(one of the known sensors \['SonyA7S2'"),
        ({"sensor": "SonyA7S2"}, r"needs cond\['iso'\]"),
        (None, r"needs cond\['sensor'\]"),
        ({"sensor": ["SonyA7S2"] * 3, "iso": 800.0}, r"list of 3 name\(s\) for a batch of N=2"),
        ({"sensor": "SonyA7S2", "iso": [800.0]}, r"list of 1 value\(s\) for a batch of N=2"),
        ({"sensor": "SonyA7S2", "iso": torch.ones(3)}, r"1 value or one per image \(N=2\)"),
        ({"sensor": "SonyA7S2", "iso": -100.0}, r"finite and positive"),
        ({"sensor": "SonyA7S2", "iso": float("nan")}, r"finite and positive"),
        ({"sensor": "SonyA7S2", "iso": "800"}, r"must be a number"),
        ({"sensor": 3, "iso": 800.0}, r"must be a string or a list"),
        ({"sensor": ["SonyA7S2", 7], "iso": 800.0}, r"sensor names must be strings"),
    ],
)
def test_bad_metadata_raises_a_clear_error(cond, message: str) -> None:
    model = _model(randomise_modulation=False)
    with pytest.raises(InvalidInputError, match=message):
        model(_image(2), cond)


def test_fallback_model_accepts_unknown_and_missing_metadata() -> None:
    model = _model(unknown_sensor="fallback")
    x = _image()
    with torch.no_grad():
        missing = model(x)
        unknown = model(x, {"sensor": "Fuji", "iso": 1600.0})
        known = model(x, {"sensor": "SonyA7S2", "iso": 1600.0})
    assert torch.equal(missing, unknown)
    assert not torch.allclose(unknown, known, atol=1e-4)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sensors": []}, "sensors is empty"),
        ({"sensors": "SonyA7S2"}, "must be a list of sensor names"),
        ({"sensors": ["Sony", "sony"]}, r"unique .* duplicates \['Sony', 'sony'\]"),
        ({"sensors": ["Sony", ""]}, "non-empty string"),
        ({"unknown_sensor": "ignore"}, "unknown_sensor must be one of"),
        ({"iso_norm": "sqrt"}, "iso_norm must be one of"),
        ({"max_iso": 50.0}, "max_iso must exceed 100"),
        ({"default_iso": 0}, "default_iso must be a finite positive"),
        ({"iso_repeat": 0}, "iso_repeat must be a positive integer"),
        ({"modulate": ["enc9.0"]}, r"unknown layer 'enc9.0'"),
        ({"levels": 0}, "levels must be a positive integer"),
        ({"residual": True, "out_channels": 3}, "in_channels == out_channels"),
    ],
)
def test_bad_options_raise(options: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ModulationUNet(**{**TINY, **options})


def test_empty_vocabulary_is_allowed_with_fallback() -> None:
    model = ModulationUNet(**{**TINY, "sensors": [], "unknown_sensor": "fallback"})
    assert model.metadata.slots == 1
    with torch.no_grad():
        assert model(_image(), {"sensor": "anything", "iso": 200}).shape == (1, 4, 16, 16)


# -- placement and roles -------------------------------------------------------------------------------------


def test_modulate_subset() -> None:
    model = ModulationUNet(**{**TINY, "modulate": ["decoder", "mid.1"]})
    assert model.modulated_layers == ("mid.1", "dec1.0", "dec1.1", "dec0.0", "dec0.1")
    assert set(model.modulations({"sensor": "SonyA7S2", "iso": 100})) == set(model.modulated_layers)


def test_parameter_roles() -> None:
    model = _model()
    groups = model.parameter_groups()
    ids = lambda params: {id(p) for p in params}  # noqa: E731
    assert ids(groups["first"]) == ids(model.encoder[0].convs[0].conv.parameters())
    assert ids(groups["last"]) == ids(model.output.parameters())
    mlp_params = [p for name, p in model.named_parameters() if ".modulation." in name]
    assert len(mlp_params) == len(model.modulated_layers) * 2 * 4 * 2  # layers × (γ, β) × 4 linears × (W, b)
    assert ids(groups["domain"]) == ids(mlp_params) | ids(model.output.parameters())
    assert ids(groups["modulation"]) == ids(mlp_params)


# -- save / load and tiling ----------------------------------------------------------------------------------


def test_save_load_keeps_the_sensor_vocabulary(tmp_path: Path) -> None:
    model = _model(unknown_sensor="fallback", iso_norm="linear", max_iso=12800.0)
    path = noiseshift.save(model, tmp_path / "mu.safetensors")
    restored = noiseshift.load(path)
    assert isinstance(restored, ModulationUNet)
    assert restored.config()["sensors"] == SENSORS
    assert restored.sensors == tuple(SENSORS)
    assert restored.config() == model.config()
    x = _image(2)
    cond = {"sensor": ["NikonD850", "Fuji"], "iso": [200.0, 3200.0]}
    with torch.no_grad():
        assert torch.equal(restored(x, cond), model(x, cond))


def test_tiled_inference_with_per_image_conditions() -> None:
    model = _model()
    x = _image(2, size=40, seed=3)
    cond = {"sensor": ["SonyA7S2", "CanonEOS70D"], "iso": torch.tensor([400.0, 6400.0])}
    # 9 tiles per image in batches of 4: some batches mix tiles of both images.
    tiled = denoise(model, x, cond, tile=16, overlap=4, batch_size=4)
    assert tiled.shape == x.shape and torch.isfinite(tiled).all()
    for i in range(2):
        alone = denoise(model, x[i : i + 1], {"sensor": cond["sensor"][i], "iso": float(cond["iso"][i])}, tile=16, overlap=4, batch_size=4)
        assert torch.allclose(tiled[i : i + 1], alone, atol=1e-5)
    # The conditions reached the tiles: swapping them changes the result.
    swapped = denoise(model, x, {"sensor": cond["sensor"][::-1], "iso": cond["iso"].flip(0)}, tile=16, overlap=4, batch_size=4)
    assert not torch.allclose(swapped, tiled, atol=1e-4)
    # Shared scalar conditions pass through tiling unchanged, and a 1-image list is gathered per tile.
    shared = denoise(model, x[:1], {"sensor": "SonyA7S2", "iso": 400.0}, tile=16, overlap=4)
    listed = denoise(model, x[:1], {"sensor": ["SonyA7S2"], "iso": [400.0]}, tile=16, overlap=4)
    assert torch.equal(shared, listed)
    assert torch.allclose(shared, tiled[:1], atol=1e-5)
