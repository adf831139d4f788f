"""Stage-1 pre-training on another prepared file (e.g. BU-4DFE) before each fold's stage 1.

The weights reach a fold through :func:`degan.models.load_pretrained` (identity-tied layers
re-initialised, expression rows matched by label name).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import distributed as dist_
from ..checkpoint import load_checkpoint
from ..config import DeganConfig
from ..data import all_labelled_split, read_file_info
from ..errors import RunDirError
from .fold import FoldTrainer

__all__ = ["pretrain_gan", "PRETRAIN_CHECKPOINT"]

#: the pre-training checkpoint in the run directory
PRETRAIN_CHECKPOINT = "pretrain.pt"


def pretrain_gan(cfg: DeganConfig, pre_path: str | os.PathLike, run_dir: Path, dinfo: dist_.DistInfo,
                 resume: bool, progress: bool = True, target_channels: int | None = None,
                 on_images: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Stage 1 on every labelled sample of another prepared file, for ``cfg.stage1.pretraining_epochs``
    epochs (``stage1.pretrain_epochs``, or as many as stage 1 when that is 0) of the same kind as
    stage 1's (with ``data.augment="paper"``, every face x its 110 views).

    Writes ``run_dir/pretrain.pt`` (stage "pretrain", continued with ``resume``) and returns its payload.
    """
    info = read_file_info(pre_path)
    if target_channels is not None and info.channels != target_channels:
        raise RunDirError(pre_path, f"pre-training file has {info.channels} channel(s), the target {target_channels}")
    ckpt = Path(run_dir) / PRETRAIN_CHECKPOINT
    trainer = FoldTrainer(cfg, info, all_labelled_split(info, cfg), Path(run_dir), checkpoint=ckpt, dinfo=dinfo,
                          role="pretrain", progress=progress, on_images=on_images)
    if ckpt.exists():
        if not resume:
            raise RunDirError(ckpt, "exists; pass --resume to continue this run")
        trainer.restore(load_checkpoint(ckpt, dinfo.device))
    trainer.train_gan(stage="pretrain", epochs=cfg.stage1.pretraining_epochs)
    if ckpt.exists():
        return load_checkpoint(ckpt, "cpu")
    return {"models": {k: dist_.unwrap(m).state_dict() for k, m in trainer.modules().items()}}
