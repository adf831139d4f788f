"""The public surface: README example, lazy imports, no torch in facekit."""
import re
import subprocess
import sys
from pathlib import Path

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
        code = "import sys, facekit.prepare, facekit.split, facekit.inspect, cli.facekit; print('torch' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "False"

    def test_lazy_attributes(self):
        import facekit
        assert callable(facekit.align_face) and callable(facekit.select_frames)
        assert "Landmarker" in dir(facekit)
        from facekit.analysis import analyze
        assert facekit.analyze is analyze and callable(facekit.read_table)
