"""The hooks a noiseshift plugin can implement (pluggy project ``noiseshift``).

Every hook follows the register-callback style: the core passes a ``register`` function and the
plugin calls it once per component class. The core validates each class, files it under the
plugin's own scope (``type='<plugin>.<name>'`` always resolves) and binds the short name only
when it is unique. Hooks may take a subset of the arguments below, so new keyword arguments can
be added later without breaking existing plugins.

A minimal plugin module::

    from noiseshift.api import Adapter, hookimpl

    class MyAdapter(Adapter):
        name = "my_adapter"

    @hookimpl
    def register_adapters(register):
        register(MyAdapter)
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT = "noiseshift"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[..., None]
"""``register(component_class, name=None)``; ``name`` defaults to the class's ``name``."""


@hookspec
def register_denoisers(register: Register) -> None:
    """Register ``Denoiser`` subclasses (backbones and classical methods)."""


@hookspec
def register_noise_models(register: Register) -> None:
    """Register ``NoiseModel`` subclasses."""


@hookspec
def register_adapters(register: Register) -> None:
    """Register ``Adapter`` subclasses."""


@hookspec
def register_benchmarks(register: Register) -> None:
    """Register ``Benchmark`` subclasses."""


@hookspec
def register_losses(register: Register) -> None:
    """Register losses: ``torch.nn.Module`` subclasses or plain functions ``f(output, target)``."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add subcommands to the ``noiseshift`` click group (``cli.add_command(...)``)."""


COMPONENT_HOOKS: dict[str, str] = {
    "denoisers": "register_denoisers",
    "noise_models": "register_noise_models",
    "adapters": "register_adapters",
    "benchmarks": "register_benchmarks",
    "losses": "register_losses",
}
"""Registry kind -> the hook that fills it."""

ALL_HOOKS: frozenset[str] = frozenset(COMPONENT_HOOKS.values()) | {"register_commands"}
