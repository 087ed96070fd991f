"""The core's own components, registered through the same hooks as any plugin.

This module is loaded by the plugin host as the plugin named ``noiseshift``; its names are the
short names users type (``dncnn``, ``gaussian``, ``finetune``, ``l1``) and always win over a
plugin's component of the same name (which stays reachable as ``'<plugin>.<name>'``).
Imports are inside the hooks so that importing ``noiseshift`` stays cheap.
"""

from __future__ import annotations

from noiseshift.registry.hookspecs import Register, hookimpl


@hookimpl
def register_denoisers(register: Register) -> None:
    from noiseshift.models import BM3D, DnCNN, NLMeans, UNet

    for component in (DnCNN, UNet, BM3D, NLMeans):
        register(component)


@hookimpl
def register_noise_models(register: Register) -> None:
    from noiseshift.noise import Gaussian, Mixture, PoissonGaussian

    register(Gaussian)
    register(PoissonGaussian)
    register(Mixture)


@hookimpl
def register_adapters(register: Register) -> None:
    from noiseshift.adapters import FineTune, Pretrained

    register(Pretrained)
    register(FineTune)


@hookimpl
def register_benchmarks(register: Register) -> None:
    from noiseshift.benchmarks import builtin_benchmarks

    for component in builtin_benchmarks():
        register(component)


@hookimpl
def register_losses(register: Register) -> None:
    from noiseshift.losses import CharbonnierLoss, L1Loss, L2Loss

    for component in (L1Loss, L2Loss, CharbonnierLoss):
        register(component)
