"""The worker processes of a ``prepare`` run.

Each worker has its own pipe to the parent, which hands it one part at a time,
so the parent always knows which part every worker holds. The parent waits on
the pipes and on the processes' sentinels together: a worker that dies (``kill
-9``, the out-of-memory killer) is noticed at once and reported with the part
it was writing (:class:`~facekit.errors.WorkerDiedError`), instead of the run
waiting for a result that never comes.

Workers leave quietly: they ignore Ctrl-C (the parent handles it and stops
them), unwind on ``SIGTERM`` (so the part being written deletes its temporary
file), receive ``SIGTERM`` when the parent dies (Linux), stop without a
traceback when their pipe breaks, and keep file descriptor 2 pointed away from
the terminal, so native MediaPipe/TFLite log lines never reach it (errors go
to the parent through the pipe).
"""
from __future__ import annotations

import signal
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing import connection
from pathlib import Path
from typing import Any

from .._quiet import native_stderr_silenced
from .._workers import BatchedProgress, become_worker
from ..errors import WorkerDiedError, picklable_exception
from .config import PrepareConfig
from .plan import Part

__all__ = ["WorkerPool", "worker_main"]

Job = tuple[Part, str, dict[str, Any]]


def worker_main(conn: connection.Connection, config: PrepareConfig) -> None:
    """Body of a worker process: load a landmarker, then write the parts the parent sends
    (``(part, path, attrs)``; ``None`` = stop). Messages to the parent:
    ``("progress", n)``, ``("done", PartResult)``, ``("error", exc)``."""
    become_worker(unwind=True)            # SIGTERM unwinds: the part being written removes its temporary file
    from ._worker import PartProcessor

    try:
        with native_stderr_silenced():
            proc = None
            try:
                proc = PartProcessor(config, {})
                while True:
                    job = conn.recv()
                    if job is None:
                        return
                    part, path, attrs = job
                    progress = BatchedProgress(lambda n: conn.send(("progress", n)))
                    try:
                        result = proc.process(part, Path(path), progress=progress, attrs=attrs)
                    except Exception as exc:
                        conn.send(("error", picklable_exception(exc)))
                        return
                    progress.flush()
                    conn.send(("done", result))
            except Exception as exc:      # the landmarker could not be loaded
                if proc is None:
                    conn.send(("error", picklable_exception(exc)))
                    return
                raise
            finally:
                if proc is not None:
                    proc.close()
    except (EOFError, BrokenPipeError, ConnectionError):
        return                            # the parent is gone: nothing to report to


class _Worker:
    def __init__(self, process: Any, conn: connection.Connection) -> None:
        self.process, self.conn = process, conn
        self.job: Job | None = None


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (as the out-of-memory killer does when memory runs out)" if -exitcode == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {exitcode}"


class WorkerPool:
    """``size`` worker processes started now from ``ctx`` (they load their landmarkers
    while the caller goes on)."""

    def __init__(self, ctx: Any, size: int, config: PrepareConfig) -> None:
        self.size = size
        self.workers: list[_Worker] = []
        try:
            for _ in range(size):
                mine, theirs = ctx.Pipe(duplex=True)
                proc = ctx.Process(target=worker_main, args=(theirs, config), daemon=True,
                                   name="facekit-prepare-worker")
                proc.start()
                theirs.close()
                self.workers.append(_Worker(proc, mine))
        except BaseException:
            self.terminate()
            raise

    def run(self, jobs: list[Job], progress: Callable[[int], None] | None = None) -> Iterator[Any]:
        """Write ``jobs``; yields each :class:`~facekit.prepare._worker.PartResult` as it arrives.

        Raises:
            WorkerDiedError: a worker died while writing a part (the other workers
                finish the parts they hold first; no new part is started).
            Exception: what a worker raised (the run stops).
        """
        pending: deque[Job] = deque(jobs)
        died: tuple[_Worker, Job] | None = None
        live = list(self.workers)

        def hand_out(w: _Worker) -> None:
            if pending and died is None:
                try:
                    w.conn.send(pending[0])
                except OSError:                  # it is dying: its sentinel says so next
                    return
                w.job = pending.popleft()

        for w in live:
            hand_out(w)
        while any(w.job is not None for w in live) or (pending and died is None and live):
            ready = set(connection.wait([w.conn for w in live] + [w.process.sentinel for w in live]))
            for w in list(live):
                gone = w.process.sentinel in ready
                if not gone and w.conn not in ready:
                    continue
                for kind, value in self._drain(w):
                    if kind == "progress":
                        if progress is not None:
                            progress(value)
                    elif kind == "done":
                        w.job = None
                        yield value
                    else:                        # "error": what the worker raised
                        raise value
                if gone:
                    w.process.join()
                    live.remove(w)
                    if w.job is not None and died is None:
                        died = (w, w.job)
                    w.job = None
                elif w.job is None:
                    hand_out(w)
        if died is not None:
            w, (part, path, _) = died
            n = len(part.items)
            raise WorkerDiedError(path, f"the worker process writing this part (pid {w.process.pid}, "
                                        f"{part.n_frames} frames of {n} sequence{'s' if n != 1 else ''}, the "
                                        f"first {part.items[0].sequence}) {_death(w.process.exitcode)}; the "
                                        "finished parts are kept: run the same command with --resume to continue")
        if pending:                              # every worker died while idle
            raise WorkerDiedError(pending[0][1], "no worker process is left to write this part")

    @staticmethod
    def _drain(w: _Worker) -> Iterator[tuple[str, Any]]:
        """The messages waiting in ``w``'s pipe (none once it is closed)."""
        while True:
            try:
                if not w.conn.poll():
                    return
                yield w.conn.recv()
            except (EOFError, OSError):
                return

    def close(self) -> None:
        """No more work: the workers stop (closing their landmarkers); :meth:`join` waits for them."""
        for w in self.workers:
            try:
                w.conn.send(None)
            except OSError:
                pass

    def join(self) -> None:
        for w in self.workers:
            w.process.join()
            w.conn.close()
        self.workers = []

    def terminate(self) -> None:
        """Stop the workers now (``SIGTERM``: each deletes the temporary part it was writing)."""
        for w in self.workers:
            if w.process.is_alive():
                w.process.terminate()
        self.join()
