"""Task functions for tests/degan/train/test_pool.py (imported by name in spawned workers)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from degan.errors import CheckpointError


def echo(value: Any, *, bar_position: int) -> tuple[Any, int, int]:
    return value, bar_position, os.getpid()


def count(n: int, *, bar_position: int, report: Any) -> int:
    for _ in range(n):
        report(1)
    return n


def fail(path: str, *, bar_position: int) -> None:
    raise CheckpointError(path, "broken on purpose")


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


def fail_unpicklable(*, bar_position: int) -> None:
    raise _Unpicklable(1, 2)


def die(*, bar_position: int) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_forever(pid_file: str, *, bar_position: int) -> None:
    tmp = Path(pid_file + ".tmp")
    tmp.write_text(str(os.getpid()))
    tmp.replace(pid_file)                     # appears complete: others wait for it to exist
    time.sleep(600)


def wait_for(path: str, then: str, *, bar_position: int) -> str:
    """Wait until ``path`` exists (written by another task), then return ``then``."""
    t0 = time.monotonic()
    while not Path(path).exists():
        if time.monotonic() - t0 > 60:
            raise TimeoutError(path)
        time.sleep(0.05)
    return then


def touch(path: str, *, bar_position: int) -> str:
    Path(path).write_text("x")
    return "touched"


def dispatch(what: str, arg: Any, *, bar_position: int) -> Any:
    """One task function for mixed task lists: ``what`` names the behaviour."""
    if what == "echo":
        return echo(arg, bar_position=bar_position)
    if what == "fail":
        return fail(arg, bar_position=bar_position)
    if what == "fail_after":                  # arg: (file to wait for, path for the error)
        wait_for(arg[0], "", bar_position=bar_position)
        return fail(arg[1], bar_position=bar_position)
    if what == "sleep":
        return sleep_forever(arg, bar_position=bar_position)
    if what == "touch":
        return touch(arg, bar_position=bar_position)
    if what == "wait":
        return wait_for(arg, "waited", bar_position=bar_position)
    raise ValueError(what)
