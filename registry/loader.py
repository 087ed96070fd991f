"""The guarded plugin loader.

Plugins are distributions that declare an entry point in the group ``noiseshift``; the entry
point's name is the plugin's name (and its registry scope). Loading is lazy (on the first
registry lookup or CLI start), idempotent and guarded: a plugin that fails to import, implements
an unknown hook, or registers an invalid component is reported (name, distribution, version,
error, hint) and skipped; the others still load. pluggy's ``load_setuptools_entrypoints`` is not
used because it aborts on the first failure, making the outcome depend on install order.

Environment:
    NOISESHIFT_STRICT_PLUGINS=1: a failing plugin raises ``PluginLoadError`` instead.
    NOISESHIFT_DISABLE_PLUGINS=a,b: skip these plugins (reported as ``disabled``).
    NOISESHIFT_LOAD_PLUGINS=a,b: load only these plugins (empty value: none).
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import sys
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy
from torch import nn

from noiseshift.adapter import ADAPTER_NEEDS, Adapter
from noiseshift.benchmark import Benchmark
from noiseshift.denoiser import Denoiser
from noiseshift.errors import NameCollisionError, PluginLoadError
from noiseshift.noise_model import NoiseModel

from . import hookspecs
from .component_registry import ComponentRegistry

ENTRY_POINT_GROUP = hookspecs.PROJECT
BUILTIN = "noiseshift"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

_BASES: dict[str, type | None] = {
    "denoisers": Denoiser,
    "noise_models": NoiseModel,
    "adapters": Adapter,
    "benchmarks": Benchmark,
    "losses": None,  # a loss is an nn.Module subclass or a plain function
}


@dataclass
class PluginRecord:
    """What the loader knows about one plugin.

    Attributes:
        name: plugin (entry point) name, also its registry scope.
        distribution / version: the installed distribution that declares it.
        status: ``builtin``, ``ok``, ``failed`` or ``disabled``.
        error: ``ExceptionType: message`` when it failed.
        hint: what the user can do about a failure.
        hooks: the hooks it implements.
        provides: ``{kind: [names]}`` it registered.
        warnings: non-fatal problems (e.g. a short name shadowed by a built-in).
    """

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    status: str = "ok"
    error: str | None = None
    hint: str | None = None
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _env_list(variable: str) -> list[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


class PluginHost:
    """Owns the pluggy manager, the five root registries and the per-plugin records."""

    def __init__(self) -> None:
        self.registries: dict[str, ComponentRegistry] = {
            kind: ComponentRegistry(kind, ensure_loaded=self.load) for kind in hookspecs.COMPONENT_HOOKS
        }
        for registry in self.registries.values():
            registry._failed_plugins = self.failed_plugins
        self._reset_state()

    def _reset_state(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        # kind -> short name -> [(provider, component)], in registration order
        self._providers: dict[str, dict[str, list[tuple[str, Any]]]] = {
            kind: {} for kind in hookspecs.COMPONENT_HOOKS
        }
        self._loaded = False
        self._warned: set[str] = set()

    # -- public ---------------------------------------------------------------------------

    def load(self) -> None:
        """Load the built-ins and every installed plugin, once."""
        if self._loaded:
            return
        self._loaded = True  # set first: lookups made while loading must not recurse
        from noiseshift import builtins

        record = PluginRecord(BUILTIN, distribution="noiseshift", version=_version("noiseshift"),
                              module=builtins.__name__, status="builtin")
        self.add_plugin(BUILTIN, builtins, record)
        allow = _env_list("NOISESHIFT_LOAD_PLUGINS")
        block = set(_env_list("NOISESHIFT_DISABLE_PLUGINS") or [])
        for entry_point in _entry_points():
            self._load_entry_point(entry_point, allow, block)

    def reload(self) -> None:
        """Forget everything and load again (used by tests that install plugins)."""
        for registry in self.registries.values():
            registry._module_dict.clear()
            registry._ambiguous.clear()
            registry._children.clear()
        self._reset_state()
        self.load()

    def failed_plugins(self) -> list[str]:
        return [name for name, rec in self.records.items() if rec.status == "failed"]

    def add_plugin(self, name: str, module: object, record: PluginRecord | None = None) -> PluginRecord:
        """Register a plugin object and run its component hooks; failures are recorded.

        Args:
            name: the plugin name (registry scope).
            module: a module or object carrying ``@hookimpl`` functions.
            record: a prepared record (distribution info); a fresh one otherwise.
        """
        record = record or PluginRecord(name, module=getattr(module, "__name__", None))
        self.records[name] = record
        try:
            if name != BUILTIN and not NAME_PATTERN.match(name):
                raise PluginLoadError(
                    f"plugin name {name!r} is not lowercase snake_case (it is used as a registry scope)"
                )
            self._check_hook_names(module)
            self.pm.register(module, name=name)
            try:
                record.hooks = sorted(c.name for c in self.pm.get_hookcallers(module) or [])
                staged = self._collect(name, module)
                self._commit(name, staged, record)
            except BaseException:
                self.pm.unregister(module)
                raise
        except Exception as exc:  # a broken plugin must not take the toolbox down
            if name == BUILTIN:
                raise  # a failing core is a bug in noiseshift itself, never something to skip
            self._fail(record, exc)
        return record

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and everything it registered."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.records.pop(name, None)
        for kind, providers in self._providers.items():
            registry = self.registries[kind]
            registry._children.pop(name, None)
            for short in list(providers):
                remaining = [(p, obj) for p, obj in providers[short] if p != name]
                if len(remaining) != len(providers[short]):
                    providers[short] = remaining
                    self._rebind(kind, short)

    def call_register_commands(self, cli: Any) -> None:
        """Let every loaded plugin add CLI subcommands; a failing one is recorded, not fatal."""
        self.load()
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:
                record = self.records.get(impl.plugin_name)
                message = f"register_commands failed: {type(exc).__name__}: {exc}"
                if _strict():
                    raise PluginLoadError(f"plugin {impl.plugin_name!r}: {message}") from exc
                if record is not None:
                    record.warnings.append(message)
                self._warn(impl.plugin_name, message)

    # -- internals ------------------------------------------------------------------------

    def _load_entry_point(
        self, entry_point: metadata.EntryPoint, allow: list[str] | None, block: set[str]
    ) -> None:
        dist = getattr(entry_point, "dist", None)
        record = PluginRecord(
            entry_point.name,
            distribution=dist.name if dist is not None else None,
            version=dist.version if dist is not None else None,
            module=entry_point.value,
        )
        if entry_point.name in self.records:
            other = self.records[entry_point.name]
            record.name = f"{entry_point.name} ({record.distribution})"
            self.records[record.name] = record
            self._fail(record, PluginLoadError(
                f"plugin name {entry_point.name!r} is already taken by distribution "
                f"{other.distribution!r}"
            ))
            return
        if entry_point.name in block or (allow is not None and entry_point.name not in allow):
            record.status = "disabled"
            record.hint = ("listed in NOISESHIFT_DISABLE_PLUGINS" if entry_point.name in block
                           else "not listed in NOISESHIFT_LOAD_PLUGINS")
            self.records[entry_point.name] = record
            return
        try:
            module = entry_point.load()
        except Exception as exc:
            self.records[entry_point.name] = record
            self._fail(record, exc)
            return
        self.add_plugin(entry_point.name, module, record)

    def _check_hook_names(self, module: object) -> None:
        marker = f"{hookspecs.PROJECT}_impl"
        for attr in dir(module):
            function = getattr(module, attr, None)
            opts = getattr(function, marker, None)
            if not isinstance(opts, dict):
                continue
            hook = opts.get("specname") or attr
            if hook not in hookspecs.ALL_HOOKS:
                import difflib

                close = difflib.get_close_matches(hook, sorted(hookspecs.ALL_HOOKS), n=1)
                suggestion = f" (did you mean {close[0]!r}?)" if close else ""
                raise PluginLoadError(f"implements unknown hook {hook!r}{suggestion}")

    def _collect(self, plugin: str, module: object) -> list[tuple[str, str, Any]]:
        """Run the plugin's component hooks and validate what they register."""
        staged: list[tuple[str, str, Any]] = []
        for kind, hook_name in hookspecs.COMPONENT_HOOKS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin is not module:
                    continue

                def register(component: Any, name: str | None = None, _kind: str = kind) -> None:
                    short = _validate(_kind, component, name)
                    if any(k == _kind and n == short for k, n, _ in staged):
                        raise NameCollisionError(
                            f"{_kind}: {short!r} is registered twice by plugin {plugin!r}"
                        )
                    staged.append((_kind, short, component))

                impl.function(**{arg: register for arg in impl.argnames})
        return staged

    def _commit(self, plugin: str, staged: list[tuple[str, str, Any]], record: PluginRecord) -> None:
        if plugin == BUILTIN:
            for kind, short, _ in staged:
                providers = self._providers[kind].get(short, [])
                if any(p == BUILTIN for p, _ in providers):
                    raise NameCollisionError(f"{kind}: built-in {short!r} registered twice")
        for kind, short, component in staged:
            registry = self.registries[kind]
            if plugin != BUILTIN:
                child = registry._children.get(plugin)
                if child is None:
                    child = ComponentRegistry(kind, parent=registry, scope=plugin)
                child._module_dict[short] = component
            self._providers[kind].setdefault(short, []).append((plugin, component))
            self._rebind(kind, short)
            record.provides.setdefault(kind, []).append(short)
            providers = self._providers[kind][short]
            if plugin != BUILTIN and any(p == BUILTIN for p, _ in providers):
                record.warnings.append(
                    f"{kind}: {short!r} is also a built-in; the built-in keeps the short name, "
                    f"use '{plugin}.{short}' for this plugin's"
                )

    def _rebind(self, kind: str, short: str) -> None:
        """Bind the root short name from its providers: built-in > unique plugin > ambiguous."""
        registry = self.registries[kind]
        providers = self._providers[kind].get(short, [])
        registry._module_dict.pop(short, None)
        registry._ambiguous.pop(short, None)
        builtin = [obj for p, obj in providers if p == BUILTIN]
        if builtin:
            registry._module_dict[short] = builtin[0]
        elif len(providers) == 1:
            registry._module_dict[short] = providers[0][1]
        elif len(providers) > 1:
            registry._ambiguous[short] = [p for p, _ in providers]
        if not providers:
            self._providers[kind].pop(short, None)

    def _fail(self, record: PluginRecord, exc: BaseException) -> None:
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        record.provides = {}
        short = record.name.split(" ")[0]
        record.hint = (
            f"run `noiseshift plugins` for details; fix or uninstall "
            f"{record.distribution or short!r}, or set NOISESHIFT_DISABLE_PLUGINS={short}"
        )
        if _strict():
            raise PluginLoadError(
                f"plugin {record.name!r} ({record.distribution} {record.version}) failed to load: "
                f"{record.error}"
            ) from exc
        self._warn(record.name, f"failed to load: {record.error}. Hint: {record.hint}")
        record.warnings.append("".join(traceback.format_exception_only(type(exc), exc)).strip())

    def _warn(self, plugin: str, message: str) -> None:
        key = f"{plugin}:{message}"
        if key in self._warned:
            return
        self._warned.add(key)
        print(f"noiseshift: plugin {plugin!r} {message}", file=sys.stderr)


def _validate(kind: str, component: Any, name: str | None) -> str:
    """Check a component before it is registered; return its short name."""
    base = _BASES[kind]
    label = getattr(component, "__qualname__", repr(component))
    if base is not None:
        if not (isinstance(component, type) and issubclass(component, base)):
            raise TypeError(f"{kind}: {label} must be a subclass of {base.__name__}")
    elif not (
        (isinstance(component, type) and issubclass(component, nn.Module))
        or (callable(component) and not isinstance(component, type))
    ):
        raise TypeError(f"{kind}: {label} must be an nn.Module subclass or a function")
    short = name or getattr(component, "name", None) or ""
    if not isinstance(short, str) or not NAME_PATTERN.match(short):
        raise ValueError(
            f"{kind}: {label} needs a lowercase snake_case name (class attribute `name` or "
            f"register(..., name=...)), got {short!r}"
        )
    if kind == "adapters":
        extra = set(component.needs) - ADAPTER_NEEDS
        if extra:
            raise ValueError(f"adapters: {label}.needs has unknown entries {sorted(extra)}; "
                             f"allowed: {sorted(ADAPTER_NEEDS)}")
        if not isinstance(component.per_image, bool):
            raise ValueError(f"adapters: {label}.per_image must be a bool")
    if kind == "denoisers":
        if not isinstance(component.size_multiple, int) or component.size_multiple < 1:
            raise ValueError(f"denoisers: {label}.size_multiple must be a positive int")
        if not all(isinstance(c, str) for c in component.conditions):
            raise ValueError(f"denoisers: {label}.conditions must be a set of strings")
    return short


def _entry_points() -> Iterable[metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry_point, "dist", None)
        key = (entry_point.name, dist.name if dist is not None else "")
        if key in seen:  # the same distribution found twice on sys.path
            continue
        seen.add(key)
        yield entry_point


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _strict() -> bool:
    return os.environ.get("NOISESHIFT_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}



def describe_component(kind: str, short: str, provider: str, component: Any) -> dict[str, Any]:
    """A JSON-ready description of one registered component (for ``noiseshift list``)."""
    doc = (getattr(component, "__doc__", None) or "").strip().splitlines()
    entry: dict[str, Any] = {
        "name": short,
        "qualified_name": short if provider == BUILTIN else f"{provider}.{short}",
        "plugin": provider,
        "object": f"{getattr(component, '__module__', '?')}.{getattr(component, '__qualname__', '?')}",
        "summary": doc[0] if doc else "",
    }
    if kind == "denoisers":
        entry.update(
            in_channels=component.in_channels, out_channels=component.out_channels,
            size_multiple=component.size_multiple, conditions=sorted(component.conditions),
            domain=component.domain, trainable=component.trainable,
        )
    elif kind == "adapters":
        trainable = component.trainable
        entry.update(
            needs=sorted(component.needs), per_image=component.per_image,
            trainable=list(trainable) if isinstance(trainable, (tuple, list)) else "configurable",
        )
    elif kind == "noise_models":
        entry.update(domain=component.domain)
    elif kind == "benchmarks":
        entry.update(domain=component.domain, has_ground_truth=component.has_ground_truth,
                     conventions=component.conventions.as_dict())
    return entry


def list_components(host: PluginHost, kind: str) -> list[dict[str, Any]]:
    """Every component of a kind with its provider; short names that are ambiguous are marked."""
    host.load()
    rows = []
    registry = host.registries[kind]
    for short, providers in sorted(host._providers[kind].items()):
        bound = registry._module_dict.get(short)
        for provider, component in providers:
            entry = describe_component(kind, short, provider, component)
            if short in registry._ambiguous:
                entry["short_name"] = "ambiguous"
            elif bound is component:
                entry["short_name"] = "bound"
            else:
                entry["short_name"] = "shadowed"
            rows.append(entry)
    return rows
