"""Every registered component passes the ``noiseshift.testing`` conformance checks.

New components (built-in or from an installed plugin) are picked up automatically; components
whose defaults are too heavy for a CPU smoke test declare a small preset as the class attribute
``smoke_config``; backbones that need conditions declare example values as ``smoke_cond``.
"""

from __future__ import annotations

import pytest

from noiseshift.registry import ADAPTERS, BENCHMARKS, DENOISERS, HOST, LOSSES, NOISE_MODELS
from noiseshift.testing import check_adapter, check_denoiser, check_noise_model

HOST.load()


def _config(registry, name: str) -> dict | None:
    """A component's own small preset (its ``smoke_config`` class attribute), if it has one."""
    return getattr(registry.lookup(name), "smoke_config", None)


def _names(registry) -> list[str]:
    return sorted(set(registry.names(qualified=False)))


@pytest.mark.parametrize("name", _names(DENOISERS))
def test_denoiser_conforms(name: str) -> None:
    check_denoiser(DENOISERS.lookup(name), config=_config(DENOISERS, name),
                   cond=getattr(DENOISERS.lookup(name), "smoke_cond", None))


@pytest.mark.parametrize("name", _names(NOISE_MODELS))
def test_noise_model_conforms(name: str) -> None:
    check_noise_model(NOISE_MODELS.lookup(name), config=_config(NOISE_MODELS, name))


@pytest.mark.parametrize("name", _names(ADAPTERS))
def test_adapter_conforms(name: str) -> None:
    check_adapter(ADAPTERS.lookup(name), config=_config(ADAPTERS, name))


@pytest.mark.parametrize("name", _names(LOSSES))
def test_loss_is_differentiable_and_smallest_at_the_target(name: str) -> None:
    """Pixel losses are ``loss(output, target)``; self-supervised ones (``self_supervised = True``)
    are ``loss(denoise_fn, noisy, generator=, step=, total_steps=)`` and are checked on a smoothing
    "denoiser" with one learnable strength; noise-estimation ones (``needs_noise_map = True``) are
    ``loss(output, target, aux=, sigma=)`` and must also send gradients to the estimate."""
    import torch

    from noiseshift.registry import LOSSES as registry

    component = registry.lookup(name)
    loss = registry.build({"type": name}) if isinstance(component, type) else component
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 8, 8, generator=generator)
    if getattr(component, "self_supervised", False):
        strength = torch.tensor(0.5, requires_grad=True)

        def denoise_fn(x: torch.Tensor) -> torch.Tensor:
            blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
            return x + strength * (blurred - x)

        noisy = target + 0.1 * torch.randn(target.shape, generator=generator)
        value = loss(denoise_fn, noisy, generator=torch.Generator().manual_seed(1), step=1, total_steps=2)
        assert value.dim() == 0 and torch.isfinite(value)
        value.backward()
        assert strength.grad is not None and strength.grad != 0
        return
    if getattr(component, "needs_noise_map", False):
        # Noise-estimation losses also supervise the backbone's estimate aux["sigma"].
        sigma = torch.full_like(target, 0.05)
        estimate = (sigma + 0.02).requires_grad_(True)
        value = loss(target + 0.1, target, aux={"sigma": estimate}, sigma=sigma)
        assert value.dim() == 0 and float(value.detach()) > 0
        value.backward()
        assert estimate.grad is not None and estimate.grad.abs().sum() > 0
        assert float(loss(target, target, aux={"sigma": sigma}, sigma=sigma)) < float(value.detach())
        return
    output = (target + 0.1).requires_grad_(True)
    value = loss(output, target)
    assert value.dim() == 0 and float(value.detach()) > 0
    value.backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert float(loss(target, target)) < float(value.detach())


def test_every_registry_kind_is_exercised() -> None:
    assert _names(DENOISERS) and _names(NOISE_MODELS) and _names(ADAPTERS) and _names(LOSSES)
    assert isinstance(_names(BENCHMARKS), list)
