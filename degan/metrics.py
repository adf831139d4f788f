"""Classification metrics of a fold and of a run (pure numpy; no torch).

Numbers reported by ``degan-train`` and ``degan-eval`` are per *face* (see :mod:`degan.predict`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .config import DeganConfig

__all__ = ["classification_metrics", "metrics_from_confusion", "head_accuracies", "prediction_metrics",
           "aggregate_folds", "summarize_run", "HEAD_NAMES", "Predictions"]

#: per test face: ``face``, ``y_true``, ``y_pred`` (F,) int64, ``prob`` (F, N_e) float32, optionally
#: ``head_pred`` (H, F) and ``image_pred`` / ``geometry_pred`` (F,)
Predictions = dict[str, np.ndarray]

#: stage-2 heads of DE-GAN in ``head_pred`` order (the last, "fused", is the prediction)
HEAD_NAMES = ("local1", "local2", "local3", "local4", "fused")


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


def prediction_metrics(pred: Predictions, n_classes: int, label_names: Sequence[str]) -> dict[str, Any]:
    """A fold's metrics from its predictions: :func:`classification_metrics` plus, when there is
    more than the prediction itself, ``head_accuracy`` (:func:`head_accuracies`)."""
    m = classification_metrics(pred["y_true"], pred["y_pred"], n_classes, label_names)
    heads = head_accuracies(pred)
    if heads:
        m["head_accuracy"] = heads
    return m


def summarize_run(fold_metrics: dict[int, dict[str, Any]], label_names: Sequence[str], cfg: DeganConfig,
                  **extra: Any) -> dict[str, Any]:
    """The run-level ``metrics.json``: :func:`aggregate_folds` plus the method, preset, test
    views, each fold's training seconds and the mean accuracy of every stage-2 head."""
    agg = aggregate_folds(fold_metrics, label_names)
    agg.update(method=cfg.method, preset=cfg.preset, test_views=cfg.eval.test_views,
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
