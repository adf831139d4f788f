"""Files that appear whole, locks that keep two runs apart, printable names (private).

One implementation for every part of facekit that writes files: the HDF5 store
(``out.h5``, its parts and ``OUT.lock``), the analysis tables (``OUT.csv``,
``OUT.parts/``), model downloads and the degan add-on. Nothing here imports
h5py, pandas or MediaPipe, so light modules can use it.

Temporary files
    ``<file>.tmp-<host>-<pid>``, named after the process that writes them, so a
    later run can tell a temporary file left by a killed process (same host, pid
    no longer running: :func:`is_stale_temp`) from one that another live run is
    writing, and remove only the former (:func:`remove_stale_temps`).
    :func:`atomic_output` writes through one and renames it when complete.

Locks
    :class:`FileLock`: a small JSON file (``pid``, ``host``, ``started``,
    ``command`` and what the holder does) that appears atomically: it is written
    under a temporary name and hard-linked to the lock name, which fails when a
    lock is already there. The holder also keeps an ``flock`` on it for as long
    as it runs, which the kernel drops when the process dies, however it dies. A
    lock whose holder is gone (no ``flock`` held, written on this host by a pid
    that no longer runs) is *stale* and taken over; a lock written on another
    host that nobody holds cannot be judged from here and is respected, and the
    refusal says which file to delete once that run is known to be gone. (On a
    file system without ``flock`` the pid check alone decides.)

Names
    :func:`printable`: a file name whose bytes are not UTF-8 as text that can be
    stored and printed (``caf\\xe9.png``).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import FileError, OutputLockedError

__all__ = ["TEMP_MARK", "this_host", "temp_name", "temp_owner", "pid_alive", "is_stale_temp",
           "remove_stale_temps", "fsync_path", "atomic_output", "write_json_atomic", "FileLock", "LockInfo",
           "printable"]

#: what separates a file name from its temporary suffix
TEMP_MARK = ".tmp-"


# --- temporary files ------------------------------------------------------------------------
def this_host() -> str:
    """This machine's name as used in temporary and lock file names (``[A-Za-z0-9._-]``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def temp_name(path: Path) -> Path:
    """Temporary sibling of ``path`` (same folder, so ``os.replace`` is atomic)."""
    path = Path(path)
    return path.with_name(f"{path.name}{TEMP_MARK}{this_host()}-{os.getpid()}")


def temp_owner(name: str) -> tuple[str | None, int] | None:
    """``(host, pid)`` of a temporary file name (host ``None`` for the host-less
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
    host-less form) by a pid that no longer runs."""
    owner = temp_owner(Path(path).name)
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
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, copy_from: str | os.PathLike | None = None, sync: bool = True,
                  clean: bool = True) -> Iterator[Path]:
    """Yield a temporary path; when the block ends without an exception it replaces
    ``path`` atomically (``os.replace``).

    Args:
        path: the file to write.
        copy_from: the temporary file starts as a copy of this file (to modify a
            file in place without risking it); otherwise as an empty file.
        sync: flush the temporary file to disk before the rename (``False`` for
            many small files whose loss in an OS crash the caller can redo).
        clean: first remove stale temporaries of ``path`` (:func:`remove_stale_temps`);
            callers that write many files into a folder they clean once pass ``False``.

    On any exception, including ``KeyboardInterrupt``, the temporary file is
    removed and ``path`` is left as it was. A ``kill -9`` leaves only a
    ``*.tmp-<host>-<pid>`` file that no reader treats as output and that the
    next cleaning removes.

    Raises:
        FileError: the temporary file cannot be created next to ``path`` (a
            read-only or missing folder), or ``copy_from`` cannot be read.
    """
    path = Path(path)
    tmp = temp_name(path)
    if clean:
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
        if sync:
            fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_json_atomic(path: str | os.PathLike, obj: object, *, clean: bool = True) -> None:
    """``obj`` as indented JSON (keys sorted), written with :func:`atomic_output`."""
    with atomic_output(path, clean=clean) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str), encoding="utf-8")


# --- names ---------------------------------------------------------------------------------
def printable(name: str | os.PathLike) -> str:
    """``name`` as text that can be written as UTF-8: bytes of a file name that are not
    UTF-8 (Python keeps them as surrogates) become ``\\xNN`` escapes (``caf\\xe9.png``);
    valid names come back unchanged."""
    text = os.fspath(name)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:       # lone surrogates that are not escaped bytes
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


# --- locks ---------------------------------------------------------------------------------
LockInfo = dict[str, Any]

#: errors of a file system that has no flock (the lock then rests on the pid check alone)
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}
_TRIES, _PAUSE = 50, 0.02   # how long a lock being taken over is waited for: about a second


def _describe(info: LockInfo) -> str:
    return f"locked by pid {info.get('pid', '?')} on {info.get('host', '?')} (started {info.get('started', '?')})"


def _dead_here(info: LockInfo) -> bool:
    """Written on this host by a pid that no longer runs."""
    pid = info.get("pid")
    return info.get("host") == this_host() and isinstance(pid, int) and not pid_alive(pid)


def _read(fd: int) -> LockInfo | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    try:
        info = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return info if isinstance(info, dict) else None


class FileLock:
    """One lock file (see the module docstring).

    Args:
        path: the lock file.
        owner: the file or folder the lock protects; refusals name it.
        info: extra fields for the lock file, e.g. ``{"doing": "prepare"}``
            (shown in refusals as "a prepare run").

    :meth:`acquire` (or ``with``) raises :class:`~facekit.errors.OutputLockedError`
    when a live run holds it.
    """

    def __init__(self, path: Path, owner: Path, info: LockInfo | None = None) -> None:
        self.path = Path(path)
        self.owner = Path(owner)
        self.info: LockInfo = {
            "pid": os.getpid(), "host": this_host(),
            "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:500],
            **(info or {}),
        }
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    # inspecting another holder --------------------------------------------------
    def holder(self) -> LockInfo | None:
        """The holder's info while the lock is held (or cannot be judged), ``None`` when it
        is free or stale."""
        info: LockInfo | None = None
        for _ in range(_TRIES):
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return None
            try:
                state, info = self._judge(fd)
            finally:
                os.close(fd)
            if state == "held":
                return info
            if state == "stale":
                return None
            time.sleep(_PAUSE)
        return info or {}

    def _judge(self, fd: int) -> tuple[str, LockInfo]:
        """State of the lock file open as ``fd``: ``"held"``, ``"stale"`` (``fd`` is then
        left flocked, so the caller may take the lock over), ``"gone"`` (released or
        replaced meanwhile) or ``"busy"`` (flocked, yet its pid is gone: being taken over
        right now, or worker processes of a dead holder still run)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _NO_FLOCK:           # a file system without flock: judge by the pid alone
                pass
            elif exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            else:
                info = _read(fd) or {}
                return ("busy" if _dead_here(info) else "held"), info
        try:
            same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        info = _read(fd) or {}
        if same and _dead_here(info):
            return "stale", info
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        return ("held" if same else "gone"), info   # alive here, or another host's: respected

    # taking it ---------------------------------------------------------------------
    def acquire(self) -> "FileLock":
        """Take the lock (taking over a stale one).

        Raises:
            OutputLockedError: a live (or not judgeable) run holds it.
            OSError: the lock file cannot be created.
        """
        if self._fd is not None:
            return self
        remove_stale_temps(self.path.parent, self.path.name + TEMP_MARK)
        tmp = temp_name(self.path)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        info: LockInfo = {}
        try:
            os.write(fd, json.dumps(self.info).encode("utf-8"))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                if exc.errno not in _NO_FLOCK:
                    raise
            for _ in range(_TRIES):
                try:
                    os.link(tmp, self.path)        # atomic: fails when a lock file is there
                except FileExistsError:
                    pass
                else:
                    self._fd, fd = fd, -1
                    return self
                try:
                    other = os.open(self.path, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                try:
                    state, info = self._judge(other)
                    if state == "stale":
                        os.unlink(self.path)       # still the lock file, and its flock is ours
                        continue
                finally:
                    os.close(other)
                if state == "held":
                    raise self.refusal(info)
                time.sleep(_PAUSE)
            raise self.refusal(info)
        finally:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def refusal(self, info: LockInfo) -> OutputLockedError:
        """The error that names the holder ``info`` of this lock."""
        doing = info.get("doing")
        what = f": {'an' if str(doing)[:1] in 'aeiou' else 'a'} {doing} run" if doing else ""
        hint = ""
        if info.get("host") != this_host():
            hint = f"; if that run is gone, delete {self.path}"
        elif _dead_here(info):
            hint = " (that process is gone but its worker processes still run)"
        return OutputLockedError(self.owner, _describe(info) + what + hint)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                if os.fstat(self._fd).st_ino == os.stat(self.path).st_ino:
                    os.unlink(self.path)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
