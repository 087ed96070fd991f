"""The exceptions noiseshift raises. Each names what was wrong and, where it can, how to fix it."""

from __future__ import annotations


class NoiseshiftError(Exception):
    """Base class of every error noiseshift raises on purpose."""


class InvalidInputError(NoiseshiftError, ValueError):
    """A tensor, option or file has the wrong shape, range, dtype or content."""


class ImageReadError(NoiseshiftError, OSError):
    """An image file is missing, empty, corrupt, unsupported or holds NaN/inf values."""


class OutputExistsError(NoiseshiftError, FileExistsError):
    """An output file exists and overwriting was not asked for."""


class WeightsError(NoiseshiftError, ValueError):
    """A weights file cannot be read, is unsafe, or does not match the model."""


class RegistryError(NoiseshiftError, KeyError):
    """A registry lookup or registration failed."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable.
        return str(self.args[0]) if self.args else ""


class UnknownComponentError(RegistryError):
    """No component is registered under the requested name."""


class AmbiguousNameError(RegistryError):
    """A short name is provided by more than one plugin; qualify it as ``plugin.name``."""


class NameCollisionError(RegistryError):
    """A plugin tried to register a name it (or the core) already registered."""


class PluginLoadError(NoiseshiftError, RuntimeError):
    """A plugin failed to load and strict plugin loading is on."""
