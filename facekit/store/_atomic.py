"""Atomic file output: write to a temporary name, rename when complete.

Temporary files are named ``<file>.tmp-<host>-<pid>`` after the process that
writes them, so that a later run can tell a temporary file left by a killed
process (same host, pid no longer running: :func:`is_stale_temp`) from one that
another live run is writing, and remove only the former.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from ..errors import FileError

__all__ = ["atomic_output", "temp_name", "fsync_path", "temp_owner", "is_stale_temp", "remove_stale_temps",
           "pid_alive", "this_host", "TEMP_MARK"]

#: what separates a file name from its temporary suffix
TEMP_MARK = ".tmp-"


def this_host() -> str:
    """This machine's name as used in temporary and lock file names (``[A-Za-z0-9._-]``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def temp_name(path: Path) -> Path:
    """Temporary sibling of ``path`` (same folder, so ``os.replace`` is atomic)."""
    return path.with_name(f"{path.name}{TEMP_MARK}{this_host()}-{os.getpid()}")


def temp_owner(name: str) -> tuple[str | None, int] | None:
    """``(host, pid)`` of a temporary file name (host ``None`` for the older
    ``<file>.tmp-<pid>`` form); ``None`` when ``name`` is not a temporary name."""
    if TEMP_MARK not in name:
        return None
    suffix = name.rsplit(TEMP_MARK, 1)[1]
    host, _, pid = suffix.rpartition("-")
    if not pid.isdigit():
        return None
    return (host or None), int(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (a zombie, dead but not yet
    reaped by its parent, does not count)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by someone else
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):  # no /proc (not Linux): trust kill(0)
        return True


def is_stale_temp(path: Path) -> bool:
    """True for a temporary file whose writer is gone: written on this host (or the
    host-less older form) by a pid that no longer runs."""
    owner = temp_owner(path.name)
    if owner is None:
        return False
    host, pid = owner
    return (host is None or host == this_host()) and not pid_alive(pid)


def remove_stale_temps(folder: Path, prefix: str = "") -> list[Path]:
    """Delete the stale temporary files (:func:`is_stale_temp`) in ``folder`` whose name
    starts with ``prefix``; returns what was removed. Unlistable folders are left alone."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(prefix) and TEMP_MARK in entry.name and is_stale_temp(Path(entry.path)):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


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
    modify a file in place without risking it), otherwise as an empty file. On
    any exception, including ``KeyboardInterrupt``, the temporary file is removed
    and ``path`` is left as it was. A ``kill -9`` leaves only a
    ``*.tmp-<host>-<pid>`` file that no reader treats as output, and that the
    next :func:`atomic_output` for the same ``path`` removes.

    Raises:
        FileError: the temporary file cannot be created next to ``path`` (a
            read-only or missing folder), or ``copy_from`` cannot be read.
    """
    path = Path(path)
    tmp = temp_name(path)
    remove_stale_temps(path.parent, path.name + TEMP_MARK)
    with contextlib.suppress(OSError):
        tmp.unlink()
    try:
        if copy_from is not None:
            shutil.copyfile(copy_from, tmp)
        else:
            tmp.touch()
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = exc.strerror or str(exc)
        if exc.filename is not None and os.fspath(exc.filename) != os.fspath(tmp):
            raise FileError(exc.filename, f"cannot be read ({reason})") from None
        raise FileError(path, f"cannot write in {path.parent if str(path.parent) else '.'} ({reason})") from None
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
