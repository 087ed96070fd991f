"""The conformance kit catches broken components (each check must be able to fail)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from noiseshift.api import Adapter, Denoiser, NoiseModel, NoisySample, TestTimeAdapter
from noiseshift.registry import ADAPTERS, DENOISERS, HOST
from noiseshift.testing import check_adapter, check_denoiser, check_noise_model, temporary_plugin


class TinyNet(Denoiser):
    name = "tiny_net"

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.tail = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, noisy, cond=None):
        return noisy + self.tail(torch.relu(self.head(noisy)))

    def parameter_groups(self):
        return self.groups_from_modules(first=self.head, last=self.tail, domain=[self.tail])


class ShrinkingNet(TinyNet):
    name = "shrinking"

    def forward(self, noisy, cond=None):
        return super().forward(noisy)[..., 1:, :]


class MissingRoleNet(TinyNet):
    name = "missing_role"

    def parameter_groups(self):
        return {"first": list(self.head.parameters()), "all": list(self.parameters())}


class LeakyAdapter(TestTimeAdapter):
    """Pretends to be episodic but writes into the backbone (what check_adapter must catch)."""

    name = "leaky"

    def configure(self, backbone, noisy, cond):
        return []

    def adapt_and_denoise(self, backbone, noisy, cond):
        with torch.no_grad():
            next(backbone.parameters()).add_(0.01)
        return backbone(noisy, cond)


class OffsetAdapter(TestTimeAdapter):
    """A correct test-time adapter: learns an input offset with a smoothness loss."""

    name = "offset"

    def configure(self, backbone, noisy, cond):
        self.offset = torch.zeros_like(noisy, requires_grad=True)
        return [self.offset]

    def loss(self, backbone, noisy, cond, params, generator):
        out = backbone(noisy + params[0], cond)
        return (out[..., 1:] - out[..., :-1]).abs().mean()

    def predict(self, backbone, noisy, cond, params):
        return backbone(noisy + params[0], cond)


class UnseededNoise(NoiseModel):
    name = "unseeded"

    def sample(self, clean, generator):
        return NoisySample(clean + 0.1 * torch.randn_like(clean))  # ignores the generator


def test_check_denoiser_accepts_a_correct_model_and_rejects_broken_ones() -> None:
    with temporary_plugin(TinyNet, name="kit"):
        check_denoiser(TinyNet)
    with pytest.raises(AssertionError, match="output shape"):
        check_denoiser(ShrinkingNet, check_save_load=False)
    with pytest.raises(AssertionError, match="lacks roles"):
        check_denoiser(MissingRoleNet, check_save_load=False)


def test_check_adapter_catches_a_non_episodic_adapter() -> None:
    check_adapter(OffsetAdapter, config={"steps": 2})
    with pytest.raises(AssertionError, match="not episodic"):
        check_adapter(LeakyAdapter, config={"steps": 1})


def test_check_noise_model_catches_ignored_generator() -> None:
    with pytest.raises(AssertionError, match="same seed gave different noise"):
        check_noise_model(UnseededNoise)


def test_temporary_plugin_registers_and_cleans_up() -> None:
    with temporary_plugin(OffsetAdapter, name="kit_plugin") as record:
        assert record.status == "ok"
        assert ADAPTERS.lookup("kit_plugin.offset") is OffsetAdapter
        assert ADAPTERS.lookup("offset") is OffsetAdapter
    assert "offset" not in ADAPTERS and "kit_plugin" not in HOST.records
    assert "dncnn" in DENOISERS


def test_temporary_plugin_reports_a_failing_plugin() -> None:
    class NoName(Adapter):
        pass

    with pytest.raises(AssertionError, match="needs a lowercase snake_case name"):
        with temporary_plugin(NoName, name="kit_bad"):
            pass
    assert "kit_bad" not in HOST.records
