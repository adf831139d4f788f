"""degan: DE-GAN (Ali & Hughes, "Facial expression representation learning by synthesizing
expression images") and its CNN baseline, trained on facekit HDF5 files.

Entry points: ``degan-train``, ``degan-eval``, ``degan-synthesize`` (``facekit_cli/degan.py``,
the repository's ``cli/degan.py``); in Python :func:`degan.train.run_cv`,
:func:`degan.evaluate.evaluate_run` and :func:`degan.synthesize.synthesize_file`. degan imports
facekit, never the reverse.

Layout (each module one responsibility; no import circles)::

    config, presets         settings in sections; presets as differences from the paper
    data/                   file metadata, fold split, dataset + cache, batch transform
    models/                 G_en, G_de, D, local CNNs, baseline; weight transfer from pre-training
    losses                  Eq. 1, Eq. 2, L_total
    train/                  steps (one update), fold (FoldTrainer), pretrain, cv (run_cv), pool (--jobs)
    metrics, predict        pure metrics; test-face prediction and predictions.csv
    evaluate                re-evaluation of a finished run
    checkpoint              saving, loading, and networks rebuilt from a checkpoint
    geometry, synthesize, plots, distributed, errors
"""
from __future__ import annotations

from .config import DeganConfig
from .presets import get_preset, list_presets, preset_changes, register_preset

__all__ = ["DeganConfig", "get_preset", "list_presets", "preset_changes", "register_preset"]
