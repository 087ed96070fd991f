"""noiseshift's registries and plugin system.

Five root registries (mmengine ``Registry`` subclasses, scope ``noiseshift``) hold the
components by kind. Built-ins and plugins fill them through the same pluggy hooks; see
``registry.hookspecs`` for the hooks and ``registry.loader`` for the guarded loading rules.

Example:
    >>> from noiseshift.registry import DENOISERS
    >>> model = DENOISERS.build({"type": "dncnn", "depth": 5})
"""

from __future__ import annotations

from .component_registry import ComponentRegistry
from .hookspecs import COMPONENT_HOOKS, hookimpl, hookspec
from .loader import ENTRY_POINT_GROUP, PluginHost, PluginRecord

HOST = PluginHost()
"""The process-wide plugin host."""

DENOISERS: ComponentRegistry = HOST.registries["denoisers"]
NOISE_MODELS: ComponentRegistry = HOST.registries["noise_models"]
ADAPTERS: ComponentRegistry = HOST.registries["adapters"]
BENCHMARKS: ComponentRegistry = HOST.registries["benchmarks"]
LOSSES: ComponentRegistry = HOST.registries["losses"]

KINDS: dict[str, ComponentRegistry] = dict(HOST.registries)
"""Kind name (as used by ``noiseshift list <kind>``) -> root registry."""


def load_plugins() -> None:
    """Load built-ins and installed plugins (idempotent; lookups call it for you)."""
    HOST.load()


def plugin_records() -> list[PluginRecord]:
    """One record per plugin (built-ins first), after loading."""
    HOST.load()
    return list(HOST.records.values())


__all__ = [
    "ADAPTERS",
    "BENCHMARKS",
    "COMPONENT_HOOKS",
    "ComponentRegistry",
    "DENOISERS",
    "ENTRY_POINT_GROUP",
    "HOST",
    "KINDS",
    "LOSSES",
    "NOISE_MODELS",
    "PluginHost",
    "PluginRecord",
    "hookimpl",
    "hookspec",
    "load_plugins",
    "plugin_records",
]
