"""The public surface: README example, lazy imports, no torch in facekit, what a wheel holds."""
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import cv2

ROOT = Path(__file__).resolve().parents[1]


class TestReadmeExample:
    def test_five_line_alignment_runs(self, model_path, face_image, tmp_path, monkeypatch):
        text = (ROOT / "README.md").read_text()
        section = text.split("## Library: align a face in five lines", 1)[1]
        code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("FACEKIT_MODEL", str(model_path))
        cv2.imwrite("face.jpg", face_image[..., ::-1])
        ns: dict = {}
        exec(compile(code, "README.md", "exec"), ns)
        aligned = ns["aligned"]
        assert aligned.image.shape == (112, 112, 3)
        assert aligned.landmarks.shape == (478, 3) and aligned.matrix.shape == (2, 3)


class TestImports:
    def test_import_facekit_is_light(self):
        code = ("import sys, facekit, facekit.align, facekit.frames, facekit.datasets, facekit.analysis\n"
                "print(sorted(m for m in ('torch', 'h5py', 'mediapipe', 'degan', 'pandas', 'pyarrow')"
                " if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "[]"

    def test_prepare_never_imports_torch(self):
        code = ("import sys, facekit.prepare, facekit.split, facekit.inspect, facekit_cli.facekit; "
                "print('torch' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "False"

    def test_lazy_attributes(self):
        import facekit
        assert callable(facekit.align_face) and callable(facekit.select_frames)
        assert "Landmarker" in dir(facekit)
        from facekit.analysis import analyze
        assert facekit.analyze is analyze and callable(facekit.read_table)


class TestWheel:
    def test_cli_is_packaged_as_facekit_cli(self, tmp_path):
        """The cli/ folder goes into the wheel as facekit_cli (no top-level ``cli`` package), the console
        scripts point there, and the installed package runs with ``python -m``."""
        res = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                              "-q", "-w", str(tmp_path / "dist")], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot build a wheel here: {res.stderr.strip()[-300:]}")
        (wheel,) = (tmp_path / "dist").glob("*.whl")
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
            entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
        assert tops == {"facekit", "degan", "facekit_cli"}
        assert {"facekit_cli/degan.py", "facekit_cli/__main__.py", "degan/train/fold.py"} <= set(names)
        for line in ("facekit = facekit_cli.facekit:main", "degan-train = facekit_cli.degan:train_main",
                     "degan-eval = facekit_cli.degan:eval_main", "degan-synthesize = facekit_cli.degan:synthesize_main"):
            assert line in entry_points
        target = tmp_path / "site"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                       check=True, capture_output=True)
        env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable, "-m", "facekit_cli.degan", "train", "--help"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert out.returncode == 0 and "--method [degan|baseline]" in out.stdout, out.stderr
        where = subprocess.run([sys.executable, "-c", "import facekit_cli; print(facekit_cli.__file__)"], cwd=tmp_path,
                               env=env, capture_output=True, text=True).stdout
        assert where.startswith(str(target))
