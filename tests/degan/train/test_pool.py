from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from types import ModuleType

import pytest

from degan.train.pool import run_in_processes
from degan.errors import CheckpointError, WorkerDiedError


@pytest.fixture
def tasks(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The task functions, importable by name in the spawned workers (they inherit sys.path)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import _pool_tasks
    return _pool_tasks


def _gone(pid: int, timeout: float = 10.0) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _wait_file(path: Path, timeout: float = 60.0) -> str:
    t0 = time.monotonic()
    while not (path.exists() and path.read_text()):
        assert time.monotonic() - t0 < timeout, path
        time.sleep(0.05)
    return path.read_text()


class TestRunInProcesses:
    def test_every_task_once_in_child_processes_with_slots(self, tasks: ModuleType) -> None:
        out = dict(run_in_processes(tasks.echo, [(k, (k * 10,)) for k in range(5)], jobs=2))
        assert sorted(out) == list(range(5))
        assert all(v[0] == k * 10 for k, v in out.items())
        assert {v[1] for v in out.values()} <= {0, 1}                  # progress-bar rows
        assert all(v[2] != os.getpid() for v in out.values())
        assert len({v[2] for v in out.values()}) == 5                  # a fresh process per task

    def test_results_arrive_as_tasks_finish(self, tasks: ModuleType, tmp_path: Path) -> None:
        flag = tmp_path / "flag"
        # "slow" cannot finish before the flag exists, and the flag is written only once "fast"'s
        # result has arrived: a pool that yielded in submission order would wait here for "slow"
        # until its 60-s timeout and then fail (no ordering race between the two children)
        with contextlib.closing(run_in_processes(tasks.dispatch, [("slow", ("wait", str(flag))), ("fast", ("echo", 1))],
                                                 jobs=2)) as it:
            first, _ = next(it)
            flag.write_text("x")
            second, result = next(it)
        assert (first, second, result) == ("fast", "slow", "waited")

    def test_error_is_raised_and_other_workers_terminated(self, tasks: ModuleType, tmp_path: Path) -> None:
        pid_file = tmp_path / "pid"
        it = run_in_processes(tasks.dispatch, [("sleeper", ("sleep", str(pid_file))),
                                               ("bad", ("fail_after", (str(pid_file), "fold_03/checkpoint.pt")))],
                              jobs=2)
        with pytest.raises(CheckpointError, match="fold_03/checkpoint.pt: broken on purpose") as ei:
            list(it)
        assert ei.value.path == "fold_03/checkpoint.pt"           # the error's fields survive the process boundary
        assert _gone(int(_wait_file(pid_file)))

    def test_unpicklable_error_keeps_type_and_message(self, tasks: ModuleType) -> None:
        with pytest.raises(RuntimeError, match=r"_Unpicklable: 1/2"):
            list(run_in_processes(tasks.fail_unpicklable, [("k", ())], jobs=1))

    def test_killed_worker_is_reported(self, tasks: ModuleType) -> None:
        with pytest.raises(WorkerDiedError, match=r"of fold 7 exited with code -9"):
            list(run_in_processes(tasks.die, [("fold 7", ())], jobs=2))

    def test_closing_early_terminates_workers(self, tasks: ModuleType, tmp_path: Path) -> None:
        pid_file = tmp_path / "pid"
        it = run_in_processes(tasks.dispatch, [("quick", ("echo", 1)), ("sleeper", ("sleep", str(pid_file)))],
                              jobs=2)
        with contextlib.closing(it):
            assert next(it)[0] == "quick"
            pid = int(_wait_file(pid_file))
        assert _gone(pid)


    def test_progress_reports_reach_the_parent(self, tasks: ModuleType) -> None:
        seen: list[tuple[str, int]] = []
        out = dict(run_in_processes(tasks.count, [("a", (3,)), ("b", (2,))], jobs=2,
                                    on_progress=lambda key, n: seen.append((key, n))))
        assert out == {"a": 3, "b": 2}
        assert sorted(seen) == [("a", 1), ("a", 1), ("a", 1), ("b", 1), ("b", 1)]   # all before the results
        assert dict(run_in_processes(tasks.echo, [("c", (1,))], jobs=1))["c"][0] == 1   # no report without it


class TestErrorsCrossProcesses:
    def test_non_finite_loss_error_pickles(self) -> None:
        import pickle

        from degan.errors import NonFiniteLossError
        e = NonFiniteLossError("gan", 1, 2, {"d_fake": float("nan")}, "run/fold_00/checkpoint.pt")
        e2 = pickle.loads(pickle.dumps(e))
        assert str(e2) == str(e) and (e2.stage, e2.epoch, e2.step, e2.checkpoint) == ("gan", 1, 2, e.checkpoint)
