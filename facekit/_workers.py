"""Worker processes of ``prepare`` and ``analyze``: how they are started and how they behave (private).

Start method (:func:`pool_context`), one rule for both commands:

* ``fork`` while this process has created no MediaPipe task (importing
  MediaPipe is fine): workers start at once and inherit the imported modules.
  OpenCV's thread pool is stopped for every fork of this process from then on
  and set back afterwards (``os.register_at_fork``): a child forked while the
  pool's threads exist hangs in its first ``cv2.setNumThreads`` (OpenCV 5.1,
  pthreads backend), and a notebook that resized a large image, ran ``detect``
  or ``analyze`` has such threads;
* ``forkserver`` once a MediaPipe task was created here (``facekit.Landmarker``,
  ``analyze`` or ``prepare`` with one worker): a forked child would inherit that
  task's thread pools and locks, and closing it at the child's exit can
  deadlock. The server is a fresh process that imports the worker code and
  MediaPipe once (:mod:`facekit._server`); ``spawn`` where there is no
  forkserver.

A worker (:func:`become_worker`) ignores Ctrl-C (the parent handles it and stops
its workers), ends on ``SIGTERM``, receives ``SIGTERM`` when its parent dies
(Linux), exits at once if the parent is already gone, and writes nothing to the
terminal: its file descriptor 2 points at ``/dev/null`` for good, so that
MediaPipe/TFLite log lines printed by a graph thread late (a calculator opened
while the machine is busy, a task torn down at exit) cannot reach it; what a
worker has to say goes to its parent. Both kinds of workers
keep OpenCV to one thread (:class:`OneOpenCVThread`: the warps are small and the
landmarker uses the cores) and send progress in batches (:class:`BatchedProgress`).
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["pool_context", "become_worker", "OneOpenCVThread", "BatchedProgress",
           "SERVER_PRELOAD"]

#: what the fork server imports before it forks any worker
SERVER_PRELOAD = ["facekit._server"]
_PR_SET_PDEATHSIG = 1


def pool_context() -> Any:
    """The multiprocessing context worker processes start from (see the module docstring)."""
    from .detect.landmarker import mediapipe_started, preload
    methods = mp.get_all_start_methods()
    if "fork" in methods and not mediapipe_started():
        preload()          # imported once here rather than once per worker
        _stop_opencv_pool_around_forks()
        return mp.get_context("fork")
    method = "forkserver" if "forkserver" in methods else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(SERVER_PRELOAD)
    return ctx


_FORK_HOOKED = False
_SAVED_THREADS: list[int] = []


def _before_fork() -> None:
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        _SAVED_THREADS.append(cv2.getNumThreads())
        cv2.setNumThreads(1)                          # joins the pool's threads


def _after_fork_in_parent() -> None:
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and _SAVED_THREADS:
        cv2.setNumThreads(_SAVED_THREADS.pop())


def _stop_opencv_pool_around_forks() -> None:
    """From now on every ``os.fork`` of this process (multiprocessing's included) happens
    with OpenCV's thread pool stopped; the parent gets its pool size back right after."""
    global _FORK_HOOKED
    if not _FORK_HOOKED:
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent)
        _FORK_HOOKED = True


def become_worker(*, unwind: bool = True) -> int:
    """Set up the calling process as a worker (see the module docstring); returns the
    parent's pid.

    Args:
        unwind: on ``SIGTERM`` raise ``SystemExit(143)``, so that ``with`` blocks
            remove their temporary files; ``False``: ``os._exit(143)`` at once
            (for workers run by :mod:`concurrent.futures`, which would catch the
            ``SystemExit`` and go on; a temporary file left then is removed by the
            next run of the same output).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)                              # native log lines of this process: nowhere
    os.close(devnull)
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the parent handles Ctrl-C and stops us
    if unwind:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    else:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: a broken pipe still stops us
            pass
    if os.getppid() != parent:                       # died before prctl took effect
        sys.exit(0)
    return parent


class OneOpenCVThread:
    """``cv2.setNumThreads(1)`` until :meth:`restore` (idempotent) sets back the previous
    count. One OpenCV thread in each worker: the warps are small, and OpenCV's pool
    spinning next to the landmarker cost 7% of the CPU time of a one-process JAFFE run.
    Restored because one-worker runs work in the caller's process."""

    def __init__(self) -> None:
        import cv2
        self._saved: int | None = cv2.getNumThreads()
        cv2.setNumThreads(1)

    def restore(self) -> None:
        if self._saved is not None:
            import cv2
            cv2.setNumThreads(self._saved)
            self._saved = None


class BatchedProgress:
    """Progress callback that forwards its counts to ``send`` at most every ``interval``
    seconds (and on :meth:`flush`): a message per image woke the parent once per image."""

    def __init__(self, send: Callable[[int], None], interval: float = 0.1) -> None:
        self.send, self.interval = send, interval
        self.n, self.last = 0, time.monotonic()

    def __call__(self, n: int) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.n:
            self.send(self.n)
            self.n, self.last = 0, time.monotonic()
