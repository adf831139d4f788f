"""Re-evaluation of a finished run directory (``degan-eval``): every finished fold checkpoint
scored again, optionally on a copy of the data file, with other test views or with the
geometric expert at another weight.

A re-evaluation never writes into the run's own files. Its results go to their own directory,
``RUN/evals/<name>/`` (or one given with ``out``)::

    eval.json              what was re-evaluated: the run, the options, the data file and its
                           fingerprint, device, threads, time
    metrics.json           as the run's metrics.json (per fold, mean, std, pooled) + per_fold
    confusion.png
    fold_XX/predictions.csv

``<name>`` is given, or derived from the options (:func:`reevaluation_name`: ``own`` with the
run's own settings, else e.g. ``mirror``, ``all_geo0.5``); ``bench/compare_runs.py`` reads it
as ``NAME=RUN@<name>``. The data must be the data the run was trained on (its fingerprint,
:mod:`degan.data.fingerprint`); everything is checked, and every checkpoint loaded, before
anything is written.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import check_checkpoint_data, check_weights, checkpoint_config, load_checkpoint, load_fold_model
from .config import ConfigError, DeganConfig
from .data import make_split, read_file_info
from .data.fingerprint import DataFingerprint, data_fingerprint, fingerprint_mismatch, recorded_fingerprint
from .errors import CheckpointError, DataNotCheckedWarning, RunDirError
from .geometry import fold_expert
from .metrics import summarize_run
from .outputs import check_writable_dir, write_json
from .predict import score_fold, write_predictions

__all__ = ["evaluate_run", "reevaluation_name", "reevaluation_dir", "EVALS_DIR", "EVAL_RECORD"]

#: the folder of a run directory that holds its re-evaluations
EVALS_DIR = "evals"
#: the file that describes a re-evaluation (and marks its directory as one)
EVAL_RECORD = "eval.json"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def reevaluation_name(cfg: DeganConfig, run_cfg: DeganConfig) -> str:
    """The default name of a re-evaluation with settings ``cfg`` of a run trained with ``run_cfg``:
    ``own`` when the test views and the geometric expert's weight are the run's, else the parts
    that differ joined by ``_`` (``mirror``, ``geo0.5``, ``all_geo0.5``)."""
    parts = []
    if cfg.eval.test_views != run_cfg.eval.test_views:
        parts.append(cfg.eval.test_views)
    if cfg.eval.geometry_weight != run_cfg.eval.geometry_weight:
        parts.append(f"geo{cfg.eval.geometry_weight:g}")
    return "_".join(parts) or "own"


def reevaluation_dir(run_dir: str | os.PathLike, name: str) -> Path:
    """``run_dir/evals/<name>``; :class:`ConfigError` for a name that is not a plain file name."""
    if not _NAME.match(name):
        raise ConfigError(f"--name {name!r}: use letters, digits, '.', '_' and '-' (at most 100, the first a "
                          "letter or digit)")
    return Path(run_dir) / EVALS_DIR / name


def evaluate_run(run_dir: str | os.PathLike, *, data: str | os.PathLike | None = None, test_views: str | None = None,
                 device: str | None = None, write: bool = True, geometry_weight: float | None = None,
                 out: str | os.PathLike | None = None, name: str | None = None,
                 progress: bool = False) -> dict[str, Any]:
    """Re-evaluate every finished fold checkpoint of ``run_dir``; return the run-level metrics
    (:func:`degan.metrics.summarize_run` plus ``per_fold``).

    Reads ``config.json`` and each ``fold_XX/checkpoint.pt`` and recomputes the fold metrics,
    optionally on ``data`` (a copy of the run's data file: its fingerprint must match), with other
    ``test_views``, or with the geometric expert at another ``geometry_weight`` (a fold whose
    checkpoint holds no fitted expert, or one fitted with another ``geometry_c``, gets one fitted
    on its training faces). With ``write``, the results go to ``out`` or
    ``run_dir/evals/<name>/`` (``name`` default: :func:`reevaluation_name`); see the module
    docstring. An existing re-evaluation directory is replaced only when it holds a
    re-evaluation with the same options.

    Raises:
        RunDirError: not a run directory, no finished fold, data other than the run's, or an
            output directory that is a run's, another re-evaluation's or cannot be written.
        CheckpointError: a checkpoint that cannot be read safely, was trained on other data, or
            whose weights do not fit its configuration.
        ConfigError: a bad ``name`` or option.
    """
    from tqdm.auto import tqdm

    from . import distributed
    from .plots import accuracy_title, plot_confusion

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise RunDirError(run_dir, "no config.json: not a degan run directory")
    try:
        run = json.loads(cfg_path.read_text())
        recorded = recorded_fingerprint(run)
    except ValueError as exc:
        raise RunDirError(cfg_path, f"cannot be read: {exc}") from None
    run_cfg = checkpoint_config(run, cfg_path)
    cfg = run_cfg
    if test_views:
        cfg = cfg.replace({"eval.test_views": test_views})
    if geometry_weight is not None:
        cfg = cfg.replace({"eval.geometry_weight": geometry_weight})
    name = name or reevaluation_name(cfg, run_cfg)
    own_dir = reevaluation_dir(run_dir, name)          # validates the name
    dest = Path(out) if out is not None else own_dir
    options = {"test_views": cfg.eval.test_views, "geometry_weight": cfg.eval.geometry_weight,
               "geometry_c": cfg.eval.geometry_c}
    if write:
        _check_destination(dest, run_dir, options)
    data_path = Path(data) if data is not None else Path(run["data"])
    info = read_file_info(data_path)
    fingerprint = data_fingerprint(info)
    if recorded is None:
        warnings.warn(f"{cfg_path}: records no data fingerprint (written before degan recorded one): "
                      f"{fingerprint.path} is not checked against the data the run was trained on",
                      DataNotCheckedWarning, stacklevel=2)
    else:
        problem = fingerprint_mismatch(recorded, fingerprint)
        if problem:
            raise RunDirError(run_dir, problem)
    dev = distributed.pick_device(device)
    ckpts = _finished_checkpoints(run_dir, fingerprint)     # every checkpoint checked before any scoring
    if not ckpts:
        raise RunDirError(run_dir, "no finished fold checkpoints (fold_XX/checkpoint.pt with stage 'done')")
    fold_metrics: dict[int, dict[str, Any]] = {}
    fold_preds: dict[int, Any] = {}
    for fold, ckpt in tqdm(ckpts, desc="folds", unit="fold", disable=not progress, leave=False):
        state = load_checkpoint(ckpt, map_location="cpu")
        split = make_split(info, fold, cfg)
        forward = load_fold_model(state, dev, ckpt)
        same_c = checkpoint_config(state, ckpt).eval.geometry_c == cfg.eval.geometry_c
        geometry = fold_expert(info, split, cfg.eval, state.get("geometry") if same_c else None)
        pred, m = score_fold(forward, info, split, cfg, dev, geometry=geometry)
        m.update(fold=fold, seconds=state.get("seconds"))       # training time, from the checkpoint
        fold_metrics[fold], fold_preds[fold] = m, pred
    result = summarize_run(fold_metrics, info.label_names, cfg)
    result["per_fold"] = {str(f): m for f, m in fold_metrics.items()}
    if write:
        import torch
        dest.mkdir(parents=True, exist_ok=True)
        write_json(dest / EVAL_RECORD, {
            "run": str(run_dir.resolve()), "name": name, "options": options, "data": str(data_path.resolve()),
            "fingerprint": fingerprint.to_dict(), "folds": sorted(fold_metrics), "device": str(dev),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
        for fold, pred in fold_preds.items():
            (dest / f"fold_{fold:02d}").mkdir(parents=True, exist_ok=True)
            write_predictions(dest / f"fold_{fold:02d}" / "predictions.csv", pred, info)
        write_json(dest / "metrics.json", result)
        plot_confusion(np.array(result["confusion"]), info.label_names, dest / "confusion.png",
                       title=accuracy_title(f"{run_cfg.method} ({name})", result["folds"]))
    return result


def _check_destination(dest: Path, run_dir: Path, options: dict[str, Any]) -> None:
    """Refuse a destination that is a run directory (its results are never overwritten), that
    holds a re-evaluation with other options or anything else, or that cannot be written."""
    where, run = dest.resolve(), run_dir.resolve()
    inside_run = where == run or (run in where.parents and (run / EVALS_DIR) not in [where, *where.parents])
    if inside_run or (dest / "config.json").exists():
        raise RunDirError(dest, "is a run directory or inside one: a re-evaluation never writes into a run's own "
                                "files (give another -o, or none for RUN/evals/NAME)")
    record = dest / EVAL_RECORD
    if record.is_file():
        try:
            theirs = json.loads(record.read_text()).get("options")
        except (ValueError, AttributeError):
            theirs = None
        if theirs != options:
            raise RunDirError(dest, f"holds a re-evaluation with other options ({theirs}); give another --name "
                                    "or -o")
    elif dest.is_dir() and any(dest.iterdir()):
        raise RunDirError(dest, "exists and is not a re-evaluation directory (no eval.json); give another -o")
    check_writable_dir(dest)


def _finished_checkpoints(run_dir: Path, fingerprint: DataFingerprint) -> list[tuple[int, Path]]:
    """``(fold, path)`` of every finished fold checkpoint, each loaded safely, checked against the
    data's fingerprint and its weights against its configuration (nothing kept in memory)."""
    out = []
    for ckpt in sorted(run_dir.glob("fold_*/checkpoint.pt")):
        state = load_checkpoint(ckpt, map_location="cpu")
        if state["stage"] != "done":
            continue
        check_checkpoint_data(state, fingerprint, ckpt)     # none recorded: config.json's warning covers it
        check_weights(state, ckpt)
        try:
            out.append((int(state["meta"]["fold"]), ckpt))
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(ckpt, "its meta records no fold") from None
    return out
