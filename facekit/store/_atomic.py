"""Atomic file output: write to a temporary name, rename when complete."""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "temp_name", "fsync_path"]


def temp_name(path: Path) -> Path:
    """Temporary sibling of ``path`` (same folder, so ``os.replace`` is atomic)."""
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, copy_from: str | os.PathLike | None = None) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``path`` atomically.

    With ``copy_from`` the temporary file starts as a copy of that file (used to
    modify a file in place without risking it). On any exception, including
    ``KeyboardInterrupt``, the temporary file is removed and ``path`` is left as
    it was. A ``kill -9`` leaves only a ``*.tmp-<pid>`` file that no reader
    treats as output.
    """
    path = Path(path)
    tmp = temp_name(path)
    if tmp.exists():
        tmp.unlink()
    if copy_from is not None:
        shutil.copyfile(copy_from, tmp)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
