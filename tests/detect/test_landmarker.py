import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data

from facekit.detect import Landmarker, detect_landmarks
from facekit.errors import NoFaceError


class TestLandmarker:
    def test_detects_478_points_inside_the_image(self, landmarker, face_image):
        face = landmarker.detect(face_image)
        assert face.landmarks.shape == (478, 3) and face.landmarks.dtype == np.float32
        x0, y0, x1, y1 = face.bbox
        assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
        assert face.landmarks68.shape == (68, 2)

    def test_small_grayscale_input_is_upscaled(self, landmarker, face_image):
        """A 48x48 grayscale crop (CK+48 / FER2013 size) is found, in input pixels."""
        big = landmarker.detect(face_image).landmarks68
        small = cv2.resize(cv2.cvtColor(face_image, cv2.COLOR_RGB2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
        pts = landmarker.detect(small).landmarks68
        assert pts[:, 0].max() <= 48 and pts[:, 1].max() <= 48
        # same face, same place: within 1.5 px of the scaled-down big-image points
        assert np.abs(pts - big * 48 / 256).mean() < 1.5

    def test_largest_face_is_picked(self, landmarker, face_image):
        canvas = np.zeros((300, 560, 3), np.uint8)
        canvas[20:276, 294:550] = face_image                                    # large face, right
        canvas[40:240, 10:210] = cv2.resize(face_image, (200, 200))            # smaller face, left
        faces = landmarker.detect_all(canvas)
        assert len(faces) == 2
        assert faces[0].area > faces[1].area
        assert landmarker.detect(canvas).bbox[0] > 294

    def test_no_face_names_the_file(self, landmarker):
        cat = skimage.data.chelsea()
        with pytest.raises(NoFaceError, match="cat.png: no face found"):
            landmarker.detect(cat, path="cat.png")
        with pytest.raises(NoFaceError):
            landmarker.detect(np.full((120, 120), 128, np.uint8))

    def test_closed_landmarker_refuses(self, model_path, face_image):
        lm = Landmarker(model_path)
        lm.close()
        lm.close()  # idempotent
        with pytest.raises(RuntimeError, match="closed"):
            lm.detect(face_image)

    def test_one_shot_helper(self, model_path, face_image):
        assert detect_landmarks(face_image, model_path).landmarks.shape == (478, 3)


class TestTerminalStaysClean:
    def test_no_native_log_lines_and_no_complaint_at_exit(self, model_path):
        """Creating, using and *not* closing a Landmarker prints nothing on stderr."""
        code = (
            "import numpy as np, skimage.data\n"
            "from facekit.detect import Landmarker\n"
            f"lm = Landmarker({str(model_path)!r})\n"
            "lm.detect(np.ascontiguousarray(skimage.data.astronaut()[0:256, 110:366]))\n"
            "print('ok')\n"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "ok"
        assert r.stderr == ""
