"""What every training loop of a fold shares: the fold context (loaders, progress bars,
checkpoints), optimiser and learning-rate helpers, autocast, and the run's exceptions.
"""
from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from .. import distributed as dist_
from ..checkpoint import save_checkpoint
from ..config import DeganConfig
from ..data import BatchTransform, FacekitDataset, FileInfo, FoldSplit, canvas_patch_size, collate
from ..errors import CheckpointError, NonFiniteLossError


#: a supervised loss: (network output, labels (B,) int64) -> (scalar loss, its terms as floats)
LossFn = Callable[[Any, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


class Interrupted(Exception):
    """Raised by the test hook ``stop_after`` to simulate a killed run (after a checkpoint)."""


def _epoch_seed(seed: int, fold: int, stage: str, epoch: int) -> int:
    return zlib.crc32(f"{seed}/{fold}/{stage}/{epoch}".encode()) & 0x7FFFFFFF


def _autocast(cfg: DeganConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if cfg.amp == "auto" and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _needs_scaler(cfg: DeganConfig, device: torch.device) -> bool:
    return cfg.amp == "auto" and device.type == "cuda" and not torch.cuda.is_bf16_supported()


def _adam(params: Any, cfg: DeganConfig) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)


def _lr_at(cfg: DeganConfig, step: int, total: int, base: float | None = None) -> float:
    lr = cfg.lr if base is None else base
    if cfg.lr_schedule == "cosine" and total > 0:
        return lr * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    return lr


def _set_lr(opts: Sequence[torch.optim.Optimizer], lr: float) -> None:
    for opt in opts:
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)


def _recorded_fields(config: dict[str, Any], where: Path) -> dict[str, Any]:
    """:meth:`DeganConfig.result_fields` of a recorded configuration; fields added to
    :class:`DeganConfig` after it was written take their defaults (which reproduce the old
    behaviour), so a run started by an older version can be resumed."""
    try:
        return DeganConfig.from_dict(config).result_fields()
    except (ValueError, TypeError) as exc:
        raise CheckpointError(where, f"unreadable config: {exc}") from None


def _check_finite(stage: str, epoch: int, step: int, terms: dict[str, float], ckpt: Path) -> None:
    if not all(math.isfinite(v) for v in terms.values()):
        raise NonFiniteLossError(stage, epoch, step, terms, str(ckpt) if ckpt.exists() else None)


def _compiled(model: nn.Module, cfg: DeganConfig) -> nn.Module:
    """``torch.compile(model, dynamic=False)`` with ``cfg.compile``, else ``model``. Used for the training
    forward passes only (checkpoints, evaluation and D's frozen copy in the G steps use the plain modules)."""
    if not cfg.compile:
        return model
    return torch.compile(model, dynamic=False)  # type: ignore[return-value]


def _prepare(model: nn.Module, cfg: DeganConfig, device: torch.device) -> nn.Module:
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


class _Meter:
    """Running means of named floats."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.n = 0

    def add(self, terms: dict[str, float]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1

    def means(self) -> dict[str, float]:
        return {k: v / max(1, self.n) for k, v in self.sums.items()}


@dataclass
class _Ctx:
    """Everything one fold's loops share."""

    cfg: DeganConfig
    info: FileInfo
    split: FoldSplit
    dinfo: dist_.DistInfo
    fold_dir: Path | None            # None: do not write (non-zero ranks, pretraining scratch)
    ckpt: Path
    progress: bool = True
    stop_after: int | None = None    # test hook: raise Interrupted after this many epochs in this process
    bar_position: int | None = None  # progress-bar row (a --jobs worker's slot)
    epochs_run: int = 0

    @property
    def device(self) -> torch.device:
        return self.dinfo.device

    def loader(self, indices: np.ndarray, stage: str, epoch: int) -> tuple[DataLoader, torch.Generator]:
        """A shuffled training loader for ``epoch`` and the CPU generator for its random draws."""
        ds = FacekitDataset(self.info, indices, self.split.identity, self.cfg.cache)
        seed = _epoch_seed(self.cfg.seed, self.split.fold, stage, 0)
        sampler = DistributedSampler(ds, num_replicas=self.dinfo.world_size, rank=self.dinfo.rank, shuffle=True,
                                     seed=seed, drop_last=self.dinfo.distributed)
        sampler.set_epoch(epoch)
        bs = max(1, self.cfg.batch_size // self.dinfo.world_size)
        drop = len(sampler) > bs
        loader = DataLoader(ds, batch_size=bs, sampler=sampler, drop_last=drop, collate_fn=collate,
                            num_workers=self.cfg.num_workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=False)
        es = _epoch_seed(self.cfg.seed, self.split.fold, stage, epoch) + 7919 * self.dinfo.rank
        torch.manual_seed(es)
        return loader, torch.Generator().manual_seed(es)

    def bar(self, loader: DataLoader, desc: str) -> Any:
        from tqdm.auto import tqdm
        n = len(loader.sampler) if loader.sampler is not None else None   # type: ignore[arg-type]
        return tqdm(total=n, desc=desc, unit="img", leave=False, mininterval=1.0, position=self.bar_position,
                    disable=not (self.progress and self.dinfo.main), dynamic_ncols=True)

    def input(self, batch: dict[str, torch.Tensor], tf: BatchTransform, gen: torch.Generator) -> torch.Tensor:
        x = tf(batch["image"].to(self.device, non_blocking=True), generator=gen)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def save(self, payload: dict[str, Any]) -> None:
        if self.fold_dir is not None and self.dinfo.main:
            save_checkpoint(self.ckpt, payload)
        dist_.barrier()

    def tick(self) -> None:
        self.epochs_run += 1
        if self.stop_after is not None and self.epochs_run >= self.stop_after:
            raise Interrupted(f"stopped after {self.epochs_run} epoch(s) (test hook)")


def _meta(ctx: _Ctx, model: str) -> dict[str, Any]:
    return {"fold": ctx.split.fold, "k": ctx.split.k, "model": model, "channels": ctx.info.channels,
            "label_names": ctx.info.label_names, "identity_names": ctx.split.identity_names,
            "n_identities": ctx.split.n_identities, "data": str(ctx.info.path), "dataset": ctx.info.dataset,
            "face_box": list(ctx.info.face_box),
            "patch_size": ctx.info.patch_size if ctx.info.stored_augmentation else canvas_patch_size(ctx.info, ctx.cfg),
            "image_shape": list(ctx.info.image_shape), "augment": ctx.info.augment}


def _state_dicts(mods: dict[str, nn.Module]) -> dict[str, Any]:
    return {k: dist_.unwrap(m).state_dict() for k, m in mods.items()}


def _like(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``t`` with ``ref``'s dtype and strides (a copy only when they differ), so that D always sees
    one kind of input: with channels_last, G's 1-channel output can carry other (equivalent) strides
    than the input batch, and under autocast it is bf16 while the input is fp32; a compiled D would
    recompile for each, and after a stride change treat the strides as dynamic. The fp32 copy of a
    bf16/fp16 output is exact, and autocast casts it back inside D's first convolution."""
    if t.dtype != ref.dtype:
        t = t.to(ref.dtype)
    if t.shape != ref.shape or t.stride() == ref.stride():
        return t
    return torch.empty_strided(ref.shape, ref.stride(), dtype=t.dtype, device=t.device).copy_(t)
