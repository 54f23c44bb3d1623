"""Several processes through ``torchrun``: the same script on one process or N.

``torchrun --nproc_per_node N -m acquisition.cli train CONFIG`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; without them the run is a single process. NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Distributed", "setup_distributed"]


@dataclass(frozen=True)
class Distributed:
    """Where this process stands: its rank, the number of processes, and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that logs and writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether several processes take part (``world_size > 1``)."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for in a single process)."""
        if self.active:
            dist.barrier()

    def broadcast_floats(self, values: list[float]) -> list[float]:
        """Rank 0's ``values`` on every rank."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64,
                         device=self.device if self.device.type == "cuda" else "cpu")
        dist.broadcast(t, src=0)
        return [float(v) for v in t.tolist()]

    def close(self) -> None:
        """Leave the process group, if one was joined."""
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def setup_distributed(device: str | None = None) -> Distributed:
    """Join the process group when ``torchrun`` started us; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device cuda requested but CUDA is not available here")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Distributed(rank, world_size, local_rank, dev)
