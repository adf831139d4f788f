"""Lock files that keep two runs off one output (``OUT.lock``).

A lock is a small JSON file (``pid``, ``host``, ``started``, ``command`` and
what the holder does) that appears atomically: it is written under a
temporary name and hard-linked to the lock name, which fails when a lock is
already there. The holder also keeps an ``flock`` on it for as long as it
runs, which the kernel drops when the process dies, however it dies.

A lock whose holder is gone (no ``flock`` held, written on this host by a pid
that no longer runs) is *stale* and taken over. A lock written on another host
that nobody holds cannot be judged from here and is respected; the refusal says
which file to delete once that run is known to be gone.

Several holders of compatible locks can work on one output: the shards of one
sharded run each hold ``OUT.shard-I-of-N.lock`` (same settings fingerprint,
same N, different I), while a whole run, an assembly or ``facekit folds`` holds
``OUT.lock`` (:func:`lock_output`).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import FileError, OutputLockedError
from ._atomic import TEMP_MARK, pid_alive, remove_stale_temps, temp_name, this_host

__all__ = ["FileLock", "LockInfo", "lock_output", "OutputLock", "lock_path", "shard_lock_path"]

LockInfo = dict[str, Any]


def lock_path(out: Path) -> Path:
    """``OUT.lock``: held by a whole ``prepare`` run, an assembly or ``facekit folds``."""
    return out.with_name(out.name + ".lock")


def shard_lock_path(out: Path, shard: tuple[int, int]) -> Path:
    """``OUT.shard-I-of-N.lock``: held by the run of one shard."""
    return out.with_name(f"{out.name}.shard-{shard[0]}-of-{shard[1]}.lock")


def _describe(info: LockInfo) -> str:
    return f"locked by pid {info.get('pid', '?')} on {info.get('host', '?')} (started {info.get('started', '?')})"


#: errors of a file system that has no flock (the lock then rests on the pid check alone)
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}
_TRIES, _PAUSE = 50, 0.02   # how long a lock being taken over is waited for: about a second


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
    """One lock file. :meth:`acquire` raises :class:`~facekit.errors.OutputLockedError`
    (naming ``owner``, the file the lock protects) when a live run holds it."""

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
                    raise self._refusal(info)
                time.sleep(_PAUSE)
            raise self._refusal(info)
        finally:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _refusal(self, info: LockInfo) -> OutputLockedError:
        what = f": a {info['doing']} run" if info.get("doing") else ""
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


class OutputLock:
    """The locks a run holds on one output; see :func:`lock_output`."""

    def __init__(self, out: Path, locks: list[FileLock]) -> None:
        self.out = out
        self.locks = locks

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()
        self.locks = []

    def __enter__(self) -> "OutputLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _shard_locks(out: Path) -> list[Path]:
    prefix = out.name + ".shard-"
    try:
        return sorted(p for p in out.parent.iterdir()
                      if p.name.startswith(prefix) and p.name.endswith(".lock"))
    except OSError:
        return []


def lock_output(out: str | os.PathLike, *, doing: str, shard: tuple[int, int] | None = None,
                fingerprint: str | None = None) -> OutputLock:
    """Lock ``out`` for one run; release with ``.release()`` or a ``with`` block.

    Without ``shard``: ``OUT.lock``, and no live shard may hold its shard lock.
    With ``shard=(i, n)``: ``OUT.shard-i-of-n.lock``; refused while ``OUT.lock``
    is held or while a shard of another sharding (other ``n`` or ``fingerprint``)
    holds one. ``doing`` (e.g. ``"prepare"``) is written into the lock and shown
    in refusals.

    Raises:
        OutputLockedError: ``OUT: locked by pid N on HOST (started T)``.
        FileError: the lock file cannot be created (read-only folder).
    """
    out = Path(out)
    info = {"doing": doing, "fingerprint": fingerprint,
            "shard": None if shard is None else f"{shard[0]}/{shard[1]}"}
    main = FileLock(lock_path(out), out, info)
    if shard is None:
        _acquire(main)
        try:
            for other in _shard_locks(out):
                holder = FileLock(other, out).holder()
                if holder is not None:
                    raise FileLock(other, out)._refusal(holder)
        except BaseException:
            main.release()
            raise
        return OutputLock(out, [main])
    mine = FileLock(shard_lock_path(out, shard), out, info)
    _acquire(mine)
    try:
        holder = main.holder()
        if holder is not None:
            raise main._refusal(holder)
        for other in _shard_locks(out):
            if other == mine.path:
                continue
            h = FileLock(other, out).holder()
            if h is not None and (h.get("fingerprint") != fingerprint
                                  or str(h.get("shard", "")).split("/")[-1] != str(shard[1])):
                raise FileLock(other, out)._refusal({**h, "doing": f"{h.get('doing', 'prepare')} of shard "
                                                                   f"{h.get('shard')} with other settings"})
    except BaseException:
        mine.release()
        raise
    return OutputLock(out, [mine])


def _acquire(lock: FileLock) -> None:
    try:
        lock.acquire()
    except OutputLockedError:
        raise
    except OSError as exc:
        raise FileError(lock.owner, f"cannot write in {lock.path.parent} (its lock file {lock.path.name} goes "
                                    f"there: {exc.strerror or exc})") from None
