"""torchrun / DDP support that degrades to a single process.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) :func:`setup`
initialises the process group (NCCL on CUDA, gloo on CPU); otherwise it does
nothing and every helper acts as for one process. Only rank 0 writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .errors import DeviceError

__all__ = ["DistInfo", "setup", "teardown", "pick_device", "check_device", "is_main", "barrier", "wrap", "unwrap",
           "all_reduce_mean", "broadcast_object"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def pick_device(prefer: str | None = None, local_rank: int = 0) -> torch.device:
    """``prefer`` if given, else CUDA (this process's local rank), then MPS, then CPU.

    Raises:
        DeviceError: ``prefer`` is not a device name, or names a device this machine lacks.
    """
    if prefer:
        return check_device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(name: str) -> torch.device:
    """``torch.device(name)`` if this machine has it; :class:`DeviceError` (naming ``--device NAME``) otherwise."""
    where = f"--device {name}"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(where, "not a device; give cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(where, "CUDA is not available on this machine")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise DeviceError(where, f"this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(where, "MPS is not available on this machine")
    elif dev.type != "cpu":
        raise DeviceError(where, f"degan runs on cpu, cuda or mps, not {dev.type}")
    return dev


_INFO = DistInfo()


def setup(device: str | None = None) -> DistInfo:
    """Initialise from torchrun's environment (idempotent); returns this process's :class:`DistInfo`."""
    global _INFO
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
    _INFO = DistInfo(rank, world, local, dev)
    return _INFO


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def info() -> DistInfo:
    return _INFO


def is_main() -> bool:
    return _INFO.main


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def wrap(model: nn.Module, dinfo: DistInfo) -> nn.Module:
    """DistributedDataParallel around ``model`` when running distributed, else ``model``."""
    if not dinfo.distributed:
        return model
    ids = [dinfo.device.index] if dinfo.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "_orig_mod", model)          # torch.compile
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def all_reduce_mean(value: float) -> float:
    """Mean of a float over all processes (identity when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64,
                     device=_INFO.device if _INFO.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def broadcast_object(obj: object) -> object:
    """Rank 0's ``obj`` on every process."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
