"""Shared pytest fixtures.

The Face Landmarker model comes from ``FACEKIT_MODEL`` (``.ci/run`` sets it to
``../shared/models/face_landmarker.task``); tests never download it. Real
datasets come from ``FACEKIT_SHARED`` (default ``../shared`` next to the
project); tests that need them are skipped with a reason when absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED = Path(os.environ.get("FACEKIT_SHARED", ROOT.parent / "shared"))


def _model() -> Path | None:
    env = os.environ.get("FACEKIT_MODEL")
    for cand in (env, SHARED / "models" / "face_landmarker.task"):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


MODEL = _model()
if MODEL is not None:
    os.environ.setdefault("FACEKIT_MODEL", str(MODEL))


@pytest.fixture(scope="session")
def model_path() -> Path:
    """Path of face_landmarker.task (skips the test when it is not available)."""
    if MODEL is None:
        pytest.skip("face_landmarker.task not found: set FACEKIT_MODEL")
    return MODEL


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def _dataset(*parts: str) -> Path:
    d = SHARED.joinpath("datasets", *parts)
    if not d.is_dir():
        pytest.skip(f"{parts[-1]} not found at {d}")
    return d


@pytest.fixture(scope="session")
def jaffe_dir() -> Path:
    """../shared/datasets/jaffe/jaffe: 213 JAFFE images (skips when absent)."""
    return _dataset("jaffe", "jaffe")


@pytest.fixture(scope="session")
def ckplus48_dir() -> Path:
    """../shared/datasets/ckplus48/CK+48: 981 CK+48 crops (skips when absent)."""
    return _dataset("ckplus48", "CK+48")


@pytest.fixture(scope="session")
def landmarker(model_path):
    """One shared facekit Landmarker for the session."""
    from facekit.detect import Landmarker
    with Landmarker(model_path) as lm:
        yield lm


@pytest.fixture(scope="session")
def face_image():
    """(256, 256, 3) uint8 RGB: the face in scikit-image's astronaut photo."""
    import numpy as np
    import skimage.data
    return np.ascontiguousarray(skimage.data.astronaut()[0:256, 110:366])


class Unprivileged:
    """Runs commands so that file permissions apply: as ``nobody`` when the tests run as
    root (root reads a ``chmod 000`` file anyway), as the current user otherwise.

    ``dir`` is a fresh folder everyone may write to, for the files such a run needs.
    """

    def __init__(self, base: Path) -> None:
        import tempfile
        self.dir = Path(tempfile.mkdtemp(prefix="facekit-unpriv-", dir=base))
        self.dir.chmod(0o777)
        self.as_root = os.geteuid() == 0
        (self.dir / "mpl").mkdir(mode=0o777)
        (self.dir / "mpl").chmod(0o777)

    def _interpreter(self, env: dict[str, str]) -> str:
        """This Python, or, when ``nobody`` may not run it (a venv made from an interpreter
        under /root), a system one of the same version with this environment's packages."""
        import subprocess
        import sys
        import sysconfig
        probe = dict(user=65534, group=65534, extra_groups=[], capture_output=True)
        try:
            if subprocess.run([sys.executable, "-c", "import facekit"], cwd=ROOT, env=env, **probe).returncode == 0:
                return sys.executable
        except PermissionError:
            pass
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"]])
        exe = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
        try:
            check = subprocess.run([exe, "-c", "import facekit, click, cv2, h5py"], cwd=ROOT, env=env, text=True,
                                   **probe)
            why = check.stderr.strip().splitlines()[-1:] if check.returncode else None
        except OSError as e:
            why = [str(e)]
        if why is not None:
            pytest.skip(f"user nobody cannot run this environment's Python with its packages (make {sys.prefix} "
                        f"and the folders above it readable to others): {why}")
        return exe

    def run(self, args: list[str], **kw):
        import subprocess
        import sys
        env = {**os.environ, "MPLCONFIGDIR": str(self.dir / "mpl"), "HOME": str(self.dir)}
        if MODEL is not None:
            env["FACEKIT_MODEL"] = str(MODEL)
        exe = sys.executable
        if self.as_root:
            kw.update(user=65534, group=65534, extra_groups=[])
            exe = self._interpreter(env)
        kw.setdefault("timeout", 300)
        return subprocess.run([exe, *args], capture_output=True, text=True, env=env, cwd=ROOT, **kw)

    def python(self, code: str):
        return self.run(["-c", code])

    def cli(self, *args: str):
        return self.run(["-m", "cli", *map(str, args)])


@pytest.fixture
def unprivileged(tmp_path_factory):
    """:class:`Unprivileged` (file permissions are enforced for the commands it runs)."""
    base = Path("/tmp") if os.geteuid() == 0 else tmp_path_factory.mktemp("unpriv")
    u = Unprivileged(base)
    yield u
    import shutil
    import stat
    for p in u.dir.rglob("*"):      # give back permissions taken away by the test, then delete
        try:
            p.chmod(p.stat().st_mode | stat.S_IRWXU)
        except OSError:
            pass
    shutil.rmtree(u.dir, ignore_errors=True)


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (for stale locks and temporaries)."""
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid
