"""All of a file's ``samples/image`` in memory, within a budget shared by the processes that may
each hold a copy at once (``degan-train --jobs N``, torchrun's local ranks). One file at a time
per process."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facekit.store import open_facekit

from ..errors import CacheMemoryError

__all__ = ["available_memory", "set_cache_jobs", "cache_share", "cache_budget", "load_cache", "check_cache_fits",
           "clear_cache"]

_CACHE: dict[tuple[str, float], np.ndarray] = {}
_JOBS = [1]          # processes of this invocation caching at once on this machine (degan-train --jobs)


def available_memory() -> int:
    """Bytes of memory available to new allocations (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def set_cache_jobs(jobs: int) -> None:
    """Declare that ``jobs`` processes (``degan-train --jobs``) may each cache the file at once."""
    _JOBS[0] = max(1, int(jobs))


def cache_share(jobs: int | None = None) -> int:
    """Processes on this machine that may each hold their own cached copy at the same time:
    the ``--jobs`` workers (``jobs``, default :func:`set_cache_jobs`'s) times torchrun's local ranks."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 1
    return (_JOBS[0] if jobs is None else max(1, jobs)) * max(1, local)


def cache_budget(jobs: int | None = None) -> tuple[int, int, int]:
    """(bytes each process may cache, bytes available, processes sharing): 60 % of the available
    memory minus 1 GiB, divided by :func:`cache_share` (processes that start together all see the
    same available memory, so each may take only its part)."""
    avail = available_memory()
    share = cache_share(jobs)
    return (int(0.6 * avail) - (1 << 30)) // share, avail, share


def check_cache_fits(path: str | os.PathLike, nbytes: int, jobs: int | None = None) -> None:
    """Raise :class:`CacheMemoryError` when ``nbytes`` of images exceed :func:`cache_budget`."""
    budget, avail, share = cache_budget(jobs)
    if nbytes > budget:
        who = f", shared by {share} processes loading their own copies" if share > 1 else ""
        raise CacheMemoryError(
            path, f"samples/image needs {nbytes / 2**30:.2f} GiB in memory but only {avail / 2**30:.2f} GiB "
                  f"is available (at most 60% minus 1 GiB is used{who}); run with --set cache=off")


def load_cache(path: Path, nbytes: int, mode: str) -> np.ndarray | None:
    """All of ``samples/image`` as one array, or None (``mode`` "auto" and it would not fit).

    Raises:
        CacheMemoryError: ``mode`` "on" and it does not fit.
    """
    key = (str(path.resolve()), path.stat().st_mtime)
    if key in _CACHE:
        return _CACHE[key]
    budget = cache_budget()[0]
    if nbytes > budget:
        if mode == "on":
            check_cache_fits(path, nbytes)
        return None
    with open_facekit(path) as fk:
        data = fk.images[()]
    _CACHE.clear()          # one file at a time
    _CACHE[key] = data
    return data


def clear_cache() -> None:
    """Drop the cached images of this process."""
    _CACHE.clear()
