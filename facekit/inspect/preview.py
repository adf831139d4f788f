"""Contact sheets of a facekit file: ``facekit preview``.

Two sheets, both returned as ``(H, W, 3)`` uint8 RGB arrays and drawn with
matplotlib's Agg backend (no display needed):

* :func:`render_contact_sheet`: one row per class (label order, unlabelled
  last), up to ``per_class`` aligned faces from ``/faces/image``, taken from
  different subjects first, with the 478 ``/faces/landmarks`` points and the
  face box drawn. Rows are labelled with the class name and its counts.
* :func:`render_source_sheet`: every sample whose ``/samples/face`` is the given
  face, in stored order, each titled with its patch, rotation and flip, with
  its 68 ``/samples/landmarks`` points; the aligned face comes first. For files
  prepared with ``--augment none`` the single sample is shown and the title
  says so.

:func:`save_preview` renders one of them and writes a PNG atomically.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FileError
from ..store import FacekitFile, atomic_output, open_facekit, schema

__all__ = ["render_contact_sheet", "render_source_sheet", "save_preview", "Preview", "PreviewError", "Cell"]

_DPI = 100
_MARGIN, _GAP, _LABEL_W, _CAPTION_H, _TITLE_LINE = 10, 6, 130, 14, 17
_POINT_COLOUR, _BOX_COLOUR = "#00e070", "#ffd400"


class PreviewError(FileError):
    """A preview cannot be drawn for this file (names the file and why)."""


@dataclass
class Cell:
    """One tile of a sheet.

    ``image``: (h, w) or (h, w, 3) uint8; ``points``: (n, 2) float x, y in image
    pixels, or ``None``; ``box``: (x, y, size) square drawn on the tile, or
    ``None``; ``caption``: text above the tile.
    """

    image: np.ndarray
    points: np.ndarray | None = None
    box: tuple[int, int, int] | None = None
    caption: str | None = None
    point_size: float = 0.5


@dataclass(frozen=True)
class Preview:
    """What :func:`save_preview` wrote: ``path``, pixel ``width``/``height``, a one-line ``summary``."""

    path: Path
    width: int
    height: int
    summary: str


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim == 3 and img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    return img[:, :, :3]


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_CUBIC
    return cv2.resize(_rgb(img), (size, size), interpolation=interp)


def render_grid(rows: list[list[Cell]], *, tile: int, title: str = "",
                row_labels: list[tuple[str, str]] | None = None, empty_text: str = "(none)") -> np.ndarray:
    """Draw rows of :class:`Cell` tiles as one RGB image.

    Args:
        rows: tiles per row (a row may be empty: ``empty_text`` is written there).
        tile: side of each tile in output pixels (images are scaled to it).
        title: text above the grid (may have several lines).
        row_labels: per row ``(name, detail)`` written left of it.

    Returns:
        ``(H, W, 3)`` uint8 array.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    n_cols = max([len(r) for r in rows] + [1])
    label_w = _LABEL_W if row_labels else 0
    cap_h = _CAPTION_H if any(c.caption for r in rows for c in r) else 0
    title_h = _TITLE_LINE * len(title.splitlines()) + _GAP if title else 0
    width = 2 * _MARGIN + label_w + n_cols * tile + (n_cols - 1) * _GAP
    title_w = 2 * _MARGIN + 7 * max([len(line) for line in title.splitlines()] + [0])  # ~7 px/char at 9 pt
    width = max(width, title_w)
    height = 2 * _MARGIN + title_h + len(rows) * (cap_h + tile) + max(0, len(rows) - 1) * _GAP

    canvas = np.full((height, width, 3), 255, np.uint8)
    origins: list[list[tuple[int, int]]] = []
    for r, row in enumerate(rows):
        y0 = _MARGIN + title_h + r * (cap_h + tile + _GAP) + cap_h
        origins.append([])
        for c, cell in enumerate(row):
            x0 = _MARGIN + label_w + c * (tile + _GAP)
            canvas[y0:y0 + tile, x0:x0 + tile] = _resize(cell.image, tile)
            origins[-1].append((x0, y0))

    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, interpolation="none", extent=(-0.5, width - 0.5, height - 0.5, -0.5))
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.axis("off")
    if title:
        ax.text(_MARGIN, _MARGIN, title, fontsize=9, va="top", ha="left", linespacing=1.25)
    for r, row in enumerate(rows):
        y_mid = _MARGIN + title_h + r * (cap_h + tile + _GAP) + cap_h + tile / 2
        if row_labels:
            name, detail = row_labels[r]
            ax.text(_MARGIN, y_mid - 7, name, fontsize=10, fontweight="bold", va="center", ha="left")
            if detail:
                ax.text(_MARGIN, y_mid + 9, detail, fontsize=7, va="center", ha="left", color="#555555")
        if not row:
            ax.text(_MARGIN + label_w, y_mid, empty_text, fontsize=8, va="center", ha="left", color="#777777")
        xs, ys, sizes = [], [], []
        for (x0, y0), cell in zip(origins[r], row):
            h, w = cell.image.shape[:2]
            sx, sy = tile / w, tile / h
            if cell.caption:
                ax.text(x0 + tile / 2, y0 - 2, cell.caption, fontsize=6, va="bottom", ha="center")
            if cell.points is not None and len(cell.points):
                p = np.asarray(cell.points, np.float64)
                ok = np.isfinite(p).all(axis=1) & (p[:, 0] >= -0.5) & (p[:, 0] <= w - 0.5) \
                    & (p[:, 1] >= -0.5) & (p[:, 1] <= h - 0.5)
                xs.append(x0 + (p[ok, 0] + 0.5) * sx - 0.5)
                ys.append(y0 + (p[ok, 1] + 0.5) * sy - 0.5)
                sizes.append(np.full(int(ok.sum()), cell.point_size))
            if cell.box is not None:
                bx, by, bs = cell.box
                ax.add_patch(Rectangle((x0 + bx * sx - 0.5, y0 + by * sy - 0.5), bs * sx, bs * sy, fill=False,
                                       edgecolor=_BOX_COLOUR, linewidth=0.6, linestyle=(0, (3, 2))))
        if xs:
            ax.scatter(np.concatenate(xs), np.concatenate(ys), s=np.concatenate(sizes), c=_POINT_COLOUR,
                       linewidths=0, marker="o")
    fig.canvas.draw()
    out = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    return out


# choosing what to show -------------------------------------------------------------
def pick_faces(labels: np.ndarray, subjects: np.ndarray, label: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` face indices of class ``label``, from as many different subjects as possible.

    Faces are shuffled with ``rng``; the first face of each subject comes
    before any subject's second, and so on. Returns indices in that order.
    """
    idx = np.flatnonzero(labels == label)
    if idx.size == 0 or n <= 0:
        return idx[:0]
    idx = idx[rng.permutation(idx.size)]
    subj = subjects[idx]
    rank = np.zeros(idx.size, np.int64)  # how many faces of the same subject came before
    seen: dict[int, int] = {}
    for i, s in enumerate(subj.tolist()):
        rank[i] = seen.get(s, 0)
        seen[s] = rank[i] + 1
    return idx[np.argsort(rank, kind="stable")][:n]


def _opened(source: FacekitFile | str | os.PathLike):  # type: ignore[no-untyped-def]
    import contextlib

    if isinstance(source, FacekitFile):
        return contextlib.nullcontext(source)
    return open_facekit(source)


def render_contact_sheet(source: FacekitFile | str | os.PathLike, *, per_class: int = 6, seed: int = 0,
                         landmarks: bool = True, tile: int = 128) -> np.ndarray:
    """One row per class of up to ``per_class`` aligned faces from different subjects.

    Uses ``/faces/image`` (F, C, C[, 3]) and ``/faces/landmarks`` (F, 478, 2,
    canvas pixels); the dashed square is the face box the samples are cut from.

    Returns:
        ``(H, W, 3)`` uint8 RGB image, ``W = 2*10 + 130 + per_class*tile + (per_class-1)*6``.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1 (got {per_class})")
    with _opened(source) as f:
        labels = f.column("faces/label").astype(np.int64)
        subjects = f.column("faces/subject").astype(np.int64)
        rng = np.random.default_rng(seed)
        rows, row_labels = [], []
        box = f.face_box if f.face_box[2] > 0 else None
        for label, name in schema.class_list(labels, f.label_names):
            chosen = pick_faces(labels, subjects, label, per_class, rng)
            cells = []
            for i in chosen.tolist():
                pts = f.h5["faces/landmarks"][i] if landmarks else None
                cells.append(Cell(f.h5["faces/image"][i], pts, box if landmarks else None, point_size=0.35))
            rows.append(cells)
            n_faces = int(np.count_nonzero(labels == label))
            n_subj = int(np.unique(subjects[labels == label]).size)
            row_labels.append((name, f"{n_faces} faces, {n_subj} subjects"))
        marks = "; 478 landmarks, dashed: face box" if landmarks else ""
        title = (f"{f.path.name}: {f.dataset or 'facekit file'}, {f.n_faces} aligned faces of "
                 f"{len(f.subjects)} subjects\none row per class, faces from different subjects "
                 f"(seed {seed}){marks}")
    if not rows:
        rows, row_labels = [[]], [("(no classes)", "")]
    return render_grid(rows, tile=tile, title=title, row_labels=row_labels, empty_text="(no faces of this class)")


def _caption(patch: int, angle: float, flip: int) -> str:
    if patch == schema.NO_PATCH and angle == 0 and not flip:
        return "whole aligned face"
    name = schema.PATCH_NAMES[patch] if 0 <= patch < len(schema.PATCH_NAMES) else "whole face"
    return f"{name} {angle:+g}°" + (" flip" if flip else "")


def render_source_sheet(source: FacekitFile | str | os.PathLike, face: int, *, columns: int = 10,
                        landmarks: bool = True, tile: int = 104) -> tuple[np.ndarray, int]:
    """The samples made from aligned face ``face`` (``/samples/face == face``), in stored order.

    The first row is the aligned face itself (canvas, face box, 478 points);
    then the samples, ``columns`` per row (10 = one rotation per row for the
    paper's order), each captioned ``patch angle [flip]`` with its 68 points.

    Returns:
        ``(image, n_samples)``: ``(H, W, 3)`` uint8 RGB and how many samples it shows.

    Raises:
        PreviewError: ``face`` is out of range or has no samples.
    """
    if columns < 1:
        raise ValueError(f"columns must be at least 1 (got {columns})")
    with _opened(source) as f:
        if not 0 <= face < f.n_faces:
            raise PreviewError(f.path, f"has no face {face}: faces are numbered 0..{f.n_faces - 1}")
        idx = np.flatnonzero(f.column("samples/face") == face)
        if idx.size == 0:
            raise PreviewError(f.path, f"face {face} has no samples")
        contiguous = idx[-1] - idx[0] + 1 == idx.size
        sel = slice(int(idx[0]), int(idx[-1]) + 1) if contiguous else idx
        images = f.h5["samples/image"][sel]
        points = f.h5["samples/landmarks"][sel] if landmarks else None
        patch, angle, flip = (f.column(f"samples/{c}")[idx] for c in ("patch", "angle", "flip"))
        label = int(f.h5["faces/label"][face])
        names = f.label_names
        label_name = schema.label_name(label, names)
        subject = f.subjects[int(f.h5["faces/subject"][face])]
        src = f.column("faces/source")[face]
        frame = int(f.h5["faces/frame"][face])
        title = f"{f.path.name}: face {face}: {label_name}, subject {subject}, {src} (frame {frame})"
        if f.augment == "none" or idx.size == 1:
            title += ("\nprepared with --augment none: one sample per face, the whole aligned face"
                      if f.augment == "none" else "\nthis face has a single sample")
            rows = [[Cell(images[0], None if points is None else _valid(points[0]),
                          caption=_caption(int(patch[0]), float(angle[0]), int(flip[0])), point_size=2.0)]]
        else:
            title += f"\n{idx.size} samples in stored order (patch, rotation, flip); first: the aligned face"
            box = f.face_box if f.face_box[2] > 0 else None
            canvas_pts = f.h5["faces/landmarks"][face] if landmarks else None
            rows = [[Cell(f.h5["faces/image"][face], canvas_pts, box if landmarks else None,
                          caption="aligned face", point_size=0.3)]]
            cells = [Cell(images[i], None if points is None else _valid(points[i]),
                          caption=_caption(int(patch[i]), float(angle[i]), int(flip[i])), point_size=1.2)
                     for i in range(idx.size)]
            rows += [cells[i:i + columns] for i in range(0, len(cells), columns)]
    return render_grid(rows, tile=tile, title=title), int(idx.size)


def _valid(points: np.ndarray) -> np.ndarray | None:
    """``None`` when a landmark set is all zeros (not recorded)."""
    return None if not np.any(points) else points


def save_preview(source: str | os.PathLike, out_png: str | os.PathLike, *, face: int | None = None,
                 per_class: int = 6, seed: int = 0, columns: int = 10, landmarks: bool = True,
                 tile: int | None = None) -> Preview:
    """Render a contact sheet (or, with ``face``, that face's samples) to ``out_png``.

    The PNG is written to a temporary name and renamed when complete.

    Raises:
        NotAFacekitFileError: ``source`` is not a facekit file.
        PreviewError: ``face`` out of range, or ``out_png``'s folder missing.
    """
    import matplotlib.image

    out_png = Path(out_png)
    if not out_png.resolve().parent.is_dir():
        raise PreviewError(out_png, f"cannot write the PNG: folder {out_png.resolve().parent} does not exist")
    with open_facekit(source) as f:
        try:
            if face is None:
                img = render_contact_sheet(f, per_class=per_class, seed=seed, landmarks=landmarks,
                                           tile=tile or 128)
                n_cls = len(schema.class_list(f.column("faces/label").astype(np.int64), f.label_names))
                summary = f"{n_cls} classes x up to {per_class} faces"
            else:
                img, n = render_source_sheet(f, face, columns=columns, landmarks=landmarks, tile=tile or 104)
                summary = f"face {face}: {n} sample{'s' if n != 1 else ''}"
                if f.augment == "none":
                    summary += " (prepared with --augment none: one sample per face)"
        except OSError as exc:           # HDF5 could not read a part that passed the checks at open
            raise PreviewError(f.path, f"cannot read its images ({str(exc).strip()[:200]}); `facekit info "
                                       f"{f.path} --check` finds the damaged part") from None
    with atomic_output(out_png) as tmp:
        matplotlib.image.imsave(tmp, img, format="png")
    return Preview(path=out_png, width=int(img.shape[1]), height=int(img.shape[0]), summary=summary)
