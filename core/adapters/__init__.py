"""Built-in adapters: ``pretrained`` (no-op) and ``finetune`` (supervised, any parameter role)."""

from .finetune import FineTune
from .pretrained import Pretrained

__all__ = ["FineTune", "Pretrained"]
