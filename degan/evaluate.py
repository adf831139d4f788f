"""Re-evaluation of a finished run directory (``degan-eval``): every finished fold checkpoint
scored again, optionally on another copy of the data file, with other test views or with the
geometric expert at another weight.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import checkpoint_config, load_checkpoint, load_fold_model
from .config import DeganConfig
from .data import make_split, read_file_info
from .errors import RunDirError
from .geometry import fold_expert
from .outputs import write_json
from .metrics import summarize_run
from .predict import score_fold, write_predictions

__all__ = ["evaluate_run", "reevaluation_suffix"]


def evaluate_run(run_dir: str | os.PathLike, *, data: str | os.PathLike | None = None, test_views: str | None = None,
                 device: str | None = None, write: bool = True, geometry_weight: float | None = None,
                 out: str | os.PathLike | None = None, progress: bool = False) -> dict[str, Any]:
    """Re-evaluate every finished fold checkpoint of ``run_dir``.

    Reads ``config.json`` and each ``fold_XX/checkpoint.pt``, recomputes the fold metrics
    (optionally on another copy of the data file, with other test views, or with the geometric
    expert at another ``geometry_weight``; a fold whose checkpoint holds no fitted expert, or one
    fitted with another ``geometry_c``, gets one fitted on its training faces) and, with
    ``write``, writes into ``out`` (default: ``run_dir``) ``metrics.json`` and ``confusion.png``
    (``metrics_<suffix>.json`` when the views or the weight differ from the run's, e.g.
    ``metrics_mirror_geo0.5.json``; keys of an existing file that only training knows, such as
    its wall time, are kept) and each fold's ``fold_XX/predictions.csv`` (or
    ``predictions_<suffix>.csv``).
    """
    from . import distributed
    from .plots import plot_confusion

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise RunDirError(run_dir, "no config.json: not a degan run directory")
    run = json.loads(cfg_path.read_text())
    run_cfg = checkpoint_config(run, cfg_path)
    cfg = run_cfg
    if test_views:
        cfg = cfg.replace({"eval.test_views": test_views})
    if geometry_weight is not None:
        cfg = cfg.replace({"eval.geometry_weight": geometry_weight})
    info = read_file_info(data or run["data"])
    dev = distributed.pick_device(device)
    dest = Path(out) if out is not None else run_dir
    suffix = reevaluation_suffix(cfg, run_cfg)
    ckpts = [c for c in sorted(run_dir.glob("fold_*/checkpoint.pt"))]
    from tqdm.auto import tqdm
    fold_metrics: dict[int, dict[str, Any]] = {}
    for ckpt in tqdm(ckpts, desc="folds", unit="fold", disable=not progress, leave=False):
        state = load_checkpoint(ckpt, map_location="cpu")
        if state["stage"] != "done":
            continue
        fold = int(state["meta"]["fold"])
        split = make_split(info, fold, cfg)
        forward = load_fold_model(state, dev, ckpt)
        same_c = checkpoint_config(state, ckpt).eval.geometry_c == cfg.eval.geometry_c
        geometry = fold_expert(info, split, cfg.eval, state.get("geometry") if same_c else None)
        pred, m = score_fold(forward, info, split, cfg, dev, geometry=geometry)
        m.update(fold=fold, seconds=state.get("seconds"))       # training time, from the checkpoint
        fold_metrics[fold] = m
        if write:
            (dest / ckpt.parent.name).mkdir(parents=True, exist_ok=True)
            write_predictions(dest / ckpt.parent.name / f"predictions{suffix}.csv", pred, info)
    if not fold_metrics:
        raise RunDirError(run_dir, "no finished fold checkpoints (fold_XX/checkpoint.pt with stage 'done')")
    result = summarize_run(fold_metrics, info.label_names, cfg)
    result["per_fold"] = {str(f): m for f, m in fold_metrics.items()}
    if write:
        path = dest / f"metrics{suffix}.json"
        try:        # keep what only training knows (e.g. its wall time); recomputed keys are replaced
            old = json.loads(path.read_text()) if path.is_file() else {}
        except ValueError:
            old = {}
        write_json(path, {**old, **result})
        plot_confusion(np.array(result["confusion"]), info.label_names, dest / f"confusion{suffix}.png",
                       title=f"{run_cfg.method}: {result['mean']:.2f} ± {result['std']:.2f}%")
    return result


def reevaluation_suffix(cfg: DeganConfig, run_cfg: DeganConfig) -> str:
    """File-name suffix of re-evaluation outputs: empty for the run's own test views and geometry
    weight, else ``_<views>`` and/or ``_geo<weight>``."""
    parts = []
    if cfg.eval.test_views != run_cfg.eval.test_views:
        parts.append(cfg.eval.test_views)
    if cfg.eval.geometry_weight != run_cfg.eval.geometry_weight:
        parts.append(f"geo{cfg.eval.geometry_weight:g}")
    return "".join(f"_{p}" for p in parts)
