"""Class probabilities of a fold's test faces, and the per-face ``predictions.csv``.

Each test face is scored on its un-rotated, un-mirrored centre patch
(``eval.test_views="centre"``, the default), by the mean softmax of that patch and its
mirror image (``"mirror"``), or by the mean softmax over its 110 augmented copies
(``"all"``). Views are the stored copies of a 110x file, or rendered on the fly from a
canvas file. With the geometric expert (``eval.geometry_weight > 0``) the reported
probability fuses the image model's and the expert's (:mod:`degan.geometry`).
"""
from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from facekit.store import atomic_output, open_facekit

from .config import DeganConfig
from .data import FacekitDataset, FileInfo, FoldSplit, collate, make_transform, scoring_views
from .geometry import GeometryExpert, fuse_proba, geometry_proba
from .metrics import HEAD_NAMES, Predictions, prediction_metrics
from .outputs import csv_cell, csv_text

__all__ = ["predict", "score_fold", "write_predictions", "read_predictions", "Forward"]

#: a network's prediction: (B, C, S, S) float input -> logits (B, N_e), or a list of them (one per
#: head; the last is the prediction)
Forward = Callable[[torch.Tensor], "torch.Tensor | Sequence[torch.Tensor]"]


@torch.no_grad()
def predict(forward: Forward, info: FileInfo, split: FoldSplit, cfg: DeganConfig, device: torch.device,
            batch_size: int = 256, geometry: GeometryExpert | None = None) -> Predictions:
    """Class probabilities per test face of ``split``.

    Returns ``face`` (F,), ``y_true`` (F,), ``y_pred`` (F,) int64 and ``prob`` (F, N_e) float32
    (for several heads also ``head_pred`` (H, F)). With a ``geometry`` expert and
    ``cfg.eval.geometry_weight > 0``, ``prob`` is the fused probability
    (:func:`degan.geometry.fuse_proba`) and ``image_pred`` / ``geometry_pred`` (F,) hold
    each part's own prediction.
    """
    ds = FacekitDataset(info, split.test, split.identity, cfg.runtime.cache)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
    tf = make_transform(info, cfg, train=False)
    views: list[Any] = [None] if info.stored_augmentation else scoring_views(cfg.eval.test_views)
    sums: dict[int, np.ndarray] = {}
    head_sums: dict[int, np.ndarray] = {}
    labels: dict[int, int] = {}
    for batch in loader:
        img = batch["image"].to(device)
        for view in views:
            x = tf(img, view=view)
            if cfg.train.channels_last:
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
    weight = cfg.eval.geometry_weight
    if geometry is not None and weight > 0:
        p_geo = geometry_proba(geometry, info, faces, mirrored=cfg.eval.test_views != "centre")
        out["image_pred"], out["geometry_pred"] = prob.argmax(1).astype(np.int64), p_geo.argmax(1).astype(np.int64)
        out["prob"] = fuse_proba(prob, p_geo, weight)
        out["y_pred"] = out["prob"].argmax(1).astype(np.int64)
    return out


def score_fold(forward: Forward, info: FileInfo, split: FoldSplit, cfg: DeganConfig, device: torch.device,
               geometry: GeometryExpert | None = None) -> tuple[Predictions, dict[str, Any]]:
    """:func:`predict` and the fold's metrics from it (:func:`degan.metrics.prediction_metrics`)."""
    pred = predict(forward, info, split, cfg, device, geometry=geometry)
    return pred, prediction_metrics(pred, info.n_classes, info.label_names)


def write_predictions(path: str | os.PathLike, pred: Predictions, info: FileInfo) -> Path:
    """Write one CSV row per test face (atomically) and return the path.

    Columns: ``face`` (row of ``faces/`` in the facekit file), ``source``,
    ``subject``, ``label`` and ``pred`` (names), ``correct`` (0/1), ``p_<label>``
    (the scored probabilities), for DE-GAN ``pred_<head>`` of every stage-2
    head, and with the geometric expert ``pred_image`` and ``pred_geometry``.
    For per-face comparisons of runs on the same folds (paired tests,
    ensembles), see ``bench/compare_runs.py``. Text cells that a spreadsheet
    would run as a formula are prefixed with a single quote
    (:func:`degan.outputs.csv_cell`; :func:`read_predictions` removes it).
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
        w.writerow([csv_cell(h) for h in header])
        for i, face in enumerate(pred["face"].tolist()):
            t, p = int(pred["y_true"][i]), int(pred["y_pred"][i])
            row = [face, sources[face], subject_of[face], names[t], names[p], int(t == p),
                   *[f"{x:.6f}" for x in pred["prob"][i]]]
            if heads is not None:
                row += [names[int(h)] for h in heads[:, i]]
            row += [names[int(pred[k][i])] for k in experts]
            w.writerow([csv_cell(c) for c in row])
    return path


def read_predictions(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a ``predictions.csv`` written by :func:`write_predictions` (strings, with the
    quote :func:`degan.outputs.csv_cell` put before formula-like text removed)."""
    with open(path, newline="") as fh:
        return [{csv_text(k): csv_text(v) for k, v in row.items()} for row in csv.DictReader(fh)]
