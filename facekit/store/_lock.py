"""The locks that keep two runs off one output (``OUT.lock``, shard locks).

A lock is a :class:`facekit._fs.FileLock` (pid, host, start time and what the
holder does, written atomically and held with ``flock``; stale locks of dead
processes on this host are taken over).

Several holders of compatible locks can work on one output: the shards of one
sharded run each hold ``OUT.shard-I-of-N.lock`` (same settings fingerprint,
same N, different I), while a whole run, an assembly or ``facekit folds`` holds
``OUT.lock`` (:func:`lock_output`).
"""
from __future__ import annotations

import os
from pathlib import Path

from .._fs import FileLock, LockInfo
from ..errors import FileError, OutputLockedError

__all__ = ["FileLock", "LockInfo", "lock_output", "OutputLock", "lock_path", "shard_lock_path"]


def lock_path(out: Path) -> Path:
    """``OUT.lock``: held by a whole ``prepare`` run, an assembly or ``facekit folds``."""
    return out.with_name(out.name + ".lock")


def shard_lock_path(out: Path, shard: tuple[int, int]) -> Path:
    """``OUT.shard-I-of-N.lock``: held by the run of one shard."""
    return out.with_name(f"{out.name}.shard-{shard[0]}-of-{shard[1]}.lock")


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
                    raise FileLock(other, out).refusal(holder)
        except BaseException:
            main.release()
            raise
        return OutputLock(out, [main])
    mine = FileLock(shard_lock_path(out, shard), out, info)
    _acquire(mine)
    try:
        holder = main.holder()
        if holder is not None:
            raise main.refusal(holder)
        for other in _shard_locks(out):
            if other == mine.path:
                continue
            h = FileLock(other, out).holder()
            if h is not None and (h.get("fingerprint") != fingerprint
                                  or str(h.get("shard", "")).split("/")[-1] != str(shard[1])):
                raise FileLock(other, out).refusal({**h, "doing": f"{h.get('doing', 'prepare')} of shard "
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
