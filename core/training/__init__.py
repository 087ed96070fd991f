"""noiseshift's training engine: configs, data, the loop, checkpoints, distributed runs.

Typical use is the command line (``noiseshift train CONFIG``, ``torchrun ... -m noiseshift.cli
train CONFIG``); from Python::

    from noiseshift.training import train
    result = train("configs/dncnn/dncnn_cbsd432_gaussian_blind.py", work_dir="runs/x")
    print(result.best_metrics)

See ``docs/training.md`` for the config keys and the reproducibility guarantees.
"""

from __future__ import annotations

from .checkpoint import CheckpointPaths, find_latest_checkpoint, load_checkpoint, save_checkpoint
from .config import DEFAULTS, load_config, parse_cfg_options, save_config
from .data import (
    DATASETS,
    ImageStore,
    IterationSampler,
    PairedFolderDataset,
    SyntheticDataset,
    build_dataset,
    derive_seed,
)
from .distributed import DistContext, resolve_device
from .ema import ModelEMA
from .engine import Hook, TrainingError, TrainResult, Trainer, train
from .logger import JsonLinesLogger
from .optim import LRSchedule, build_optimizer
from .validation import ValidationSet, evaluate

__all__ = [
    "CheckpointPaths", "DATASETS", "DEFAULTS", "DistContext", "Hook", "ImageStore", "IterationSampler",
    "JsonLinesLogger", "LRSchedule", "ModelEMA", "PairedFolderDataset", "SyntheticDataset", "TrainResult",
    "Trainer", "TrainingError", "ValidationSet", "build_dataset", "build_optimizer", "derive_seed", "evaluate",
    "find_latest_checkpoint", "load_checkpoint", "load_config", "parse_cfg_options", "resolve_device",
    "save_checkpoint", "save_config", "train",
]
