"""Figures written into run directories (matplotlib, Agg backend; no display needed).

Every text in them (label names, subject names, titles) is drawn as it is: matplotlib's
mathtext is off while a figure is made (``text.parse_math``), so a label such as ``$x_{1}``
or ``a\\b`` is shown literally instead of breaking the figure.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = ["plot_confusion", "plot_curves", "save_image_grid", "to_uint8"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _plt() -> Any:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _literal_text(fn: _F) -> _F:
    """Run a figure function with mathtext off: every Text it creates draws its string literally."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        import matplotlib
        with matplotlib.rc_context({"text.parse_math": False}):
            return fn(*args, **kw)
    return wrapper  # type: ignore[return-value]


@_literal_text
def plot_confusion(cm: np.ndarray, label_names: Sequence[str], path: str | os.PathLike, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows = true class) with counts; PNG at ``path``."""
    plt = _plt()
    cm = np.asarray(cm, float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(label_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, f"{100 * norm[i, j]:.0f}\n({int(cm[i, j])})", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), label_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), label_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


@_literal_text
def plot_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike, title: str = "") -> Path:
    """Per-epoch losses and accuracies, one panel per stage."""
    plt = _plt()
    stages = list(dict.fromkeys(h["stage"] for h in history)) or ["(none)"]
    fig, axes = plt.subplots(1, len(stages), figsize=(5 * len(stages), 3.6), squeeze=False)
    skip = {"stage", "epoch", "seconds", "img_per_s", "lr", "g_steps", "d_acc", "d_acc_ema", "train_acc", "val_acc"}
    for ax, stage in zip(axes[0], stages):
        rows = [h for h in history if h["stage"] == stage]
        ep = [h["epoch"] for h in rows]
        keys = [k for k in (rows[0] if rows else {}) if k not in skip]
        for k in keys:
            ax.plot(ep, [h.get(k, np.nan) for h in rows], label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(f"{title} {stage}".strip(), fontsize=9)
        twin = ax.twinx()
        for k, style in (("train_acc", "--"), ("val_acc", ":"), ("d_acc_ema", "-.")):
            if rows and k in rows[0]:
                scale = 100 if k == "d_acc_ema" else 1
                twin.plot(ep, [h.get(k, np.nan) * scale for h in rows], style, color="k", label=k)
        twin.set_ylabel("accuracy (%)")
        twin.set_ylim(0, 100)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = twin.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=6, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Network images in [-1, 1], (C, H, W) or (H, W) -> uint8 (H, W) or (H, W, 3)."""
    x = np.asarray(x, np.float32)
    if x.ndim == 3:
        x = x[0] if x.shape[0] == 1 else np.transpose(x, (1, 2, 0))
    return np.clip((x + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)


@_literal_text
def save_image_grid(rows: Sequence[Sequence[np.ndarray]], path: str | os.PathLike, col_titles: Sequence[str] = (),
                    row_titles: Sequence[str] = (), title: str = "") -> Path:
    """A grid of uint8 images (each (H, W) or (H, W, 3), all the same size) tiled into one picture,
    with optional column and row titles."""
    plt = _plt()
    nr, nc = len(rows), max(len(r) for r in rows)
    h, w = rows[0][0].shape[:2]
    colour = any(img.ndim == 3 for r in rows for img in r)
    pad = 2
    canvas = np.full((nr * (h + pad) - pad, nc * (w + pad) - pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            tile = np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img
            canvas[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = tile
    scale = max(1.0, 64 / h)
    fig = plt.figure(figsize=(0.6 + nc * w * scale / 72, 0.5 + nr * h * scale / 72), dpi=100)
    ax = fig.add_axes((0.12, 0.02, 0.86, 0.86))
    ax.imshow(canvas if colour else canvas[..., 0], cmap=None if colour else "gray", vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_xticks([j * (w + pad) + w / 2 for j in range(min(nc, len(col_titles)))],
                  list(col_titles)[:nc], fontsize=6, rotation=30)
    ax.xaxis.tick_top()
    ax.set_yticks([i * (h + pad) + h / 2 for i in range(min(nr, len(row_titles)))], list(row_titles)[:nr],
                  fontsize=7)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=8, y=0.995)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
