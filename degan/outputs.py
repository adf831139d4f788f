"""Outputs of a run: small JSON files written atomically (temporary file + rename), and the check
that an output location can be written before any work starts."""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from facekit.store import atomic_output

from .errors import RunDirError

__all__ = ["write_json", "check_writable_dir"]


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
