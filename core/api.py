"""The public API for plugin authors and users: import from here, not from core internals.

Everything a third-party plugin needs is re-exported: the four interfaces and their records,
the hook marker, the registries, metrics, inference helpers and weights I/O.
"""

from __future__ import annotations

from .adapter import AdaptedDenoiser, Adapter, FitReport, TestTimeAdapter, check_pairs, episode, named_domains
from .adapters.finetune import (
    FineTune,
    backbone_conditions,
    build_loss,
    build_pixel_loss,
    collate_conditions,
    random_crop,
    random_pair_batch,
    training_patch,
)
from .benchmark import Benchmark, BenchmarkResult, ScoringConventions
from .denoiser import PARAMETER_ROLES, Denoiser
from .errors import (
    AmbiguousNameError,
    ImageReadError,
    InvalidInputError,
    NameCollisionError,
    NoiseshiftError,
    OutputExistsError,
    PluginLoadError,
    RegistryError,
    UnknownComponentError,
    WeightsError,
)
from .inference import denoise, self_ensemble, tiled_denoise
from .metrics import psnr, ssim
from .noise_model import NoiseModel
from .types import Conditions, NoisySample, Sample
from .weights import apply_head, load, load_into, load_state_dict, save, save_head
from .registry import ADAPTERS, BENCHMARKS, DENOISERS, LOSSES, NOISE_MODELS, hookimpl

__all__ = [
    "ADAPTERS", "AdaptedDenoiser", "Adapter", "AmbiguousNameError", "BENCHMARKS", "Benchmark",
    "BenchmarkResult", "Conditions", "DENOISERS", "Denoiser", "FineTune", "FitReport", "ImageReadError",
    "InvalidInputError", "LOSSES", "NOISE_MODELS", "NameCollisionError", "NoiseModel",
    "NoiseshiftError", "NoisySample", "OutputExistsError", "PARAMETER_ROLES", "PluginLoadError",
    "RegistryError", "Sample", "ScoringConventions", "TestTimeAdapter", "UnknownComponentError",
    "WeightsError", "apply_head", "backbone_conditions", "build_loss", "build_pixel_loss", "check_pairs", "collate_conditions", "denoise", "episode", "hookimpl", "load", "load_into",
    "load_state_dict", "named_domains", "psnr", "random_crop", "random_pair_batch", "training_patch", "save", "save_head", "self_ensemble", "ssim", "tiled_denoise",
]
