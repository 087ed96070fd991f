"""One process or many: the ``torch.distributed`` context of a training run.

``torchrun --nproc_per_node N`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``
and ``MASTER_PORT``; ``DistContext.from_env`` then joins the process group with ``nccl`` when
the run uses CUDA and ``gloo`` otherwise. Without those variables (or with ``WORLD_SIZE=1``)
the run is a plain single process and every collective here is a no-op.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn

from ..errors import InvalidInputError

__all__ = ["DistContext", "resolve_device"]


def resolve_device(spec: str | None, local_rank: int = 0) -> torch.device:
    """The training device for a config value.

    Args:
        spec: ``"auto"``/``None`` (CUDA when available, else CPU), or a torch device string
            (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``). Under torchrun a bare ``"cuda"``
            becomes ``cuda:LOCAL_RANK``.
        local_rank: this process's index on its node.

    Raises:
        InvalidInputError: the device does not exist here.
    """
    if spec in (None, "auto"):
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise InvalidInputError(f"device {spec!r} is not a torch device: {exc}") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError(f"device {spec!r}: CUDA is not available here")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError) as exc:
            raise InvalidInputError(f"device {spec!r} is not available here: {exc}") from exc
    return device


@dataclass
class DistContext:
    """Rank, world size and the collectives the engine uses.

    Attributes:
        rank: global rank (0 logs and writes files).
        world_size: number of processes.
        local_rank: rank on this node (picks the GPU).
        backend: ``"gloo"``, ``"nccl"`` or ``None`` for a single process.
        owns_group: this context created the process group and destroys it on ``close``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False

    @classmethod
    def from_env(cls, device_spec: str | None = "auto", timeout_s: float = 1800) -> tuple[DistContext, torch.device]:
        """Join the process group torchrun describes (if any) and pick this rank's device."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
        device = resolve_device(device_spec, local_rank)
        if world <= 1:
            return cls(), device
        backend = "nccl" if device.type == "cuda" else "gloo"
        owns = False
        if not torch_dist.is_initialized():
            torch_dist.init_process_group(
                backend=backend, init_method="env://", rank=rank, world_size=world,
                timeout=datetime.timedelta(seconds=timeout_s),
            )
            owns = True
        else:
            backend = torch_dist.get_backend()
        return cls(rank=rank, world_size=world, local_rank=local_rank, backend=backend, owns_group=owns), device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` wrapped in DistributedDataParallel when distributed, else itself.

        DDP broadcasts rank 0's parameters and buffers at construction, so all ranks start
        from the same weights even if their initial RNG states differ.
        """
        if not self.distributed:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``tensor`` over ranks (a new CPU tensor)."""
        if not self.distributed:
            return tensor.clone()
        work = tensor.detach().clone()
        if self.backend == "nccl":
            work = work.to(torch.device("cuda", torch.cuda.current_device()))
        torch_dist.all_reduce(work, op=torch_dist.ReduceOp.SUM)
        return work.cpu()

    def broadcast_(self, tensors: list[torch.Tensor]) -> None:
        """Overwrite ``tensors`` in place with rank 0's values."""
        if not self.distributed:
            return
        for tensor in tensors:
            torch_dist.broadcast(tensor, src=0)

    def barrier(self) -> None:
        if self.distributed:
            torch_dist.barrier()

    def close(self) -> None:
        """Leave the process group if this context joined it."""
        if self.owns_group and torch_dist.is_initialized():
            torch_dist.destroy_process_group()
            self.owns_group = False
