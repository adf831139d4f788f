"""Figures written into run directories (matplotlib, Agg backend; no display needed).

* :func:`plot_curves`: a fold's ``history.json`` as ``curves.png``, one panel per stage.
* :func:`plot_confusion`: a confusion matrix (``confusion.png``), titled by :func:`accuracy_title`.
* :func:`save_image_grid`: images in rows and columns with their labels (the synthesis grid and
  the ``degan-synthesize`` strip); small network outputs are enlarged without smoothing.

Every text in them (label names, subject names, titles) is drawn as it is: matplotlib's
mathtext is off while a figure is made (``text.parse_math``), so a label such as ``$x_{1}``
or ``a\\b`` is shown literally instead of breaking the figure. Every function takes
``on_figure``, called with the finished :class:`matplotlib.figure.Figure` before it is
saved (its texts can be read there), and writes its file atomically (temporary name, rename).
"""
from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_confusion", "plot_curves", "save_image_grid", "to_uint8", "upscale", "accuracy_title",
           "STAGE_TITLES", "ACCURACY_CURVES", "MARKER_EPOCHS", "MIN_TILE"]

_F = TypeVar("_F", bound=Callable[..., Any])
FigureHook = Callable[["Figure"], None]

#: what each stage of a history is, as its panel's title says (other stage names are shown as they are)
STAGE_TITLES = {"pretrain": "pre-training: stage 1 on the --pretrain file",
                "gan": "stage 1: G and D (adversarial)",
                "local": "stage 2: local CNNs and fused classifier",
                "baseline": "baseline CNN"}
#: history keys drawn on the accuracy axis (%): key -> (legend text, factor to per cent)
ACCURACY_CURVES = {"train_acc": ("train_acc: training", 1.0),
                   "val_acc": ("val_acc: inner validation", 1.0),
                   "d_acc": ("d_acc: D real/fake, epoch mean", 100.0),
                   "d_acc_ema": ("d_acc_ema: D real/fake, running", 100.0)}
#: history keys that are bookkeeping, not curves
_NOT_CURVES = {"stage", "epoch", "seconds", "img_per_s", "lr", "g_steps"}
#: a stage with at most this many epochs gets a marker on every epoch
MARKER_EPOCHS = 40
#: the image grids enlarge tiles (by a whole factor, nearest neighbour) to at least this many pixels
MIN_TILE = 96

_DPI = 100


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


def _save(fig: Figure, path: str | os.PathLike, on_figure: FigureHook | None, **savefig: Any) -> Path:
    """Draw ``fig``, hand it to ``on_figure``, write it to ``path`` atomically (the format from the
    suffix, PNG without one) and close it."""
    from facekit.store import atomic_output
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    try:
        if fmt not in fig.canvas.get_supported_filetypes():
            raise OSError(f"{path}: cannot write a .{fmt} figure (use .png)")
        fig.canvas.draw()
        if on_figure is not None:
            on_figure(fig)
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format=fmt, **savefig)
    finally:
        _plt().close(fig)
    return path


def accuracy_title(what: str, fold_accuracies: Mapping[Any, float]) -> str:
    """The title of a result figure: ``what`` and the accuracy of the folds it covers.

    One fold: ``"degan, fold 2: 83.33%"`` (no spread: one number has none). Several:
    ``"degan, 10 folds: 80.12 ± 3.40%"``, the mean and population standard deviation of
    the fold accuracies (as ``metrics.json``'s ``mean`` and ``std``). ``fold_accuracies``:
    fold -> accuracy in %, e.g. ``metrics.json``'s ``folds``.
    """
    if not fold_accuracies:
        return f"{what}, no folds"
    if len(fold_accuracies) == 1:
        (fold, acc), = fold_accuracies.items()
        return f"{what}, fold {fold}: {float(acc):.2f}%"
    accs = np.array(list(fold_accuracies.values()), float)
    return f"{what}, {len(accs)} folds: {accs.mean():.2f} ± {accs.std():.2f}%"


@_literal_text
def plot_confusion(cm: np.ndarray, label_names: Sequence[str], path: str | os.PathLike, title: str = "", *,
                   on_figure: FigureHook | None = None) -> Path:
    """Row-normalised confusion matrix (rows = true class) with counts; PNG at ``path``."""
    plt = _plt()
    cm = np.asarray(cm, float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(label_names)
    fig, ax = plt.subplots(figsize=(max(3.6, 1.0 + 0.75 * n), 0.8 + 0.7 * n))
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
    return _save(fig, path, on_figure, dpi=110)


def _stage_title(stage: str, n_epochs: int) -> str:
    return f"{STAGE_TITLES.get(stage, stage)}: {n_epochs} epoch{'s' if n_epochs != 1 else ''}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


@_literal_text
def plot_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike, title: str = "", *,
                on_figure: FigureHook | None = None) -> Path:
    """Per-epoch losses and accuracies of a history (``history.json``), one panel per stage.

    Stages are stacked in the order they were trained (pre-training, stage 1, stage 2, or the
    baseline), each with its own epoch axis: its losses as coloured lines on the left axis,
    its accuracies (:data:`ACCURACY_CURVES`: training, inner validation, D's real/fake) in
    black on the right axis, 0-100 %. A stage with at most :data:`MARKER_EPOCHS` epochs has a
    marker on every epoch (one epoch is one point). The legend sits beside each panel, never
    over it. ``title`` (e.g. the method and fold) heads the figure. The figure is 1000 px
    wide, 90 + 270 px per stage high.
    """
    plt = _plt()
    from matplotlib.ticker import MaxNLocator
    stages = list(dict.fromkeys(str(h["stage"]) for h in history))
    n = max(1, len(stages))
    fig = plt.figure(figsize=(10, 0.9 + 2.7 * n), dpi=_DPI)
    grid = fig.add_gridspec(n, 2, width_ratios=(2.6, 1), left=0.07, right=0.99, bottom=0.5 / (0.9 + 2.7 * n),
                            top=1 - 0.7 / (0.9 + 2.7 * n), hspace=0.55, wspace=0.22)
    fig.suptitle(f"{title}: training curves" if title else "training curves", fontsize=11,
                 y=1 - 0.12 / (0.9 + 2.7 * n), va="top")
    if not stages:
        ax = fig.add_subplot(grid[0, 0])
        ax.text(0.5, 0.5, "no epochs recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
    for row, stage in enumerate(stages):
        rows = [h for h in history if str(h["stage"]) == stage]
        ep = np.array([h["epoch"] for h in rows], float)
        keys = list(dict.fromkeys(k for h in rows for k, v in h.items() if _is_number(v)))
        losses = [k for k in keys if k not in _NOT_CURVES and k not in ACCURACY_CURVES]
        accs = [k for k in ACCURACY_CURVES if k in keys]
        few = len(rows) <= MARKER_EPOCHS
        ax = fig.add_subplot(grid[row, 0])
        for k in losses:
            ax.plot(ep, [h.get(k, math.nan) for h in rows], "-", marker="o" if few else None, markersize=4,
                    linewidth=1.3, label=k)
        ax.set_title(_stage_title(stage, len(rows)), fontsize=10, loc="left")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if len(set(ep)) <= 10:
            ax.set_xticks(sorted(set(ep)), [f"{e:g}" for e in sorted(set(ep))])
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(rows) and ep.min() == ep.max():
            ax.set_xlim(ep.min() - 0.5, ep.max() + 0.5)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if accs:
            twin = ax.twinx()
            for k, style, marker in zip(accs, ("--", ":", "-.", (0, (5, 1, 1, 1))), ("s", "^", "D", "v")):
                text, scale = ACCURACY_CURVES[k]
                twin.plot(ep, [h.get(k, math.nan) * scale for h in rows], linestyle=style, color="k",
                          marker=marker if few else None, markersize=4, markerfacecolor="none", linewidth=1.3,
                          label=f"{text} (%)")
            twin.set_ylim(-3, 103)             # a point at 0 or 100 % stays whole
            twin.set_yticks(range(0, 101, 20))
            twin.set_ylabel("accuracy (%)")
            h2, l2 = twin.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        lax = fig.add_subplot(grid[row, 1])
        lax.axis("off")
        if handles:
            lax.legend(handles, labels, loc="upper left", bbox_to_anchor=(0, 1.02), borderaxespad=0, fontsize=7.5,
                       frameon=False, title="losses: left axis\naccuracies (black): right axis",
                       title_fontsize=7.5,
                       alignment="left")
    return _save(fig, path, on_figure, dpi=_DPI)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Network images in [-1, 1], (C, H, W) or (H, W) -> uint8 (H, W) or (H, W, 3)."""
    x = np.asarray(x, np.float32)
    if x.ndim == 3:
        x = x[0] if x.shape[0] == 1 else np.transpose(x, (1, 2, 0))
    return np.clip((x + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def upscale(img: np.ndarray, min_side: int = MIN_TILE) -> np.ndarray:
    """``img`` (H, W) or (H, W, C) repeated ``ceil(min_side / max(H, W))`` times along both axes
    (nearest neighbour: every network pixel stays one sharp square); unchanged when already that large."""
    f = max(1, math.ceil(min_side / max(img.shape[:2])))
    return img if f == 1 else np.repeat(np.repeat(img, f, axis=0), f, axis=1)


# pixel layout of the image grids
_MARGIN, _GAP, _TITLE_LINE, _HEAD_LINE = 10, 4, 16, 13


def _fit_width(text: Any, width: float, renderer: Any, smallest: float = 5.0) -> None:
    """Shrink a Text artist's font until it is at most ``width`` pixels wide (not below ``smallest``
    pt); if it is still too wide, shorten its longest line with an ellipsis until it fits."""
    size = text.get_fontsize()
    while text.get_window_extent(renderer).width > width and size > smallest:
        size = max(smallest, size - 0.5)
        text.set_fontsize(size)
    while text.get_window_extent(renderer).width > width:
        lines = text.get_text().split("\n")
        i = max(range(len(lines)), key=lambda k: len(lines[k]))
        if len(lines[i]) <= 2:
            break
        lines[i] = lines[i].rstrip("…")[:-1] + "…"
        text.set_text("\n".join(lines))


@_literal_text
def save_image_grid(rows: Sequence[Sequence[np.ndarray]], path: str | os.PathLike, col_titles: Sequence[str] = (),
                    row_titles: Sequence[str] = (), title: str = "", *, row_details: Sequence[str] = (),
                    min_tile: int = MIN_TILE, on_figure: FigureHook | None = None) -> Path:
    """A grid of uint8 images (each (H, W) or (H, W, 3), all the same size) with its labels, as a PNG.

    Images smaller than ``min_tile`` pixels are enlarged by a whole factor with
    :func:`upscale` (nearest neighbour), so a tile is ``H * f`` x ``W * f`` pixels
    and shows every network pixel as it is. ``col_titles`` (may have two lines) go
    above the columns, ``row_titles`` (bold) and ``row_details`` (smaller, below
    it) left of the rows, ``title`` (may have several lines) above everything.
    Texts wider than their tile or column are drawn smaller.
    """
    plt = _plt()
    nr, nc = len(rows), max(len(r) for r in rows)
    tiles = [[upscale(np.asarray(img), min_tile) for img in r] for r in rows]
    th, tw = tiles[0][0].shape[:2]
    head_lines = max([len(str(t).splitlines()) for t in col_titles] + [0])
    head_h = head_lines * _HEAD_LINE + _GAP if head_lines else 0
    label_w = 0
    if row_titles or row_details:
        longest = max(len(str(t)) for t in [*row_titles, *row_details, ""])
        label_w = int(min(160, max(60, 7 * longest + 10)))
    title_lines = str(title).splitlines() if title else []
    title_h = _TITLE_LINE * len(title_lines) + _GAP if title_lines else 0
    width = 2 * _MARGIN + label_w + nc * tw + (nc - 1) * _GAP
    width = max(width, 2 * _MARGIN + int(6.5 * max([len(s) for s in title_lines] + [0])))
    height = 2 * _MARGIN + title_h + head_h + nr * th + (nr - 1) * _GAP
    canvas = np.full((height, width, 3), 255, np.uint8)
    top = _MARGIN + title_h + head_h
    for i, row in enumerate(tiles):
        for j, img in enumerate(row):
            tile = np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img[..., :3]
            y0, x0 = top + i * (th + _GAP), _MARGIN + label_w + j * (tw + _GAP)
            canvas[y0:y0 + th, x0:x0 + tw] = tile
    fig = plt.figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    renderer = fig.canvas.get_renderer()
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, interpolation="none", extent=(-0.5, width - 0.5, height - 0.5, -0.5))
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.axis("off")
    if title_lines:
        t = ax.text(_MARGIN, _MARGIN, "\n".join(title_lines), fontsize=9, va="top", ha="left", linespacing=1.3)
        _fit_width(t, width - 2 * _MARGIN, renderer)
    for j, text in enumerate(list(col_titles)[:nc]):
        x = _MARGIN + label_w + j * (tw + _GAP) + tw / 2
        t = ax.text(x, top - _GAP, str(text), fontsize=8, va="bottom", ha="center", linespacing=1.15)
        _fit_width(t, tw + _GAP - 2, renderer)
    for i in range(nr):
        y = top + i * (th + _GAP) + th / 2
        name = str(row_titles[i]) if i < len(row_titles) else ""
        detail = str(row_details[i]) if i < len(row_details) else ""
        if name:
            t = ax.text(_MARGIN, y - (7 if detail else 0), name, fontsize=9, fontweight="bold", va="center",
                        ha="left")
            _fit_width(t, label_w - 6, renderer)
        if detail:
            t = ax.text(_MARGIN, y + 9, detail, fontsize=7, va="center", ha="left", color="#555555")
            _fit_width(t, label_w - 6, renderer)
    return _save(fig, path, on_figure, dpi=_DPI)
