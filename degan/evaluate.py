"""Prediction, metrics and re-evaluation of a finished run directory.

Numbers reported by ``degan-train`` and ``degan-eval`` are per *face*: each
test face is scored once on its un-rotated, un-mirrored centre patch
(``test_views="centre"``, the default), by the mean softmax of that patch and
its mirror image (``"mirror"``), or by the mean softmax over its 110 augmented
copies (``"all"``). Views are the stored copies of a 110x file, or rendered on
the fly from a canvas file.
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from facekit.store import atomic_output, open_facekit

from .config import DeganConfig
from .data import BatchTransform, FacekitDataset, FileInfo, FoldSplit, collate, make_split, read_file_info
from ._jsonio import write_json
from .errors import RunDirError
from .geometry import GeometryExpert, fit_geometry, fuse_proba, geometry_proba

__all__ = ["predict", "classification_metrics", "metrics_from_confusion", "aggregate_folds", "evaluate_run",
           "Predictions", "write_predictions", "read_predictions", "HEAD_NAMES", "head_accuracies",
           "summarize_run"]

Predictions = dict[str, np.ndarray]

#: stage-2 heads of DE-GAN in ``head_pred`` order (the last, "fused", is the prediction)
HEAD_NAMES = ("local1", "local2", "local3", "local4", "fused")


@torch.no_grad()
def predict(forward: Callable[[torch.Tensor], torch.Tensor | Sequence[torch.Tensor]], info: FileInfo,
            split: FoldSplit, cfg: DeganConfig, device: torch.device, batch_size: int = 256,
            geometry: GeometryExpert | None = None) -> Predictions:
    """Class probabilities per test face.

    ``forward`` maps (B, C, S, S) float input to logits (B, N_e), or to a list of
    logits (one per head; the last is the prediction). Returns ``face`` (F,),
    ``y_true`` (F,), ``y_pred`` (F,) int64 and ``prob`` (F, N_e) float32 (for
    several heads also ``head_pred`` (H, F)). With a ``geometry`` expert and
    ``cfg.geometry_weight > 0``, ``prob`` is the fused probability
    (:func:`degan.geometry.fuse_proba`) and ``image_pred`` / ``geometry_pred`` (F,) hold
    each part's own prediction.
    """
    ds = FacekitDataset(info, split.test, split.identity, cfg.cache)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
    tf = BatchTransform(info, cfg, train=False)
    views: list[Any] = [None] if info.stored_augmentation else BatchTransform.test_views(cfg.test_views)
    sums: dict[int, np.ndarray] = {}
    head_sums: dict[int, np.ndarray] = {}
    labels: dict[int, int] = {}
    for batch in loader:
        img = batch["image"].to(device)
        for view in views:
            x = tf(img, view=view)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out = forward(x)
            heads = list(out) if isinstance(out, (list, tuple)) else [out]
            probs = torch.stack([h.float().softmax(1) for h in heads]).cpu().numpy()   # (H, B, N)
            for j, face in enumerate(batch["face"].tolist()):
                sums[face] = sums.get(face, 0) + probs[-1, j]
                head_sums[face] = head_sums.get(face, 0) + probs[:, j]
                labels[face] = int(batch["label"][j])
    faces = np.array(sorted(sums), np.int64)
    prob = np.stack([sums[f] / np.sum(sums[f]) for f in faces]).astype(np.float32)
    out = {"face": faces, "y_true": np.array([labels[f] for f in faces], np.int64),
           "y_pred": prob.argmax(1).astype(np.int64), "prob": prob}
    hs = np.stack([head_sums[f] for f in faces], 1)          # (H, F, N)
    if hs.shape[0] > 1:
        out["head_pred"] = hs.argmax(2).astype(np.int64)
    if geometry is not None and cfg.geometry_weight > 0:
        p_geo = geometry_proba(geometry, info, faces, mirrored=cfg.test_views != "centre")
        out["image_pred"], out["geometry_pred"] = prob.argmax(1).astype(np.int64), p_geo.argmax(1).astype(np.int64)
        out["prob"] = fuse_proba(prob, p_geo, cfg.geometry_weight)
        out["y_pred"] = out["prob"].argmax(1).astype(np.int64)
    return out


def write_predictions(path: str | os.PathLike, pred: Predictions, info: FileInfo) -> Path:
    """Write one CSV row per test face (atomically) and return the path.

    Columns: ``face`` (row of ``faces/`` in the facekit file), ``source``,
    ``subject``, ``label`` and ``pred`` (names), ``correct`` (0/1), ``p_<label>``
    (the scored probabilities), for DE-GAN ``pred_<head>`` of every stage-2
    head, and with the geometric expert ``pred_image`` and ``pred_geometry``.
    For per-face comparisons of runs on the same folds (paired tests,
    ensembles), see ``bench/compare_runs.py``.
    """
    with open_facekit(info.path) as fk:
        sources = fk.column("faces/source")
    subject_of = {int(f): info.subjects[int(s)] for f, s in zip(info.face, info.subject)}
    names = info.label_names
    heads = pred.get("head_pred")
    header = ["face", "source", "subject", "label", "pred", "correct", *[f"p_{n}" for n in names]]
    if heads is not None:
        header += [f"pred_{h}" for h in HEAD_NAMES[-len(heads):]]
    experts = [k for k in ("image_pred", "geometry_pred") if k in pred]
    header += [f"pred_{k[:-5]}" for k in experts]
    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i, face in enumerate(pred["face"].tolist()):
            t, p = int(pred["y_true"][i]), int(pred["y_pred"][i])
            row = [face, sources[face], subject_of[face], names[t], names[p], int(t == p),
                   *[f"{x:.6f}" for x in pred["prob"][i]]]
            if heads is not None:
                row += [names[int(h)] for h in heads[:, i]]
            row += [names[int(pred[k][i])] for k in experts]
            w.writerow(row)
    return path


def read_predictions(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a ``predictions.csv`` written by :func:`write_predictions` (strings)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
                           label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy (%), per-class recall (%) and the confusion matrix (rows = true class)."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return metrics_from_confusion(cm, label_names)


def metrics_from_confusion(cm: np.ndarray, label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """:func:`classification_metrics` from a (N_e, N_e) int confusion matrix."""
    n_classes = cm.shape[0]
    support = cm.sum(1)
    recall = [float(100 * cm[i, i] / support[i]) if support[i] else math.nan for i in range(n_classes)]
    names = list(label_names) if label_names else [str(i) for i in range(n_classes)]
    return {"accuracy": float(100 * np.trace(cm) / max(1, cm.sum())), "n": int(cm.sum()),
            "per_class_recall": dict(zip(names, recall)), "confusion": cm.tolist(), "label_names": names}


def head_accuracies(pred: Predictions) -> dict[str, float] | None:
    """Accuracy (%) of every stage-2 head (:data:`HEAD_NAMES`) and, with the geometric expert, of
    the image model alone ("image") and the expert alone ("geometry"); ``None`` when there is
    nothing but the prediction itself."""
    acc: dict[str, float] = {}
    if "head_pred" in pred:
        acc.update({n: float(100 * (p == pred["y_true"]).mean()) for n, p in zip(HEAD_NAMES, pred["head_pred"])})
    for key in ("image_pred", "geometry_pred"):
        if key in pred:
            acc[key[:-5]] = float(100 * (pred[key] == pred["y_true"]).mean())
    return acc or None


def summarize_run(fold_metrics: dict[int, dict[str, Any]], label_names: Sequence[str], cfg: DeganConfig,
                  **extra: Any) -> dict[str, Any]:
    """The run-level ``metrics.json``: :func:`aggregate_folds` plus the model, preset, test
    views, each fold's training seconds and the mean accuracy of every stage-2 head."""
    agg = aggregate_folds(fold_metrics, label_names)
    agg.update(model=cfg.model, preset=cfg.preset, test_views=cfg.test_views,
               fold_seconds={str(f): m.get("seconds") for f, m in fold_metrics.items()},
               total_fold_seconds=float(sum(m.get("seconds") or 0 for m in fold_metrics.values())), **extra)
    heads = [m["head_accuracy"] for m in fold_metrics.values() if "head_accuracy" in m]
    if heads:
        agg["head_accuracy_mean"] = {h: float(np.mean([d[h] for d in heads])) for h in heads[0]}
    return agg


def aggregate_folds(fold_metrics: dict[int, dict[str, Any]], label_names: Sequence[str]) -> dict[str, Any]:
    """Mean and std (population, over folds) of the fold accuracies, plus pooled recall and confusion."""
    folds = sorted(fold_metrics)
    accs = np.array([fold_metrics[f]["accuracy"] for f in folds], float)
    cm = np.sum([np.array(fold_metrics[f]["confusion"]) for f in folds], axis=0) if folds else \
        np.zeros((len(label_names),) * 2, np.int64)
    pooled = metrics_from_confusion(np.asarray(cm, np.int64), label_names)
    return {"folds": {str(f): fold_metrics[f]["accuracy"] for f in folds},
            "mean": float(accs.mean()) if len(accs) else math.nan,
            "std": float(accs.std()) if len(accs) else math.nan,
            "pooled_accuracy": pooled["accuracy"], "per_class_recall": pooled["per_class_recall"],
            "confusion": cm.tolist(), "label_names": list(label_names), "n_folds": len(folds)}


def evaluate_run(run_dir: str | os.PathLike, *, data: str | os.PathLike | None = None, test_views: str | None = None,
                 device: str | None = None, write: bool = True,
                 geometry_weight: float | None = None) -> dict[str, Any]:
    """Re-evaluate every finished fold checkpoint of ``run_dir``.

    Reads ``config.json`` and each ``fold_XX/checkpoint.pt``, recomputes the
    fold metrics (optionally on another copy of the data file, with other test
    views, or with the geometric expert at another ``geometry_weight``; a fold
    whose checkpoint holds no fitted expert gets one fitted on its training faces)
    and, with ``write``, rewrites ``metrics.json`` and ``confusion.png``
    (``metrics_<suffix>.json`` when the views or the weight differ from the run's,
    e.g. ``metrics_mirror_geo0.5.json``), and each fold's ``predictions.csv`` (or
    ``predictions_<suffix>.csv``).
    """
    from . import distributed
    from .train import load_fold_model
    from .checkpoint import load_checkpoint
    from .plots import plot_confusion

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise RunDirError(run_dir, "no config.json: not a degan run directory")
    run = json.loads(cfg_path.read_text())
    cfg = DeganConfig.from_dict(run["config"])
    if test_views:
        cfg = cfg.replace(test_views=test_views)
    if geometry_weight is not None:
        cfg = cfg.replace(geometry_weight=geometry_weight)
    info = read_file_info(data or run["data"])
    dev = distributed.pick_device(device)
    fold_metrics: dict[int, dict[str, Any]] = {}
    for ckpt in sorted(run_dir.glob("fold_*/checkpoint.pt")):
        state = load_checkpoint(ckpt, map_location="cpu")
        if state["stage"] != "done":
            continue
        fold = int(state["meta"]["fold"])
        split = make_split(info, fold, cfg)
        forward = load_fold_model(state, dev)
        geometry = None
        if cfg.geometry_weight > 0:
            saved = state.get("geometry")
            same_c = state["config"].get("geometry_c", cfg.geometry_c) == cfg.geometry_c
            geometry = GeometryExpert.from_state(saved) if saved and same_c else \
                fit_geometry(info, split, cfg.geometry_c)
        pred = predict(forward, info, split, cfg, dev, geometry=geometry)
        m = classification_metrics(pred["y_true"], pred["y_pred"], info.n_classes, info.label_names)
        heads = head_accuracies(pred)
        if heads:
            m["head_accuracy"] = heads
        m.update(fold=fold, seconds=state.get("seconds"))       # training time, from the checkpoint
        fold_metrics[fold] = m
        if write:
            write_predictions(ckpt.parent / f"predictions{_suffix(cfg, run)}.csv", pred, info)
    if not fold_metrics:
        raise RunDirError(run_dir, "no finished fold checkpoints (fold_XX/checkpoint.pt with stage 'done')")
    result = summarize_run(fold_metrics, info.label_names, cfg)
    result["per_fold"] = {str(f): m for f, m in fold_metrics.items()}
    if write:
        suffix = _suffix(cfg, run)
        path = run_dir / f"metrics{suffix}.json"
        try:        # keep what only training knows (e.g. its wall time); recomputed keys are replaced
            old = json.loads(path.read_text()) if path.is_file() else {}
        except ValueError:
            old = {}
        write_json(path, {**old, **result})
        plot_confusion(np.array(result["confusion"]), info.label_names, run_dir / f"confusion{suffix}.png",
                       title=f"{run['config']['model']}: {result['mean']:.2f} ± {result['std']:.2f}%")
    return result


def _suffix(cfg: DeganConfig, run: dict[str, Any]) -> str:
    """File-name suffix of re-evaluation outputs: empty for the run's own test views and geometry
    weight, else ``_<views>`` and/or ``_geo<weight>``."""
    parts = []
    if cfg.test_views != run["config"]["test_views"]:
        parts.append(cfg.test_views)
    if cfg.geometry_weight != run["config"].get("geometry_weight", 0.0):
        parts.append(f"geo{cfg.geometry_weight:g}")
    return "".join(f"_{p}" for p in parts)
