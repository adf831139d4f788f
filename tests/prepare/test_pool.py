"""The worker processes of ``prepare`` when something kills them or their parent: real
processes, real ``kill -9`` (tests/prepare/_held_run.py holds one part back so that
the kill lands at a known moment)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facekit.store import open_facekit

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(pattern: str, marks: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        hits = sorted(marks.glob(pattern))
        if hits:
            return hits[0]
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {pattern}: {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(f"no {pattern} after {timeout} s")


def _gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


class TestWorkerDeath:
    def test_kill_9_of_a_worker_fails_the_run_naming_the_part_and_resume_finishes(
            self, model_path, fixtures_dir, tmp_path, held_run):
        """The worker holding part 1 is killed as the out-of-memory killer would: the run
        must not wait for it forever; it exits 1 naming part 1, keeps the finished parts,
        and a resume completes the file."""
        out = tmp_path / "o.h5"
        args = ["prepare", "ck+", fixtures_dir / "ck+", out, "--workers", "2", "--part-size", "9",
                "--augment", "none", "-q"]
        run = held_run(tmp_path / "marks", 1, *args)
        held = _wait_for("holding-*-1", tmp_path / "marks", run)
        worker = int(held.name.split("-")[1])
        os.kill(worker, signal.SIGKILL)
        try:
            stdout, stderr = run.communicate(timeout=120)
        except subprocess.TimeoutExpired:       # the old pool waited here forever
            run.kill()
            pytest.fail("the run did not notice that its worker died")
        assert run.returncode == 1, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {out}.parts/part-00001-of-00003.h5: ")
        assert f"pid {worker}" in lines[0] and "killed by SIGKILL" in lines[0] and "--resume" in lines[0]
        assert "Traceback" not in stderr and stdout == ""
        parts = sorted(p.name for p in (tmp_path / "o.h5.parts").glob("part-*-of-*.h5"))
        assert "part-00000-of-00003.h5" in parts and "part-00001-of-00003.h5" not in parts   # finished: kept
        assert not out.exists()
        r = subprocess.run([sys.executable, "-m", "cli", *map(str, args), "--resume", "--json"],
                           capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        assert summary["parts"] == {"total": 3, "written": 3 - len(parts), "reused": len(parts)}
        assert summary["faces_aligned"] == 24
        assert sorted(p.name for p in (tmp_path / "o.h5.parts").iterdir()) == \
            [f"part-0000{i}-of-00003.h5" for i in range(3)]                 # the dead worker's temporary is gone
        with open_facekit(out) as f:
            assert f.n_faces == 24


class TestParentDeath:
    def test_workers_of_a_killed_parent_exit_quietly_and_leave_no_temporary(
            self, model_path, fixtures_dir, tmp_path, held_run):
        """kill -9 of the prepare process: its workers stop (no BrokenPipe traceback, no
        process left behind) and delete the part they were writing."""
        out = tmp_path / "o.h5"
        run = held_run(tmp_path / "marks", 1, "prepare", "ck+", fixtures_dir / "ck+", out, "--workers", "2",
                    "--part-size", "9", "--augment", "none", "-q")
        _wait_for("holding-*-1", tmp_path / "marks", run)
        workers = {int(p.name.split("-")[1]) for p in (tmp_path / "marks").glob("started-*")}
        os.kill(run.pid, signal.SIGKILL)
        (tmp_path / "marks" / "release").write_text("")     # the held worker would now finish its part
        run.wait(timeout=60)
        assert all(_gone(pid) for pid in workers), "a worker outlived its parent"
        stderr = run.stderr.read()           # the workers' stderr is this pipe too
        assert stderr == "", stderr
        assert not list((tmp_path / "o.h5.parts").glob("*.tmp-*"))

    def test_ctrl_c_prints_one_line_and_no_native_log(self, model_path, fixtures_dir, tmp_path, held_run):
        """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while a worker
        holds a part: exit 130 with one line, nothing from MediaPipe/TFLite or the workers."""
        for workers in ("1", "2"):
            marks = tmp_path / f"marks{workers}"
            out = tmp_path / f"o{workers}.h5"
            run = held_run(marks, 1, "prepare", "ck+", fixtures_dir / "ck+", out, "--workers", workers,
                           "--part-size", "9", "--augment", "none", "-q")
            _wait_for("holding-*-1", marks, run)
            os.killpg(run.pid, signal.SIGINT)
            stdout, stderr = run.communicate(timeout=120)
            assert run.returncode == 130, stderr
            assert stderr.splitlines() == [f"error: {out}: interrupted; finished parts are kept in {out}.parts; run the "
                                           "same command with --resume to continue"], stderr
            assert not list(Path(f"{out}.parts").glob("*.tmp-*")) and not Path(f"{out}.lock").exists()
