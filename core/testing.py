"""Conformance checks for component authors, in the spirit of scikit-learn's ``check_estimator``.

Call them from a plugin's tests::

    from noiseshift.testing import check_adapter, temporary_plugin

    def test_my_adapter_conforms():
        check_adapter(MyAdapter, config={"steps": 2})

    def test_registered():
        with temporary_plugin(my_plugin_module, name="my_plugin"):
            assert "my_plugin.my_adapter" in ADAPTERS

Each check raises ``AssertionError`` with a message naming the broken rule. The core's own
test suite runs them over every registered component.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import tempfile
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from .adapter import ADAPTER_NEEDS, AdaptedDenoiser, Adapter
from .benchmark import Benchmark, ScoringConventions
from .denoiser import PARAMETER_ROLES, Denoiser
from .errors import InvalidInputError
from .noise_model import NoiseModel
from .types import NoisySample, Sample

SMALL_DNCNN = {"type": "dncnn", "depth": 3, "width": 8}
"""The tiny backbone adapters are checked on when the caller gives none."""


def _instance(component: Any, config: Mapping[str, Any] | None, base: type) -> Any:
    if isinstance(component, type):
        assert issubclass(component, base), f"{component.__qualname__} is not a {base.__name__}"
        return component(**dict(config or {}))
    assert isinstance(component, base), f"{component!r} is not a {base.__name__}"
    return component


def _smooth_image(channels: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A deterministic natural-ish test image in [0, 1]: smooth gradients plus texture."""
    generator = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, height).view(1, 1, height, 1)
    xs = torch.linspace(0, 1, width).view(1, 1, 1, width)
    phase = torch.rand(1, channels, 1, 1, generator=generator) * math.tau
    image = 0.5 + 0.25 * torch.sin(6 * xs + phase) * torch.cos(4 * ys + phase)
    image = image + 0.1 * torch.rand(1, channels, height, width, generator=generator)
    return image.clamp(0, 1).float()


def state_hash(module: torch.nn.Module) -> str:
    """SHA-256 of a module's state dict (names and bytes): equal hashes mean bit-identical state."""
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _test_size(size_multiple: int, at_least: int = 24) -> int:
    return max(size_multiple, math.ceil(at_least / size_multiple) * size_multiple)


# -- Sweeps over every installed backbone ------------------------------------------------------


def backbone_names() -> tuple[list[str], list[str]]:
    """Short registry names of every installed backbone, plugins loaded.

    Returns:
        ``(trainable, parameter_free)``, each sorted.
    """
    from .registry import DENOISERS, HOST

    HOST.load()
    names = sorted(set(DENOISERS.names(qualified=False)))
    trainable = [n for n in names if getattr(DENOISERS.lookup(n), "trainable", True)]
    return trainable, [n for n in names if n not in trainable]


def backbone_sweep(parameter_free_reason: str | None = None) -> list[Any]:
    """``pytest.mark.parametrize`` values: every installed backbone, so an adapter plugin's
    tests cover backbones from plugins it has never heard of.

    Args:
        parameter_free_reason: when given, parameter-free backbones (BM3D, NLM) are included
            but skipped with this reason (say which test checks that they are refused);
            otherwise they are left out.
    """
    import pytest

    trainable, free = backbone_names()
    params = [pytest.param(name, id=name) for name in trainable]
    if parameter_free_reason is not None:
        params += [pytest.param(name, id=name, marks=pytest.mark.skip(reason=f"{name}: {parameter_free_reason}"))
                   for name in free]
    return params


def parameter_free_sweep() -> list[Any]:
    """``pytest.mark.parametrize`` values of the parameter-free backbones (a skipped placeholder
    when none is installed), for tests that check an adapter refuses them."""
    import pytest

    free = backbone_names()[1]
    return [pytest.param(n, id=n) for n in free] or [pytest.param("none", marks=pytest.mark.skip("none installed"))]


def smoke_backbone(name: str, seed: int = 0) -> Denoiser:
    """A registered backbone at its small preset (``smoke_config``), seeded, in eval mode."""
    from .registry import DENOISERS

    config = getattr(DENOISERS.lookup(name), "smoke_config", None) or {}
    torch.manual_seed(seed)
    return DENOISERS.build({"type": name, **config}).eval()


def smoke_input(backbone: Denoiser, side: int = 16, seed: int = 0) -> tuple[torch.Tensor, dict[str, Any] | None]:
    """A smooth test image for ``backbone`` and its example conditions.

    Returns:
        ``(image, cond)``: ``1×in_channels×S×S`` in ``[0, 1]`` with ``S`` the smallest multiple of
        the backbone's ``size_multiple`` that is at least ``side``; ``cond`` is the backbone's
        ``smoke_cond`` (``None`` when it has none).
    """
    size = _test_size(backbone.size_multiple, side)
    cond = getattr(type(backbone), "smoke_cond", None)
    return _smooth_image(backbone.in_channels, size, size, seed), (dict(cond) if cond else None)


# -- Denoiser ------------------------------------------------------------------------------


def check_denoiser(
    component: type[Denoiser] | Denoiser,
    *,
    config: Mapping[str, Any] | None = None,
    size: int | None = None,
    cond: Mapping[str, Any] | None = None,
    check_save_load: bool = True,
) -> Denoiser:
    """Check the ``Denoiser`` contract.

    Checks: class attributes; ``parameter_groups`` has the four roles and every role is a
    subset of ``all``; output shape, dtype, device and finiteness; unknown ``cond`` keys are
    ignored; eval-mode determinism; batch independence; gradients reach the ``first`` and
    ``last`` layers; odd sizes work through ``noiseshift.inference.denoise``; the constructor
    config is JSON-serialisable and rebuilds the same architecture; a save/load round trip
    reproduces the output.

    Args:
        component: the class (built with ``config``) or an instance.
        config: constructor arguments (use a small preset for big paper models).
        size: test image side (default: ≥ 24, a multiple of ``size_multiple``).
        cond: extra per-batch conditions the backbone needs (e.g. ``{"sensor": "Sony",
            "iso": 800.0}``); use values that apply to every image of a batch (strings, floats).
        check_save_load: run the safetensors round trip (needs the class to be registered).

    Returns:
        The instance that was checked.
    """
    from .inference import denoise

    model = _instance(component, config, Denoiser).eval()
    label = model.name or type(model).__name__
    assert isinstance(model.name, str) and model.name, f"{label}: class attribute `name` is empty"
    assert isinstance(model.size_multiple, int) and model.size_multiple >= 1, f"{label}: bad size_multiple"
    assert all(isinstance(c, str) for c in model.conditions), f"{label}: conditions must be strings"

    groups = model.parameter_groups()
    missing = [role for role in PARAMETER_ROLES if role not in groups]
    assert not missing, f"{label}: parameter_groups() lacks roles {missing}"
    all_ids = {id(p) for p in model.parameters()}
    assert {id(p) for p in groups["all"]} == all_ids, f"{label}: role 'all' must be every parameter"
    for role, params in groups.items():
        stray = [p for p in params if id(p) not in all_ids]
        assert not stray, f"{label}: role {role!r} holds {len(stray)} parameter(s) not in the model"
    if model.trainable:
        for role in ("first", "last", "domain", "all"):
            assert groups[role], f"{label}: trainable denoiser with empty role {role!r}"
    else:
        assert not all_ids, f"{label}: trainable=False but the model has parameters"

    side = size or _test_size(model.size_multiple)
    noisy = _smooth_image(model.in_channels, side, side, seed=1)
    noisy = (noisy + 0.05 * torch.randn(noisy.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    extra = dict(cond or {})
    cond = {"sigma": torch.full((1, 1, side, side), 0.05), "unrelated_key": "ignored", **extra}
    with torch.no_grad():
        out = model(noisy, cond)
        again = model(noisy, cond)
    assert isinstance(out, torch.Tensor), f"{label}: forward must return a tensor"
    assert out.shape == (1, model.out_channels, side, side), (
        f"{label}: output shape {tuple(out.shape)} != {(1, model.out_channels, side, side)}"
    )
    assert out.dtype == torch.float32, f"{label}: output dtype {out.dtype}, expected float32"
    assert out.device == noisy.device, f"{label}: output on {out.device}, input on {noisy.device}"
    assert torch.isfinite(out).all(), f"{label}: output has NaN/inf"
    assert torch.equal(out, again), f"{label}: eval-mode forward is not deterministic"

    pair = torch.cat([noisy, noisy.flip(-1)])
    pair_cond = {**extra, "sigma": cond["sigma"].expand(2, -1, -1, -1)}
    with torch.no_grad():
        batched = model(pair, pair_cond)
        second = model(pair[1:], {**extra, "sigma": cond["sigma"]})
    assert torch.allclose(batched[:1], out, atol=1e-5) and torch.allclose(batched[1:], second, atol=1e-5), (
        f"{label}: images in a batch influence each other (eval mode)"
    )

    odd = _smooth_image(model.in_channels, side + 3, side + 5, seed=3)
    odd_out = denoise(model, odd, extra or None)
    assert odd_out.shape == (1, model.out_channels, side + 3, side + 5), (
        f"{label}: padding through noiseshift.inference.denoise broke the shape: {tuple(odd_out.shape)}"
    )

    if model.trainable:
        model.zero_grad(set_to_none=True)
        model(noisy, cond).square().mean().backward()
        for role in ("first", "last"):
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in groups[role]), (
                f"{label}: no gradient reaches role {role!r}"
            )
        model.zero_grad(set_to_none=True)

    try:
        encoded = json.dumps(model.config())
    except TypeError as exc:
        raise AssertionError(f"{label}: constructor config is not JSON-serialisable: {exc}") from exc
    rebuilt = type(model)(**json.loads(encoded))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}, (
        f"{label}: type(model)(**model.config()) builds a different architecture"
    )

    if check_save_load and model.trainable:
        from .weights import load, save

        with tempfile.TemporaryDirectory() as folder:
            path = save(model, Path(folder) / "model.safetensors")
            restored = load(path)
            assert type(restored) is type(model), f"{label}: load() rebuilt {type(restored).__name__}"
            with torch.no_grad():
                assert torch.equal(restored(noisy, cond), out), f"{label}: save/load changes the output"
    return model


# -- NoiseModel ----------------------------------------------------------------------------


def check_noise_model(
    component: type[NoiseModel] | NoiseModel,
    *,
    config: Mapping[str, Any] | None = None,
    channels: int | None = None,
    size: int = 32,
) -> NoiseModel:
    """Check the ``NoiseModel`` contract.

    Checks: returns a ``NoisySample`` with the input's shape, dtype and device; finite output;
    the input is not modified; the same seed gives the same output and another seed a
    different one; the σ map (when given) is non-negative and broadcastable to the image;
    malformed input raises ``InvalidInputError``.
    """
    model = _instance(component, config, NoiseModel)
    label = model.name or type(model).__name__
    assert model.name, f"{label}: class attribute `name` is empty"
    assert model.domain in {"srgb", "raw"}, f"{label}: domain must be 'srgb' or 'raw'"
    channels = channels or model.in_channels or (3 if model.domain == "srgb" else 4)
    clean = torch.cat([_smooth_image(channels, size, size, seed=s) for s in (4, 5)])
    before = clean.clone()
    first = model(clean, torch.Generator().manual_seed(7))
    assert isinstance(first, NoisySample), f"{label}: must return a NoisySample"
    assert torch.equal(clean, before), f"{label}: modified its input in place"
    assert first.noisy.shape == clean.shape and first.noisy.dtype == clean.dtype, (
        f"{label}: noisy {tuple(first.noisy.shape)}/{first.noisy.dtype} vs clean {tuple(clean.shape)}/{clean.dtype}"
    )
    assert torch.isfinite(first.noisy).all(), f"{label}: noisy output has NaN/inf"
    assert not torch.equal(first.noisy, clean), f"{label}: added no noise"
    same = model(clean, torch.Generator().manual_seed(7))
    other = model(clean, torch.Generator().manual_seed(8))
    assert torch.equal(first.noisy, same.noisy), f"{label}: same seed gave different noise"
    assert not torch.equal(first.noisy, other.noisy), f"{label}: different seeds gave identical noise"
    if first.sigma is not None:
        assert first.sigma.dim() == 4, f"{label}: sigma map must be N×C×H×W or N×1×H×W"
        torch.broadcast_shapes(first.sigma.shape, clean.shape)
        assert (first.sigma >= 0).all(), f"{label}: sigma map has negative values"
    for bad in (clean[0], clean.to(torch.int64), torch.full_like(clean, float("nan"))):
        try:
            model(bad, torch.Generator().manual_seed(0))
        except InvalidInputError:
            continue
        raise AssertionError(f"{label}: accepted malformed input of shape {tuple(bad.shape)}/{bad.dtype}")
    return model


# -- Adapter -------------------------------------------------------------------------------


def _tiny_pairs(channels: int, count: int = 3, size: int = 32) -> list[Sample]:
    generator = torch.Generator().manual_seed(11)
    pairs = []
    for index in range(count):
        clean = _smooth_image(channels, size, size, seed=20 + index)
        noisy = clean + 0.1 * torch.randn(clean.shape, generator=generator)
        pairs.append(Sample(f"pair{index}", noisy.clamp(0, 1), clean))
    return pairs


def check_adapter(
    component: type[Adapter] | Adapter,
    *,
    config: Mapping[str, Any] | None = None,
    backbone: Denoiser | None = None,
    noise_model: NoiseModel | None = None,
) -> Adapter:
    """Check the ``Adapter`` contract on a tiny backbone.

    Checks: declared capabilities are valid; ``wrap`` returns a ``Denoiser`` with the
    backbone's channels and size multiple; output shape, dtype and finiteness; data-driven
    adapters ``fit`` on tiny pairs, change only parameters of their declared roles and report
    them in ``delta``; test-time adapters are episodic (backbone weights, ``requires_grad``
    flags and mode identical after a call, no gradients left, same input → same output); the
    wrapped model composes with tiled inference.

    Args:
        component: the class (built with ``config``) or an instance; use few steps.
        config: constructor arguments.
        backbone: the backbone to wrap (default: a 3-layer DnCNN of width 8).
        noise_model: given to ``fit`` when the adapter needs one (default: Gaussian σ 0.1).
    """
    from .inference import tiled_denoise
    from .registry import DENOISERS, NOISE_MODELS

    adapter = _instance(component, config, Adapter)
    label = adapter.name or type(adapter).__name__
    assert adapter.name, f"{label}: class attribute `name` is empty"
    assert set(adapter.needs) <= ADAPTER_NEEDS, f"{label}: unknown needs {set(adapter.needs) - ADAPTER_NEEDS}"
    assert isinstance(adapter.per_image, bool), f"{label}: per_image must be a bool"
    json.dumps(adapter.config())

    backbone = backbone if backbone is not None else DENOISERS.build(SMALL_DNCNN)
    backbone.eval()
    for role in adapter.trainable:
        assert role in backbone.parameter_groups(), f"{label}: trains unknown role {role!r}"
    model = adapter.wrap(backbone)
    assert isinstance(model, Denoiser), f"{label}: wrap() must return a Denoiser"
    assert (model.in_channels, model.out_channels, model.size_multiple) == (
        backbone.in_channels, backbone.out_channels, backbone.size_multiple,
    ), f"{label}: wrapped model changes channels or size_multiple"

    pairs = _tiny_pairs(backbone.in_channels, size=_test_size(backbone.size_multiple, 32))
    if not adapter.per_image:
        before = {k: v.clone() for k, v in backbone.state_dict().items()}
        noise_model = noise_model or NOISE_MODELS.build({"type": "gaussian", "sigma": 0.1})
        report = adapter.fit(
            model,
            target=pairs if "target_pairs" in adapter.needs else None,
            source=[pairs] if "source_pairs" in adapter.needs else None,
            noise_model=noise_model if "noise_model" in adapter.needs else None,
            generator=torch.Generator().manual_seed(0),
        )
        changed = {k for k, v in backbone.state_dict().items() if not torch.equal(v, before[k])}
        allowed: set[str] = set()
        names = {id(p): n for n, p in backbone.named_parameters()}
        for role in adapter.trainable:
            allowed |= {names[id(p)] for p in backbone.parameters_for(role)}
        buffers = {n for n, _ in backbone.named_buffers()}
        assert changed - buffers <= allowed, (
            f"{label}: fit changed parameters outside its roles {adapter.trainable}: "
            f"{sorted(changed - buffers - allowed)[:5]}"
        )
        if adapter.trainable and any(p.numel() for r in adapter.trainable for p in backbone.parameters_for(r)):
            assert changed, f"{label}: fit() changed nothing"
            assert report.steps > 0, f"{label}: FitReport.steps is 0 after training"
        delta = adapter.delta(model)
        assert changed - buffers <= set(delta), f"{label}: delta() misses changed tensors"
        assert all(p.grad is None for p in backbone.parameters()), f"{label}: fit() leaves gradients behind"

    sample = pairs[0]
    flags = [p.requires_grad for p in backbone.parameters()]
    digest = state_hash(backbone)
    out = model(sample.noisy)
    assert out.shape == sample.noisy.shape[:1] + (backbone.out_channels,) + sample.noisy.shape[2:], (
        f"{label}: output shape {tuple(out.shape)}"
    )
    assert out.dtype == torch.float32 and torch.isfinite(out).all(), f"{label}: bad output dtype/values"
    if adapter.per_image:
        assert state_hash(backbone) == digest, f"{label}: not episodic, the backbone changed during forward"
        assert [p.requires_grad for p in backbone.parameters()] == flags, f"{label}: requires_grad flags changed"
        assert all(p.grad is None for p in backbone.parameters()), f"{label}: gradients left on the backbone"
        assert not backbone.training, f"{label}: left the backbone in train mode"
        repeat = model(sample.noisy)
        assert torch.allclose(out, repeat, atol=1e-6), f"{label}: state leaks between calls"
    tiled = tiled_denoise(model, torch.cat([sample.noisy, sample.noisy], dim=-1), tile=sample.noisy.shape[-1], overlap=8)
    assert tiled.shape[-1] == 2 * sample.noisy.shape[-1], f"{label}: does not compose with tiling"
    return adapter


# -- Benchmark -----------------------------------------------------------------------------


def check_benchmark(benchmark: Benchmark, *, max_samples: int = 4) -> Benchmark:
    """Check the ``Benchmark`` contract on (the first ``max_samples`` of) a built benchmark.

    Checks: conventions are recorded; samples have unique string keys and ``1×C×H×W`` float32
    images in ``[0, 1]``; ground truth presence matches ``has_ground_truth``; scoring the
    ground truth against itself is perfect and scoring the noisy input is worse.
    """
    label = benchmark.name or type(benchmark).__name__
    assert isinstance(benchmark, Benchmark), f"{label}: not a Benchmark"
    assert benchmark.name, f"{label}: class attribute `name` is empty"
    assert isinstance(benchmark.conventions, ScoringConventions), f"{label}: conventions must be ScoringConventions"
    json.dumps(benchmark.conventions.as_dict())
    assert len(benchmark) > 0, f"{label}: is empty"
    keys: set[str] = set()
    for index, sample in enumerate(benchmark):
        if index >= max_samples:
            break
        assert isinstance(sample, Sample), f"{label}: yields {type(sample).__name__}, not Sample"
        assert isinstance(sample.key, str) and sample.key not in keys, f"{label}: duplicate key {sample.key!r}"
        keys.add(sample.key)
        noisy = sample.noisy
        assert noisy.dim() == 4 and noisy.shape[0] == 1, f"{label}: {sample.key}: noisy must be 1×C×H×W"
        assert noisy.dtype == torch.float32, f"{label}: {sample.key}: noisy is {noisy.dtype}"
        assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1, f"{label}: {sample.key}: noisy outside [0, 1]"
        if benchmark.has_ground_truth:
            assert sample.clean is not None, f"{label}: {sample.key}: has_ground_truth but clean is None"
            assert sample.clean.shape == noisy.shape, f"{label}: {sample.key}: clean/noisy shapes differ"
            perfect = benchmark.score(sample.clean, sample)
            assert perfect["psnr"] == math.inf or perfect["psnr"] > 90, f"{label}: GT vs GT psnr {perfect['psnr']}"
            assert abs(perfect["ssim"] - 1) < 1e-6, f"{label}: GT vs GT ssim {perfect['ssim']}"
            worse = benchmark.score(noisy, sample)
            assert math.isfinite(worse["psnr"]) and worse["psnr"] < perfect["psnr"], f"{label}: scoring is off"
        else:
            assert sample.clean is None, f"{label}: has_ground_truth=False but sample has clean"
    return benchmark


# -- plugins -------------------------------------------------------------------------------

_KIND_OF_BASE: list[tuple[type, str]] = [
    (Denoiser, "register_denoisers"),
    (NoiseModel, "register_noise_models"),
    (Adapter, "register_adapters"),
    (Benchmark, "register_benchmarks"),
]


@contextlib.contextmanager
def temporary_plugin(plugin: Any, name: str = "temporary") -> Iterator[Any]:
    """Register a plugin for the duration of a ``with`` block, then remove everything it added.

    Args:
        plugin: a module or object with ``@hookimpl`` functions, or a single component class
            (a hook that registers it is made for you).
        name: the plugin name (its registry scope: ``'<name>.<component>'``).

    Yields:
        The plugin's ``PluginRecord``.

    Raises:
        AssertionError: the plugin failed to load (the record's error is in the message).
    """
    from .registry import HOST, hookimpl

    if isinstance(plugin, type):
        hook = next((h for base, h in _KIND_OF_BASE if issubclass(plugin, base)), "register_losses")
        component = plugin

        def register_hook(register: Any) -> None:
            register(component)

        plugin = types.SimpleNamespace(**{hook: hookimpl(specname=hook)(register_hook)})
    else:
        # pluggy registers an object under one name only, and the module under test is often
        # already loaded through its entry point: register a view holding just its hooks.
        marker = "noiseshift_impl"
        plugin = types.SimpleNamespace(
            **{attr: getattr(plugin, attr) for attr in dir(plugin) if hasattr(getattr(plugin, attr, None), marker)}
        )
    HOST.load()
    if name in HOST.records:
        raise AssertionError(f"a plugin named {name!r} is already loaded")
    record = HOST.add_plugin(name, plugin)
    try:
        if record.status == "failed":
            raise AssertionError(f"plugin {name!r} failed to load: {record.error}")
        yield record
    finally:
        HOST.remove_plugin(name)
