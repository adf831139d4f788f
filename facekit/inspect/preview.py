"""Contact sheets of a facekit file: ``facekit preview``.

Two sheets, both returned as ``(H, W, 3)`` uint8 RGB arrays and drawn with
matplotlib's Agg backend (no display needed):

* :func:`render_contact_sheet`: one row per class (label order, unlabelled
  last), up to ``per_class`` aligned faces from ``/faces/image``, taken from
  different subjects first. Rows are labelled with the class name and its
  counts; each tile with its subject and its face index (the ``N`` of
  ``facekit preview FILE --source N``). On each face the 68 points of the
  iBUG-68 subset of ``/faces/landmarks`` are drawn as light dots with a dark
  edge, the other 410 mesh points as small translucent dots, and the face box
  as a dashed square.
* :func:`render_source_sheet`: every sample whose ``/samples/face`` is the given
  face, in stored order, each titled with its patch, rotation and flip, with
  its 68 ``/samples/landmarks`` points drawn the same way; the aligned face
  comes first. For files prepared with ``--augment none`` the single sample is
  shown and the title says so.

Marker sizes follow the size at which a face is drawn (:func:`marker_diameters`),
so the points stay legible at any ``tile``. Every renderer takes ``on_figure``, called with the
finished matplotlib figure before it is turned into pixels (its texts and
marker collections can be read there). :func:`save_preview` renders one of the
sheets and writes a PNG atomically.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..detect.ibug68 import MESH_TO_IBUG68
from ..errors import FileError
from ..store import FacekitFile, atomic_output, open_facekit, schema

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["render_contact_sheet", "render_source_sheet", "save_preview", "Preview", "PreviewError", "Cell",
           "marker_diameters", "tile_caption", "SOURCE_TILE", "SINGLE_TILE", "KEY_POINTS_GID", "MESH_POINTS_GID",
           "FACE_BOX_GID"]

_DPI = 100
_MARGIN, _GAP, _LABEL_W, _CAPTION_H, _TITLE_LINE = 10, 6, 130, 14, 17
_PT_PER_PX = 72 / _DPI
#: face box side (output pixels) at which markers have their nominal size: a 128-px tile with the default margin
_REFERENCE_FACE_PX = 102.4
#: the face box's share of an image side when it is not known (prepare's default margin)
_FACE_SHARE = 0.8

#: colours: iBUG-68 points (fill, edge), the other mesh points, the face box
KEY_COLOUR, KEY_EDGE, MESH_COLOUR, BOX_COLOUR = "#4dff88", "#000000", "#00d8ff", "#ffd400"
#: opacity of the mesh points
MESH_ALPHA = 0.5
#: ``gid`` of the figure's artists: the 68-point markers, the mesh markers, the face-box squares
KEY_POINTS_GID, MESH_POINTS_GID, FACE_BOX_GID = "landmarks-68", "landmarks-mesh", "face-box"
#: mesh indices that are not part of the iBUG-68 subset (drawn faint)
_MESH_ONLY = np.setdiff1d(np.arange(478), MESH_TO_IBUG68)

FigureHook = Callable[["Figure"], None]


def marker_diameters(face_px: float) -> tuple[float, float, float]:
    """Landmark marker sizes in output pixels for a face shown ``face_px`` pixels wide.

    ``face_px`` is the side of the face box as drawn (the face box of a
    128-pixel contact-sheet tile of a file with the default margin is 102.4 px).
    Returns ``(key, edge, mesh)``: the diameter of a 68-point marker (fill and
    edge), the width of its dark edge, and the diameter of a mesh point. They
    grow linearly with the face (3.6, 0.6 and 1.2 px at 102.4 px) and never go
    below 2.5, 0.5 and 1.0 px.
    """
    s = face_px / _REFERENCE_FACE_PX
    return max(2.5, 3.6 * s), max(0.5, 0.6 * s), max(1.0, 1.2 * s)


class PreviewError(FileError):
    """A preview cannot be drawn for this file (names the file and why)."""


@dataclass
class Cell:
    """One tile of a sheet.

    ``image``: (h, w) or (h, w, 3) uint8; ``points``: (n, 2) float x, y in image
    pixels of the key points (light dots with a dark edge), or ``None``;
    ``mesh``: (m, 2) more points drawn small and translucent, or ``None``;
    ``box``: (x, y, size) square drawn on the tile, or ``None``; ``caption``:
    text above the tile; ``face``: side of the face box in image pixels, which
    sets the marker sizes (:func:`marker_diameters`), or ``None`` for 0.8 of
    the image side.
    """

    image: np.ndarray
    points: np.ndarray | None = None
    box: tuple[int, int, int] | None = None
    caption: str | None = None
    mesh: np.ndarray | None = None
    face: float | None = None


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


def _to_tile(points: np.ndarray | None, shape: tuple[int, ...], x0: int, y0: int, tile: int) -> np.ndarray:
    """Image-pixel points -> figure pixels of a tile at (x0, y0); points outside the image are dropped."""
    if points is None or not len(points):
        return np.zeros((0, 2))
    h, w = shape[:2]
    p = np.asarray(points, np.float64)[:, :2]
    ok = np.isfinite(p).all(axis=1) & (p[:, 0] >= -0.5) & (p[:, 0] <= w - 0.5) \
        & (p[:, 1] >= -0.5) & (p[:, 1] <= h - 0.5)
    p = p[ok]
    return np.stack([x0 + (p[:, 0] + 0.5) * tile / w - 0.5, y0 + (p[:, 1] + 0.5) * tile / h - 0.5], axis=1)


def _fit_width(text, width: float, renderer, smallest: float = 4.0) -> None:  # type: ignore[no-untyped-def]
    """Shrink a Text artist's font until it is at most ``width`` pixels wide (not below ``smallest`` pt)."""
    size = text.get_fontsize()
    while text.get_window_extent(renderer).width > width and size > smallest:
        size = max(smallest, size - 0.5)
        text.set_fontsize(size)


def render_grid(rows: list[list[Cell]], *, tile: int, title: str = "",
                row_labels: list[tuple[str, str]] | None = None, empty_text: str = "(none)",
                caption_size: float = 6, on_figure: FigureHook | None = None) -> np.ndarray:
    """Draw rows of :class:`Cell` tiles as one RGB image.

    Args:
        rows: tiles per row (a row may be empty: ``empty_text`` is written there).
        tile: side of each tile in output pixels (images are scaled to it).
        title: text above the grid (may have several lines).
        row_labels: per row ``(name, detail)`` written left of it.
        caption_size: font size (points) of the tile captions; a caption wider
            than its tile is drawn smaller.
        on_figure: called with the finished :class:`matplotlib.figure.Figure`
            before it is turned into pixels.

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
    renderer = fig.canvas.get_renderer()
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, interpolation="none", extent=(-0.5, width - 0.5, height - 0.5, -0.5))
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.axis("off")
    if title:
        ax.text(_MARGIN, _MARGIN, title, fontsize=9, va="top", ha="left", linespacing=1.25)
    key_xy, key_d, key_e, mesh_xy, mesh_d = [], [], [], [], []
    for r, row in enumerate(rows):
        y_mid = _MARGIN + title_h + r * (cap_h + tile + _GAP) + cap_h + tile / 2
        if row_labels:
            name, detail = row_labels[r]
            ax.text(_MARGIN, y_mid - 7, name, fontsize=10, fontweight="bold", va="center", ha="left")
            if detail:
                ax.text(_MARGIN, y_mid + 9, detail, fontsize=7, va="center", ha="left", color="#555555")
        if not row:
            ax.text(_MARGIN + label_w, y_mid, empty_text, fontsize=8, va="center", ha="left", color="#777777")
        for (x0, y0), cell in zip(origins[r], row):
            h, w = cell.image.shape[:2]
            if cell.caption:
                cap = ax.text(x0 + tile / 2, y0 - 2, cell.caption, fontsize=caption_size, va="bottom",
                              ha="center")
                _fit_width(cap, tile + _GAP - 2, renderer)
            face = cell.face if cell.face else _FACE_SHARE * max(h, w)
            kd, ke, md = marker_diameters(tile * face / max(h, w))
            key_xy.append(_to_tile(cell.points, cell.image.shape, x0, y0, tile))
            key_d.append(np.full(len(key_xy[-1]), kd))
            key_e.append(np.full(len(key_xy[-1]), ke))
            mesh_xy.append(_to_tile(cell.mesh, cell.image.shape, x0, y0, tile))
            mesh_d.append(np.full(len(mesh_xy[-1]), md))
            if cell.box is not None:
                bx, by, bs = cell.box
                sx, sy = tile / w, tile / h
                ax.add_patch(Rectangle((x0 + bx * sx - 0.5, y0 + by * sy - 0.5), bs * sx, bs * sy, fill=False,
                                       edgecolor=BOX_COLOUR, linewidth=0.6, linestyle=(0, (3, 2)),
                                       gid=FACE_BOX_GID))
    if mesh_xy and sum(map(len, mesh_xy)):
        xy, d = np.concatenate(mesh_xy), np.concatenate(mesh_d)
        ax.scatter(xy[:, 0], xy[:, 1], s=(d * _PT_PER_PX) ** 2, c=MESH_COLOUR, alpha=MESH_ALPHA, linewidths=0,
                   marker="o", gid=MESH_POINTS_GID, zorder=2)
    if key_xy and sum(map(len, key_xy)):
        xy, d, e = np.concatenate(key_xy), np.concatenate(key_d), np.concatenate(key_e)
        # a marker's edge is centred on the outline of its fill: fill diameter + edge width = key diameter
        ax.scatter(xy[:, 0], xy[:, 1], s=((d - e) * _PT_PER_PX) ** 2, c=KEY_COLOUR, edgecolors=KEY_EDGE,
                   linewidths=e * _PT_PER_PX, marker="o", gid=KEY_POINTS_GID, zorder=3)
    fig.canvas.draw()
    if on_figure is not None:
        on_figure(fig)
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


def _split_mesh(points: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(478, 2)`` mesh -> (its 68 iBUG points, the other 410); fewer than 468 points: all are key points."""
    points = np.asarray(points)
    if points.shape[0] < 468:
        return points, None
    return points[MESH_TO_IBUG68], points[_MESH_ONLY[_MESH_ONLY < points.shape[0]]]


def _face_cell(image: np.ndarray, mesh: np.ndarray | None, box: tuple[int, int, int] | None,
               caption: str) -> Cell:
    """An aligned face: iBUG-68 points as key points, the rest of the mesh faint, the face box."""
    face = box[2] if box else None
    if mesh is None:
        return Cell(image, caption=caption, face=face)
    key, rest = _split_mesh(mesh)
    return Cell(image, key, box, caption, rest, face)


#: subject names longer than this are shortened in tile captions (the face index is always shown whole)
_SUBJECT_CHARS = 12


def tile_caption(subject: str, face: int) -> str:
    """The caption of a contact-sheet tile: ``"<subject> · face <face>"`` (long subjects end in ``…``)."""
    if len(subject) > _SUBJECT_CHARS:
        subject = subject[:_SUBJECT_CHARS - 1] + "…"
    return f"{subject} · face {face}"


_MESH_LEGEND = "green: the 68 iBUG points of the 478 landmarks, cyan: the other 410, dashed: the face box"


def render_contact_sheet(source: FacekitFile | str | os.PathLike, *, per_class: int = 6, seed: int = 0,
                         landmarks: bool = True, tile: int = 128,
                         on_figure: FigureHook | None = None) -> np.ndarray:
    """One row per class of up to ``per_class`` aligned faces from different subjects.

    Uses ``/faces/image`` (F, C, C[, 3]) and ``/faces/landmarks`` (F, 478, 2,
    canvas pixels). Each tile is captioned with :func:`tile_caption` (subject,
    face index); its iBUG-68 points are drawn as green dots with a dark edge,
    the other mesh points as small cyan dots, and the dashed square is the face
    box the samples are cut from. ``on_figure`` is passed to :func:`render_grid`.

    Returns:
        ``(H, W, 3)`` uint8 RGB image, ``W = 2*10 + 130 + per_class*tile + (per_class-1)*6``
        or wider when the title needs it.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1 (got {per_class})")
    with _opened(source) as f:
        labels = f.column("faces/label").astype(np.int64)
        subjects = f.column("faces/subject").astype(np.int64)
        names = f.subjects
        rng = np.random.default_rng(seed)
        rows, row_labels = [], []
        box = f.face_box if f.face_box[2] > 0 else None
        for label, name in schema.class_list(labels, f.label_names):
            chosen = pick_faces(labels, subjects, label, per_class, rng)
            cells = []
            for i in chosen.tolist():
                subject = names[subjects[i]] if 0 <= subjects[i] < len(names) else "?"
                mesh = f.h5["faces/landmarks"][i] if landmarks else None
                cells.append(_face_cell(f.h5["faces/image"][i], mesh, box, tile_caption(subject, i)))
            rows.append(cells)
            n_faces = int(np.count_nonzero(labels == label))
            n_subj = int(np.unique(subjects[labels == label]).size)
            row_labels.append((name, f"{n_faces} faces, {n_subj} subjects"))
        title = (f"{f.path.name}: {f.dataset or 'facekit file'}, {f.n_faces} aligned faces of "
                 f"{len(f.subjects)} subjects\none row per class, faces from different subjects (seed {seed}); "
                 f"above each face: subject · face N (its samples: --source N)")
        if landmarks:
            title += "\n" + _MESH_LEGEND
    if not rows:
        rows, row_labels = [[]], [("(no classes)", "")]
    return render_grid(rows, tile=tile, title=title, row_labels=row_labels, empty_text="(no faces of this class)",
                       caption_size=7, on_figure=on_figure)


def _caption(patch: int, angle: float, flip: int) -> str:
    if patch == schema.NO_PATCH and angle == 0 and not flip:
        return "whole aligned face"
    name = schema.PATCH_NAMES[patch] if 0 <= patch < len(schema.PATCH_NAMES) else "whole face"
    return f"{name} {angle:+g}°" + (" flip" if flip else "")


#: default tile sides of a source sheet: with many samples, and with a single one (``--augment none``)
SOURCE_TILE, SINGLE_TILE = 104, 256


def render_source_sheet(source: FacekitFile | str | os.PathLike, face: int, *, columns: int = 10,
                        landmarks: bool = True, tile: int | None = None,
                        on_figure: FigureHook | None = None) -> tuple[np.ndarray, int]:
    """The samples made from aligned face ``face`` (``/samples/face == face``), in stored order.

    The first row is the aligned face itself (canvas, face box, 478 points
    drawn as on the contact sheet); then the samples, ``columns`` per row (10 =
    one rotation per row for the paper's order), each captioned ``patch angle
    [flip]`` with its 68 points as green dots with a dark edge. A face with a
    single sample (``--augment none``) is drawn like a contact-sheet tile. The
    tile side is ``tile``, by default :data:`SOURCE_TILE` (104) or, for a single
    sample, :data:`SINGLE_TILE` (256). ``on_figure`` is passed to
    :func:`render_grid`.

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
        box = f.face_box if f.face_box[2] > 0 else None
        face_side = box[2] if box else None
        canvas = f.h5["faces/image"][face]
        canvas_pts = f.h5["faces/landmarks"][face] if landmarks else None
        title = f"{f.path.name}: face {face}: {label_name}, subject {subject}, {src} (frame {frame})"
        if f.augment == "none" or idx.size == 1:
            title += ("\nprepared with --augment none: one sample per face, the whole aligned face"
                      if f.augment == "none" else "\nthis face has a single sample")
            cell = Cell(images[0], None if points is None else _valid(points[0]),
                        caption=_caption(int(patch[0]), float(angle[0]), int(flip[0])), face=face_side)
            if canvas_pts is not None and images[0].shape == canvas.shape:  # the sample is the canvas itself
                cell.mesh, cell.box = _split_mesh(canvas_pts)[1], box
                title += "\n" + _MESH_LEGEND
            elif landmarks:
                title += "\ngreen: its 68 iBUG points"
            rows = [[cell]]
            tile = tile or SINGLE_TILE
        else:
            title += f"\n{idx.size} samples in stored order (patch, rotation, flip); first: the aligned face"
            if landmarks:
                title += "\ngreen: the 68 iBUG points; on the aligned face also cyan: the other 410 of the " \
                         "478 landmarks, dashed: the face box"
            rows = [[_face_cell(canvas, canvas_pts, box, "aligned face")]]
            # samples are cut from the canvas without scaling: the face box has the same side in them
            cells = [Cell(images[i], None if points is None else _valid(points[i]),
                          caption=_caption(int(patch[i]), float(angle[i]), int(flip[i])), face=face_side)
                     for i in range(idx.size)]
            rows += [cells[i:i + columns] for i in range(0, len(cells), columns)]
            tile = tile or SOURCE_TILE
    return render_grid(rows, tile=tile, title=title, on_figure=on_figure), int(idx.size)


def _valid(points: np.ndarray) -> np.ndarray | None:
    """``None`` when a landmark set is all zeros (not recorded)."""
    return None if not np.any(points) else points


def save_preview(source: str | os.PathLike, out_png: str | os.PathLike, *, face: int | None = None,
                 per_class: int = 6, seed: int = 0, columns: int = 10, landmarks: bool = True,
                 tile: int | None = None, on_figure: FigureHook | None = None) -> Preview:
    """Render a contact sheet (or, with ``face``, that face's samples) to ``out_png``.

    The PNG is written to a temporary name and renamed when complete.
    ``on_figure`` is called with the matplotlib figure of the sheet before it is
    turned into the pixels that are saved.

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
                                           tile=tile or 128, on_figure=on_figure)
                n_cls = len(schema.class_list(f.column("faces/label").astype(np.int64), f.label_names))
                summary = f"{n_cls} classes x up to {per_class} faces"
            else:
                img, n = render_source_sheet(f, face, columns=columns, landmarks=landmarks, tile=tile,
                                             on_figure=on_figure)
                summary = f"face {face}: {n} sample{'s' if n != 1 else ''}"
                if f.augment == "none":
                    summary += " (prepared with --augment none: one sample per face)"
        except OSError as exc:           # HDF5 could not read a part that passed the checks at open
            raise PreviewError(f.path, f"cannot read its images ({str(exc).strip()[:200]}); `facekit info "
                                       f"{f.path} --check` finds the damaged part") from None
    with atomic_output(out_png) as tmp:
        matplotlib.image.imsave(tmp, img, format="png")
    return Preview(path=out_png, width=int(img.shape[1]), height=int(img.shape[0]), summary=summary)
