"""Outputs of a run: small JSON files written atomically (temporary file + rename), CSV cells that
a spreadsheet cannot run as formulas, and the check that an output location can be written before
any work starts."""
from __future__ import annotations

import errno
import json
import numbers
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from facekit.store import atomic_output

from .errors import RunDirError

__all__ = ["write_json", "check_writable_dir", "csv_cell", "csv_text"]

#: first characters that make a spreadsheet read a cell as a formula (CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path``; a reader never sees a half-written file."""
    path = Path(path)
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2))
    return path


def check_writable_dir(path: str | os.PathLike) -> None:
    """Raise :class:`RunDirError` naming ``path`` unless it is a directory this process can write,
    or can be created (its nearest existing parent is a writable directory). Tried with a probe
    file, so a read-only file system counts too; nothing is left behind."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(path, "exists and is not a directory")
    where = path
    while not where.exists():
        where = where.parent
    if not where.is_dir():
        raise RunDirError(path, f"cannot be created: {where} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".degan-probe-", dir=where)
    except OSError as exc:
        what = "is not writable" if where == path else f"cannot be created: {where} is not writable"
        raise RunDirError(path, what + (" (read-only file system)" if exc.errno == errno.EROFS else "")) from None
    os.close(fd)
    os.unlink(probe)


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell that cannot run as a formula: text that starts with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return (and text that starts with a single quote, so that
    :func:`csv_text` gets every text back) gets a leading single quote; numbers, and text that is
    a plain number such as ``-0.5``, stay as they are."""
    if isinstance(value, numbers.Number):
        return value
    text = str(value)
    if text.startswith("'") or (text.startswith(FORMULA_START) and not _NUMBER.match(text)):
        return "'" + text
    return text


def csv_text(cell: str) -> str:
    """Inverse of :func:`csv_cell` for a cell read back as text."""
    return cell[1:] if cell.startswith("'") else cell
