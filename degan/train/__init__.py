"""Training loops (stage 1: the GAN, stage 2: the local CNNs, the CNN baseline) and the CV driver.

One fold, ``model="degan"``::

    stage "gan"    G (= G_en + G_de) and D trained adversarially (Eq. 1 and 2)
    stage "local"  G_en frozen (eval mode, no gradients); local CNNs + fused classifier (L_total)
                   (``encoder_lr_scale > 0``: G_en trained too, at lr x that scale)
    "done"         test faces scored with the fused classifier

``model="baseline"``: stage "baseline" trains the encoder + a linear classifier.

A fold's state lives in ``<run>/fold_XX/checkpoint.pt``, rewritten atomically
after every epoch; ``resume=True`` continues from it. The random state of each
epoch is derived from (seed, fold, stage, epoch), so a resumed run repeats the
uninterrupted one exactly (on CPU; CUDA kernels may not be bit-exact).

Modules (private; the names above are the API): ``_loop`` (the fold context: loaders,
progress bars, checkpoints; optimiser and learning-rate helpers), ``_gan`` (stage 1),
``_classify`` (stage 2 and the baseline), ``_pretrain`` (stage 1 on another file and
loading it), ``_fold`` (one fold end to end), ``_cv`` (the CV driver, ``--jobs``).
"""
from __future__ import annotations

from ._classify import classify_step, mixup_batch
from ._cv import run_cv
from ._fold import FoldResult, load_fold_model, load_stage1, train_fold
from ._gan import gan_step, train_gan
from ._loop import Interrupted, LossFn
from ._pretrain import pretrain_gan

__all__ = ["run_cv", "train_fold", "gan_step", "train_gan", "classify_step", "mixup_batch", "pretrain_gan",
           "load_fold_model", "load_stage1", "FoldResult", "Interrupted", "LossFn"]
