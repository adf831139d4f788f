"""Training: one update (:mod:`.steps`), one fold (:mod:`.fold`), pre-training on another file
(:mod:`.pretrain`), the cross-validation driver (:mod:`.cv`) and its worker processes
(:mod:`.pool`, ``--jobs``).

A fold's state lives in ``<run>/fold_XX/checkpoint.pt``, rewritten atomically after every epoch;
``resume=True`` continues from it, and the random state of each epoch is derived from (seed,
fold, stage, epoch), so a resumed run repeats the uninterrupted one exactly (on CPU).
"""
from __future__ import annotations

from .cv import RunProgress, check_pretrain, run_cv
from .fold import FoldResult, FoldTrainer, Interrupted, epoch_images, epoch_seed, steps_per_epoch, train_fold
from .pretrain import pretrain_gan
from .steps import (ClassifyStep, GanStep, LossFn, Precision, adam, eval_mode, like, lr_at, mixup_batch, set_lr,
                    with_synthesised)

__all__ = ["run_cv", "RunProgress", "check_pretrain", "FoldTrainer", "FoldResult", "train_fold", "Interrupted",
           "epoch_seed", "epoch_images", "steps_per_epoch", "pretrain_gan", "GanStep", "ClassifyStep", "Precision",
           "LossFn", "adam", "lr_at", "set_lr", "mixup_batch", "with_synthesised", "like", "eval_mode"]
