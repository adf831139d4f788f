"""The per-frame table of ``facekit analyze``: its columns, its rows, reading and writing it.

One row per image or analysed video frame (``docs/analyze.md`` is the reference):

=====================  =========  ===============================================
column                 type       meaning
=====================  =========  ===============================================
input                  str        the file, as given (folder argument + path inside)
frame                  int        0-based decoder position in a video; 0 for an
                                  image; -1 for an input that could not be read
timestamp              float      seconds (the decoder's presentation time); empty
                                  for images and unreadable inputs
success                int        1 when a face was found, else 0
reason                 str        why ``success`` is 0 ("no face found", "file is
                                  empty (0 bytes)", ...); empty on success
faces                  int        faces MediaPipe returned (up to ``max_faces``)
width, height          int        frame size in pixels (0 when unreadable)
box_x0 .. box_y1       float      the chosen (largest) face's landmark extent, px
x_0..x_67, y_0..y_67   float      iBUG-68 points, input pixels
mesh_x_0 .. mesh_z_477 float      (``mesh=True``) all 478 MediaPipe points; z is
                                  relative depth in the same scale as x
pitch, yaw, roll       float      head pose in degrees (:mod:`facekit.detect.face`)
_neutral .. noseSneer  float      the 52 blendshape scores, MediaPipe's names
aligned                str        (``aligned=DIR``) the aligned face's PNG, relative
                                  to DIR; empty without a face
=====================  =========  ===============================================

Numbers are rounded before they are stored (:data:`DECIMALS`), so a table read
back from CSV equals the one written, value for value.
"""
from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..detect.face import BLENDSHAPE_NAMES, Face

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["columns", "column_types", "face_row", "empty_row", "read_table", "write_table", "DECIMALS",
           "TABLE_FORMATS", "table_format", "INDEX_COLUMNS", "csv_header", "write_csv_rows"]

#: decimals kept: pixel coordinates, pose degrees, blendshape scores
DECIMALS = {"px": 2, "deg": 2, "score": 5}
#: output formats by file suffix
TABLE_FORMATS = {".csv": "csv", ".parquet": "parquet"}
#: the columns that identify a row
INDEX_COLUMNS = ("input", "frame")

_BOX = ("box_x0", "box_y0", "box_x1", "box_y1")
_LM68 = tuple(f"x_{i}" for i in range(68)) + tuple(f"y_{i}" for i in range(68))
_MESH = tuple(f"mesh_{a}_{i}" for a in "xyz" for i in range(478))
_POSE = ("pitch", "yaw", "roll")
_STR = ("input", "reason", "aligned")
_INT = ("frame", "success", "faces", "width", "height")


def columns(*, mesh: bool = False, aligned: bool = False) -> list[str]:
    """The table's columns, in order."""
    cols = ["input", "frame", "timestamp", "success", "reason", "faces", "width", "height", *_BOX, *_LM68]
    if mesh:
        cols += _MESH
    cols += [*_POSE, *BLENDSHAPE_NAMES]
    if aligned:
        cols.append("aligned")
    return cols


def column_types(names: Iterable[str]) -> dict[str, str]:
    """pandas dtype per column: ``str``, ``int64`` or ``float64``."""
    return {c: "str" if c in _STR else "int64" if c in _INT else "float64" for c in names}


def empty_row(input_name: str, frame: int, *, timestamp: float = float("nan"), reason: str,
              faces: int = 0, width: int = 0, height: int = 0) -> dict[str, Any]:
    """A row without a face (``success`` 0): identifying columns and the reason only."""
    return {"input": input_name, "frame": int(frame), "timestamp": _round(timestamp, 6), "success": 0,
            "reason": reason, "faces": int(faces), "width": int(width), "height": int(height)}


def face_row(input_name: str, frame: int, face: Face, *, faces: int, width: int, height: int,
             timestamp: float = float("nan"), mesh: bool = False, aligned: str | None = None) -> dict[str, Any]:
    """The row of a frame whose chosen face is ``face`` (``success`` 1)."""
    px, deg, score = DECIMALS["px"], DECIMALS["deg"], DECIMALS["score"]
    row: dict[str, Any] = {"input": input_name, "frame": int(frame), "timestamp": _round(timestamp, 6),
                           "success": 1, "reason": "", "faces": int(faces), "width": int(width),
                           "height": int(height)}
    row.update(zip(_BOX, np.round(np.asarray(face.box, np.float64), px).tolist()))
    lm68 = np.round(face.landmarks68.astype(np.float64), px)
    row.update(zip(_LM68, np.concatenate([lm68[:, 0], lm68[:, 1]]).tolist()))
    if mesh:
        pts = np.round(face.landmarks.astype(np.float64), px)
        row.update(zip(_MESH, pts.T.reshape(-1).tolist()))
    pose = face.pose
    if pose is not None:
        row.update(zip(_POSE, np.round(np.asarray(pose, np.float64), deg).tolist()))
    if face.blendshape_scores is not None:
        row.update(zip(BLENDSHAPE_NAMES, np.round(face.blendshape_scores.astype(np.float64), score).tolist()))
    if aligned is not None:
        row["aligned"] = aligned
    return row


def _round(value: float, decimals: int) -> float:
    return float(np.round(value, decimals)) if np.isfinite(value) else float("nan")


def to_frame(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> "pd.DataFrame":
    """Rows -> a DataFrame with exactly ``cols`` in order and the table's dtypes
    (missing numbers are NaN, missing strings empty)."""
    import pandas as pd
    types = column_types(cols)
    data: dict[str, Any] = {}
    for c in cols:
        kind = types[c]
        if kind == "str":
            data[c] = pd.Series([r.get(c, "") for r in rows], dtype="str")
        elif kind == "int64":
            data[c] = pd.Series([r.get(c, 0) for r in rows], dtype="int64")
        else:
            data[c] = pd.Series([r.get(c, np.nan) for r in rows], dtype="float64")
    return pd.DataFrame(data, columns=list(cols))


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def csv_header(cols: Sequence[str]) -> str:
    """The header line of a table CSV with ``cols``."""
    return ",".join(cols) + "\n"


def write_csv_rows(rows: Sequence[dict[str, Any]], cols: Sequence[str], path: str | os.PathLike) -> None:
    """Rows as CSV, as pandas writes the same table (floats in their shortest exact form,
    NaN and missing values empty), without importing pandas (worker processes)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(csv_header(cols))
        writer = csv.writer(f, lineterminator="\n")
        for row in rows:
            writer.writerow([_cell(row.get(c, "")) for c in cols])


def table_format(path: str | os.PathLike) -> str:
    """``"csv"`` or ``"parquet"`` from the file name.

    Raises:
        ValueError: another suffix (the message names the path and the choices).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise ValueError(f"{path}: unknown table format {suffix or '(no suffix)'!r}; "
                         f"use {' or '.join(TABLE_FORMATS)}")
    return TABLE_FORMATS[suffix]


def parquet_available() -> bool:
    """Whether pandas can write Parquet here (pyarrow is installed)."""
    import importlib.util
    return importlib.util.find_spec("pyarrow") is not None


def read_csv_rows(path: str | os.PathLike, cols: Sequence[str] | None = None) -> "pd.DataFrame":
    """A table CSV (or part of one) with the table's dtypes."""
    import pandas as pd
    head = pd.read_csv(path, nrows=0).columns.tolist() if cols is None else list(cols)
    types = column_types(head)
    floats = [c for c, t in types.items() if t == "float64"]
    return pd.read_csv(path, dtype=types, keep_default_na=False, na_values={c: [""] for c in floats},
                       encoding="utf-8")


def read_table(path: str | os.PathLike) -> "pd.DataFrame":
    """Read a table that ``facekit analyze`` wrote (``.csv`` or ``.parquet``) with its dtypes.

    Strings stay strings (an input named ``NA`` is not a missing value; an empty
    ``reason`` is ``""``), numbers without a value are NaN.
    """
    import pandas as pd
    fmt = table_format(path)
    if fmt == "csv":
        return read_csv_rows(path)
    df = pd.read_parquet(path)
    return df.astype(column_types(df.columns))


def write_table(df: "pd.DataFrame", path: str | os.PathLike) -> None:
    """Write ``df`` as CSV or Parquet (by suffix) atomically: a temporary sibling, then a rename."""
    from .._fs import atomic_output
    fmt = table_format(path)
    with atomic_output(path) as tmp:
        if fmt == "csv":
            df.to_csv(tmp, index=False, encoding="utf-8")
        else:
            df.to_parquet(tmp, index=False)
