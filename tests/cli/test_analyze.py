"""Tests of ``facekit analyze`` (cli/_analyze.py)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import facekit
from cli.facekit import main
from facekit.analysis import read_table

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(model_path, monkeypatch):
    monkeypatch.setenv("FACEKIT_MODEL", str(model_path))

    def invoke(*args):
        return CliRunner().invoke(main, ["analyze", *map(str, args)], catch_exceptions=False)
    return invoke


def _cli(*args, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Ctrl-C as at a terminal, also when these tests run in the background (where SIGINT is ignored)
    return subprocess.Popen([sys.executable, "-m", "cli", "analyze", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


def _clip_copies(fixtures_dir: Path, folder: Path, n: int) -> Path:
    """``n`` copies of each fixture clip (long enough to interrupt a run)."""
    folder.mkdir(parents=True)
    for i in range(n):
        shutil.copy(fixtures_dir / "video/happy/S001-talk.avi", folder / f"a{i:02d}.avi")
        shutil.copy(fixtures_dir / "video/surprise/S002-talk.mp4", folder / f"b{i:02d}.mp4")
    return folder


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _workers(pid: int) -> list[int]:
    """The analyze worker processes of the run ``pid``: its forked children, or the children of
    its forkserver (multiprocessing's resource tracker left out)."""
    out = []
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"forkserver" in cmdline:
            out += _children(child)
        elif b"resource_tracker" not in cmdline:
            out.append(child)
    return out


def _wait_for(pattern: str, folder: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    t0 = time.monotonic()
    while not list(folder.glob(pattern)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, "no part was finished in time"
        time.sleep(0.05)


class TestAnalyzeCommand:
    def test_run_and_summary(self, run, fixtures_dir, tmp_path):
        r = run(fixtures_dir / "video", fixtures_dir / "jaffe" / "AA.HA1.1.tif", "-o", tmp_path / "f.csv", "-q",
                "--workers", "1")
        assert r.exit_code == 0, r.output
        for text in ("wrote", "3: 1 images, 2 videos, 0 unreadable", "41 rows, 36 with a face, 5 without",
                     "frames/s", "no face found"):
            assert text in r.output
        df = read_table(tmp_path / "f.csv")
        assert len(df) == 41 and not (tmp_path / "f.csv.parts").exists()

    def test_json(self, run, fixtures_dir, tmp_path):
        r = run(fixtures_dir / "video", "-o", tmp_path / "f.csv", "--json", "-q", "--every", "4", "--mesh")
        s = json.loads(r.output)
        assert s["complete"] and s["frames"] == 10 and s["videos"] == 2 and s["frames_per_second"] > 0
        assert "mesh_x_0" in read_table(tmp_path / "f.csv").columns

    def test_aligned(self, run, fixtures_dir, tmp_path):
        r = run(fixtures_dir / "video/surprise", "-o", tmp_path / "f.csv", "-q", "--aligned", tmp_path / "al",
                "--face-size", "48", "--gray")
        assert r.exit_code == 0, r.output
        assert len(list((tmp_path / "al").glob("*.png"))) == 22

    @pytest.mark.parametrize("args, message", [
        (("{tmp}/nope.mp4", "-o", "{tmp}/f.csv"), "error: {tmp}/nope.mp4: does not exist"),
        (("{fx}/video", "-o", "{tmp}/f.xlsx"), "error: {tmp}/f.xlsx: unknown table format '.xlsx'"),
        (("{fx}/video", "-o", "{tmp}/f.csv", "--resume", "--force"), "error: --resume and --force exclude"),
        (("{fx}/video", "-o", "{tmp}/f.csv", "--landmarker", "{tmp}/m.task"), "m.task does not exist"),
        (("{tmp}", "-o", "{tmp}/f.csv"), "no images or videos found"),
    ])
    def test_bad_input_exits_2_with_one_line(self, run, fixtures_dir, tmp_path, args, message):
        r = run(*(a.format(fx=fixtures_dir, tmp=tmp_path) for a in args))
        assert r.exit_code == 2
        assert message.format(fx=fixtures_dir, tmp=tmp_path) in r.output
        assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
        assert not (tmp_path / "f.csv").exists()

    def test_parquet_without_pyarrow(self, run, fixtures_dir, tmp_path, monkeypatch):
        monkeypatch.setattr("facekit.analysis.run.parquet_available", lambda: False)
        r = run(fixtures_dir / "video", "-o", tmp_path / "f.parquet")
        assert r.exit_code == 2 and "f.parquet: writing Parquet needs pyarrow" in r.output

    def test_existing_output(self, run, fixtures_dir, tmp_path):
        args = (fixtures_dir / "video/happy", "-o", tmp_path / "f.csv", "-q")
        assert run(*args).exit_code == 0
        r = run(*args)
        assert r.exit_code == 2 and "already exists; use --force" in r.output
        assert run(*args, "--force").exit_code == 0

    def test_model_option_named_in_the_message(self, run, fixtures_dir, tmp_path, monkeypatch):
        monkeypatch.delenv("FACEKIT_MODEL")
        monkeypatch.setenv("FACEKIT_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr("facekit.detect.weights._download",
                            lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
        r = run(fixtures_dir / "video", "-o", tmp_path / "f.csv")
        assert r.exit_code == 2 and "--landmarker PATH" in r.output and "--model" not in r.output

    def test_nothing_readable_exits_1(self, run, tmp_path):
        (tmp_path / "a.mp4").write_bytes(b"")
        (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
        r = run(tmp_path / "a.mp4", tmp_path / "b.jpg", "-o", tmp_path / "f.csv", "-q")
        assert r.exit_code == 1 and "none of the 2 inputs could be read" in r.output
        assert read_table(tmp_path / "f.csv")["reason"].str.len().gt(0).all()     # the rows say why

    def test_write_failure_exits_1(self, run, fixtures_dir, tmp_path, monkeypatch):
        def full(*a, **k):
            raise OSError(28, "No space left on device", str(tmp_path / "al" / "x.png"))
        monkeypatch.setattr("facekit.analysis._worker.UnitProcessor._aligned", full)
        r = run(fixtures_dir / "video/happy", "-o", tmp_path / "f.csv", "-q", "--aligned", tmp_path / "al",
                "--workers", "1")
        assert r.exit_code == 1 and "x.png: No space left on device" in r.output and "--resume" in r.output
        assert "Traceback" not in r.output and not (tmp_path / "f.csv").exists()


class TestInterruptions:
    """Real processes: what a kill -9 or a Ctrl-C leaves is readable, and --resume completes it."""

    def _reference(self, fixtures_dir, model_path) -> dict[str, pd.DataFrame]:
        df = facekit.analyze(fixtures_dir / "video", landmarker=model_path)
        return {Path(name).suffix: rows.reset_index(drop=True) for name, rows in df.groupby("input")}

    def _check(self, df: pd.DataFrame, reference: dict[str, pd.DataFrame], n: int) -> None:
        assert df["input"].nunique() == 2 * n
        for name, rows in df.groupby("input", sort=False):
            ref = reference[Path(name).suffix]
            rows = rows.reset_index(drop=True)
            assert rows["frame"].tolist() == ref["frame"].tolist()        # no gap, no duplicate
            pd.testing.assert_frame_equal(rows.drop(columns="input"), ref.drop(columns="input"))

    def test_kill_9_then_resume(self, fixtures_dir, model_path, tmp_path):
        clips = _clip_copies(fixtures_dir, tmp_path / "clips", 6)
        out = tmp_path / "f.csv"
        parts = tmp_path / "f.csv.parts"
        proc = _cli(clips, "-o", out, "--workers", "1", "-q", "--landmarker", model_path)
        _wait_for("*.done.json", parts, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert not out.exists()
        finished = sorted(parts.glob("*.csv"))
        assert finished and all(len(read_table(p)) > 0 for p in finished)   # what was written reads
        r = subprocess.run([sys.executable, "-m", "cli", "analyze", str(clips), "-o", str(out), "--workers", "1",
                            "-q", "--resume", "--json", "--landmarker", str(model_path)], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        assert s["complete"] and s["units"]["reused"] >= 1 and s["frames"] == 6 * 40
        self._check(read_table(out), self._reference(fixtures_dir, model_path), 6)

    def test_ctrl_c_then_resume(self, fixtures_dir, model_path, tmp_path):
        """Ctrl-C while units are left: the workers are paused (SIGSTOP) from the first finished
        unit until the signal has been sent, so the run cannot end before it arrives."""
        if not Path("/proc").is_dir():
            pytest.skip("needs /proc to find the worker processes")
        clips = _clip_copies(fixtures_dir, tmp_path / "clips", 8)
        out = tmp_path / "f.csv"
        proc = _cli(clips, "-o", out, "--workers", "2", "-q", "--landmarker", model_path)
        _wait_for("*.done.json", tmp_path / "f.csv.parts", proc)
        workers = _workers(proc.pid)
        for w in workers:
            os.kill(w, signal.SIGSTOP)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        for w in workers:
            try:
                os.kill(w, signal.SIGCONT)
            except ProcessLookupError:
                pass
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert stderr.strip().splitlines()[-1] == (f"error: {out}: interrupted; finished inputs are kept in "
                                                   f"{out}.parts; run the same command with --resume to continue")
        assert "Traceback" not in stderr
        r = subprocess.run([sys.executable, "-m", "cli", "analyze", str(clips), "-o", str(out), "-q", "--resume",
                            "--landmarker", str(model_path)], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr
        self._check(read_table(out), self._reference(fixtures_dir, model_path), 8)

    def test_a_dying_worker_fails_the_run_then_resume(self, fixtures_dir, model_path, tmp_path):
        """A worker killed (as the OOM killer would) ends the run with one error line and exit 1,
        not a hang; the finished parts stay for --resume."""
        if not Path("/proc").is_dir():
            pytest.skip("needs /proc to find the worker processes")
        clips = _clip_copies(fixtures_dir, tmp_path / "clips", 4)
        out = tmp_path / "f.csv"
        proc = _cli(clips, "-o", out, "--workers", "2", "-q", "--landmarker", model_path)
        t0 = time.monotonic()
        while len(_workers(proc.pid)) < 2 or not list((tmp_path / "f.csv.parts").glob("*.csv")):
            assert proc.poll() is None and time.monotonic() - t0 < 240, proc.communicate()
            time.sleep(0.05)
        os.kill(_workers(proc.pid)[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1, stderr
        (line,) = stderr.strip().splitlines()
        assert line.startswith("error: a worker process died") and "--resume" in line
        parts = tmp_path / "f.csv.parts"
        assert not out.exists() and (parts / "run.json").is_file() and not (parts / "lock").exists()
        r = subprocess.run([sys.executable, "-m", "cli", "analyze", str(clips), "-o", str(out), "-q", "--resume",
                            "--landmarker", str(model_path)], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr
        self._check(read_table(out), self._reference(fixtures_dir, model_path), 4)


class TestTerminal:
    def test_only_progress_and_summary(self, fixtures_dir, model_path, tmp_path):
        """Bad files, two workers, a progress bar: no native log line, no warning, no traceback."""
        inputs = _clip_copies(fixtures_dir, tmp_path / "in", 1)
        avi = (fixtures_dir / "video/happy/S001-talk.avi").read_bytes()
        (inputs / "cut.avi").write_bytes(avi[:len(avi) * 2 // 3])                # truncated video
        (inputs / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))  # FFmpeg complains
        (inputs / "empty.mov").write_bytes(b"")
        png = (fixtures_dir / "folder/happy/S001_001_00000004.png").read_bytes()
        (inputs / "half.png").write_bytes(png[:len(png) // 2])                   # libpng complains
        shutil.copy(fixtures_dir / "jaffe/AA.HA1.1.tif", inputs / "still")
        proc = _cli(inputs, "-o", tmp_path / "f.csv", "--workers", "2", "--landmarker", model_path)
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
        assert stdout.startswith("wrote ") and "warning" in stdout
        lines = [ln for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
        assert lines and all(ln.startswith("analyze -> f.csv:") for ln in lines), lines
        assert "frame/s" in lines[-1] and "100%" in lines[-1]
        assert np.isfinite(read_table(tmp_path / "f.csv")["x_0"]).any()
