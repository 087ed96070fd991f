"""``ComponentRegistry``: an mmengine ``Registry`` with the lookup rules noiseshift promises.

* Qualified names ``'<plugin>.<name>'`` always resolve (per-plugin child registries).
* A short name resolves when exactly one provider exists; built-in names win over plugins.
  A short name two plugins provide is left unbound, and looking it up raises
  ``AmbiguousNameError`` listing the qualified candidates.
* A failed lookup raises ``UnknownComponentError`` with the nearest names and a note about
  plugins that failed to load.
* Unlike mmengine's default, a dotted name is never imported as a Python object path, so a
  config cannot make the registry import arbitrary code.
* Plugins are loaded lazily on the first lookup.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from mmengine.registry import Registry

from noiseshift.errors import AmbiguousNameError, InvalidInputError, UnknownComponentError


class ComponentRegistry(Registry):
    """Root (scope ``noiseshift``) or per-plugin child registry of one component kind.

    Args:
        name: the kind, e.g. ``"denoisers"``.
        parent: the root registry, for per-plugin children.
        scope: ``"noiseshift"`` for roots, the plugin name for children.
        ensure_loaded: called before every lookup (loads plugins once).
    """

    def __init__(
        self,
        name: str,
        *,
        parent: ComponentRegistry | None = None,
        scope: str = "noiseshift",
        ensure_loaded: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name, parent=parent, scope=scope)
        self._ambiguous: dict[str, list[str]] = {}
        self._ensure_loaded = ensure_loaded
        self._failed_plugins: Callable[[], list[str]] = lambda: []

    # -- lookups --------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        """Return the component registered as ``key`` (short or ``plugin.name``), or ``None``.

        Raises:
            AmbiguousNameError: ``key`` is a short name several plugins provide.
        """
        if not isinstance(key, str):
            raise TypeError(f"registry keys are strings, got {type(key).__name__}")
        if self._ensure_loaded is not None:
            self._ensure_loaded()
        scope, short = self.split_scope_key(key)
        if scope is None or scope == self.scope:
            found = self._module_dict.get(short)
            if found is None and scope is None and short in self._ambiguous:
                candidates = ", ".join(f"'{c}.{short}'" for c in self._ambiguous[short])
                raise AmbiguousNameError(
                    f"{self.name}: '{short}' is provided by several plugins; use one of {candidates}"
                )
            return found
        child = self._children.get(scope)
        return child._module_dict.get(short) if child is not None else None

    def lookup(self, key: str) -> Any:
        """Like ``get`` but raises ``UnknownComponentError`` with suggestions when missing."""
        found = self.get(key)
        if found is not None:
            return found
        names = self.names()
        close = difflib.get_close_matches(key.lower(), names, n=3, cutoff=0.5)
        message = f"{self.name}: no component named {key!r}."
        if close:
            message += " Did you mean " + ", ".join(repr(c) for c in close) + "?"
        message += f" Registered: {', '.join(names) if names else '(none)'}."
        failed = self._failed_plugins()
        if failed:
            message += (
                f" {len(failed)} plugin(s) failed to load ({', '.join(failed)}); "
                "run `noiseshift plugins` for details."
            )
        raise UnknownComponentError(message)

    def build(self, cfg: Mapping[str, Any] | str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Instantiate a component from ``{'type': name, **options}`` (or a bare name).

        Unknown options raise ``InvalidInputError`` listing the options the component accepts.
        """
        if isinstance(cfg, str):
            cfg = {"type": cfg}
        if not isinstance(cfg, Mapping) or "type" not in cfg:
            raise InvalidInputError(f"{self.name}: a component config needs a 'type' key, got {cfg!r}")
        options = dict(cfg)
        options.pop("_scope_", None)
        key = options.pop("type")
        obj = self.lookup(key)
        options.update(kwargs)
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            signature = None
        if signature is not None:
            params = signature.parameters
            takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            unknown = sorted(set(options) - set(params))
            if unknown and not takes_any:
                accepted = sorted(
                    n for n, p in params.items()
                    if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
                )
                raise InvalidInputError(
                    f"{self.name}: {key!r} got unknown option(s) {unknown}; it accepts {accepted}"
                )
        return obj(*args, **options)

    def names(self, qualified: bool = True) -> list[str]:
        """Every resolvable name: short names, then ``plugin.name`` for plugin components."""
        if self._ensure_loaded is not None:
            self._ensure_loaded()
        names = sorted(self._module_dict)
        if qualified:
            for scope, child in sorted(self._children.items()):
                names += [f"{scope}.{n}" for n in sorted(child._module_dict)]
        return names

    def __contains__(self, key: object) -> bool:
        try:
            return isinstance(key, str) and self.get(key) is not None
        except AmbiguousNameError:
            return True
