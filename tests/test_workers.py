"""facekit._workers: the start method of prepare's and analyze's workers, and what they share.

The no-hang tests run real processes: a parent that has used OpenCV's thread pool,
MediaPipe or both (as a notebook that ran ``detect`` or ``analyze`` has), then
``prepare`` and ``analyze`` with two workers. Each runs in its own session and is
killed, with its workers, when it does not finish in time.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from facekit import _workers

#: a parent whose OpenCV thread pool has threads (a forked child used to hang in cv2.setNumThreads)
_OPENCV_POOL = ("import cv2, numpy as np\n"
                "cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (2000, 2000, 3), np.uint8), "
                "(31, 31), 0)\n")


def _run(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -c code`` in its own session; on a timeout the whole session is killed and the
    test fails (a hang must not outlive the test)."""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail(f"did not finish in {timeout} s (a worker hangs)")
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _prepare(fixtures_dir, model_path, name: str) -> str:
    return ("from facekit.prepare import PrepareConfig, prepare\n"
            f"s = prepare(PrepareConfig(dataset='jaffe', root={str(fixtures_dir / 'jaffe')!r}, out={name!r}, "
            f"workers=2, augment='none', progress=False, model={str(model_path)!r}))\n"
            "print('prepare', s.workers, s.faces)\n")


class TestPoolContext:
    def test_fork_until_mediapipe_runs_here_then_forkserver(self, model_path):
        r = _run("from facekit._workers import pool_context\n"
                 "print(pool_context().get_start_method())\n"
                 "import facekit\n"
                 f"facekit.Landmarker({str(model_path)!r}).close()\n"
                 "print(pool_context().get_start_method())\n")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["fork", "forkserver"]

    def test_forks_happen_with_opencv_pool_stopped_and_restored(self):
        r = _run(_OPENCV_POOL +
                 "import os\n"
                 "from facekit._workers import pool_context\n"
                 "cv2.setNumThreads(3)\n"
                 "ctx = pool_context()\n"
                 "p = ctx.Process(target=lambda: (cv2.setNumThreads(2), os._exit(0)))\n"
                 "p.start(); p.join(60)\n"
                 "print(p.exitcode, cv2.getNumThreads())\n", timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["0", "3"]


class TestNoHang:
    """``facekit.prepare`` / ``analyze`` from a process that ran OpenCV, ``detect`` or ``analyze``."""

    def test_after_opencv_threads(self, fixtures_dir, model_path, tmp_path):
        r = _run(f"import os; os.chdir({str(tmp_path)!r})\n" + _OPENCV_POOL + _prepare(fixtures_dir, model_path, "a.h5")
                 + "import facekit\n"
                 f"df = facekit.analyze({str(fixtures_dir / 'video')!r}, workers=2, landmarker={str(model_path)!r})\n"
                 "print('analyze', df.attrs['facekit']['workers'], len(df))\n")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["prepare", "2", "11", "analyze", "2", "40"]      # two clips, two workers

    def test_after_detect_and_analyze(self, fixtures_dir, model_path, tmp_path):
        r = _run(f"import os; os.chdir({str(tmp_path)!r})\n"
                 "import facekit\n"
                 f"with facekit.Landmarker({str(model_path)!r}) as lm:\n"
                 f"    lm.detect(facekit.read_image({str(fixtures_dir / 'jaffe' / 'AA.HA1.1.tif')!r}))\n"
                 f"facekit.analyze({str(fixtures_dir / 'jaffe')!r}, workers=1, landmarker={str(model_path)!r})\n"
                 + _OPENCV_POOL + _prepare(fixtures_dir, model_path, "b.h5"))
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["prepare", "2", "11"]


class TestBatchedProgress:
    def test_counts_are_batched_and_none_is_lost(self, monkeypatch):
        clock = [0.0]
        monkeypatch.setattr(_workers.time, "monotonic", lambda: clock[0])
        sent = []
        b = _workers.BatchedProgress(sent.append, interval=0.1)
        for _ in range(7):
            b(1)
            clock[0] += 0.03               # ticks at 0, 0.03, ..., 0.18 s
        assert sent == [5]                 # one message once 0.1 s had passed, not five
        b.flush()
        b.flush()                          # nothing left: no empty message
        assert sent == [5, 2]


class TestOneOpenCVThread:
    def test_restores_the_callers_count(self):
        import cv2
        before = cv2.getNumThreads()
        t = _workers.OneOpenCVThread()
        assert cv2.getNumThreads() == 1
        t.restore()
        t.restore()
        assert cv2.getNumThreads() == before
