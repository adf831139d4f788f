import shutil
from pathlib import Path

import pytest

from facekit.prepare import PrepareConfig


@pytest.fixture
def ckplus_copy(fixtures_dir, tmp_path) -> Path:
    """A writable copy of the ck+ fixture tree."""
    dst = tmp_path / "ck+"
    shutil.copytree(fixtures_dir / "ck+", dst)
    return dst


@pytest.fixture
def make_config(model_path, tmp_path):
    def make(dataset, root, out="out.h5", **kw):
        kw.setdefault("progress", False)
        kw.setdefault("workers", 1)
        return PrepareConfig(dataset=dataset, root=Path(root), out=tmp_path / out, model=str(model_path), **kw)
    return make


@pytest.fixture
def held_run():
    """Start ``facekit`` through tests/prepare/_held_run.py (one part held back until
    ``MARKS/release`` exists): ``held_run(marks, hold, *facekit_args) -> Popen``. Each run
    is its own process group (SIGINT as a terminal sends it reaches all of it); at the end
    of the test every group is released and then killed, so a failing test leaves no
    process waiting for a release that never comes."""
    import os
    import signal
    import subprocess
    import sys

    script = Path(__file__).with_name("_held_run.py")
    root = Path(__file__).resolve().parents[2]
    runs: list[tuple[subprocess.Popen, Path]] = []

    def start(marks: Path, hold: int, *args: object) -> subprocess.Popen:
        marks.mkdir(exist_ok=True)
        proc = subprocess.Popen([sys.executable, str(script), str(marks), str(hold), "--", *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root,
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        runs.append((proc, marks))
        return proc

    yield start
    for proc, marks in runs:
        (marks / "release").write_text("")
    for proc, _ in runs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)      # the group: workers that outlived their parent too
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
