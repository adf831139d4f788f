"""Independent cross-validation folds in parallel worker processes on one machine (``--jobs N``).

The networks of the ``cpu`` preset are small: at batch 64 a second thread speeds a
training step up far less than a second process running another fold does (measured on
2 cores: two 1-thread processes do 1.4-1.6x the stage-1 images/s of one 2-thread process,
and the CK+48 CV ran 1.4x faster; docs/history/degan-rounds.md, "Parallel folds"). Folds share nothing, and every fold's random state
derives from (seed, fold), so running them side by side gives the results of running
them one after the other.

Each fold gets a fresh ``spawn``-ed process (no CUDA or OpenMP state crosses a fork; the
start-up, about 2 s, is small against a fold). Finished folds are reported as they end.
If a fold fails, or its process dies (killed, out of memory), the other workers are
terminated and the error is raised in the parent; their checkpoints (written atomically
after every epoch) stay, so ``--resume`` continues them. This is deliberately not a
multi-machine layer: across machines and GPUs, use ``torchrun``.
"""
from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from facekit.errors import picklable_exception

from ..errors import WorkerDiedError

__all__ = ["run_in_processes"]

#: seconds between checks for worker processes that died without reporting
POLL_S = 1.0


def _child(fn: Callable[..., Any], key: Any, args: tuple[Any, ...], slot: int, results: Any, lock: Any,
           progress: bool) -> None:
    from tqdm.auto import tqdm
    tqdm.set_lock(lock)               # progress bars of all workers share one terminal lock
    kw: dict[str, Any] = {"bar_position": slot}
    if progress:
        kw["report"] = lambda n: results.put((key, "progress", n))
    try:
        out = fn(*args, **kw)
    except BaseException as exc:      # KeyboardInterrupt too: the parent decides what happens next
        results.put((key, "error", picklable_exception(exc)))
    else:
        results.put((key, "ok", out))


def run_in_processes(fn: Callable[..., Any], tasks: Sequence[tuple[Any, tuple[Any, ...]]],
                     jobs: int, on_progress: Callable[[Any, Any], None] | None = None) -> Iterator[tuple[Any, Any]]:
    """Run ``fn(*args, bar_position=slot)`` for every ``(key, args)`` in ``tasks``, at most
    ``jobs`` at a time, each in its own process; yields ``(key, result)`` as tasks finish.

    ``fn`` must be importable (a module-level function) and ``args`` and its result picklable.
    ``slot`` (0..jobs-1) is the worker's row for a progress bar. With ``on_progress``, ``fn``
    also gets ``report``: a function whose (picklable) argument reaches ``on_progress(key, value)``
    in this process while the task runs. The first task that raises
    ends the run: the other workers are terminated and its exception is raised here
    (:class:`WorkerDiedError` when a process died without reporting). Closing the iterator
    early, or an exception in the consumer while it is suspended, terminates the workers too.
    """
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    lock = ctx.RLock()
    from tqdm.auto import tqdm
    tqdm.set_lock(lock)               # the parent's tqdm.write() lines share the lock as well
    pending = list(tasks)[::-1]
    running: dict[Any, tuple[Any, int]] = {}
    free = list(range(max(1, jobs)))[::-1]
    try:
        while pending or running:
            while pending and free:
                key, args = pending.pop()
                slot = free.pop()
                # not daemonic: a worker may start DataLoader workers of its own
                proc = ctx.Process(target=_child, name=f"degan-job-{key}",
                                   args=(fn, key, args, slot, results, lock, on_progress is not None))
                proc.start()
                running[key] = (proc, slot)
            try:
                key, kind, payload = results.get(timeout=POLL_S)
            except queue_mod.Empty:
                for k, (proc, _) in running.items():
                    if proc.exitcode not in (None, 0):
                        raise WorkerDiedError(f"the worker process of {k} exited with code {proc.exitcode} "
                                              "without a result (killed, or out of memory?)")
                continue
            if kind == "progress":
                if on_progress is not None:
                    on_progress(key, payload)
                continue
            proc, slot = running.pop(key)
            proc.join()
            free.append(slot)
            if kind == "error":
                raise payload
            yield key, payload
    finally:
        for proc, _ in running.values():
            proc.terminate()
        for proc, _ in running.values():
            proc.join()
        results.close()
