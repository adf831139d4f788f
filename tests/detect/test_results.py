import ctypes
import glob
from importlib.metadata import version

import cv2
import numpy as np
import pytest

from facekit.detect import Landmarker
from facekit.detect import _results
from facekit.imageio import read_image


def _both(lm: Landmarker, image: np.ndarray) -> tuple[list, list]:
    """Landmarks from the array path, then from the same landmarker on MediaPipe's public ``detect``."""
    fast = [f.landmarks for f in lm.detect_all(image)]
    saved, lm._detect_arrays = lm._detect_arrays, None
    try:
        public = [f.landmarks for f in lm.detect_all(image)]
    finally:
        lm._detect_arrays = saved
    return fast, public


class TestArrayDetector:
    def test_used_with_mediapipe_1(self, landmarker):
        if int(version("mediapipe").split(".")[0]) < 1:
            pytest.skip("older MediaPipe: the public path is used")
        assert landmarker._detect_arrays is not None

    def test_same_values_as_the_public_path(self, landmarker, face_image):
        small = cv2.resize(cv2.cvtColor(face_image, cv2.COLOR_RGB2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
        two = np.zeros((300, 560, 3), np.uint8)
        two[20:276, 294:550] = face_image
        two[40:240, 10:210] = cv2.resize(face_image, (200, 200))
        blank = np.full((120, 120), 128, np.uint8)
        for image, n in ((face_image, 1), (small, 1), (two, 2), (blank, 0)):
            fast, public = _both(landmarker, image)
            assert len(fast) == len(public) == n
            for a, b in zip(fast, public):
                assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (478, 3)
                np.testing.assert_array_equal(a, b)

    def test_same_values_on_jaffe(self, landmarker, jaffe_dir):
        for path in sorted(glob.glob(str(jaffe_dir / "*.tiff")))[:12]:
            fast, public = _both(landmarker, read_image(path))
            assert len(fast) == len(public) == 1
            np.testing.assert_array_equal(fast[0], public[0])

    def test_none_without_the_private_layout(self, monkeypatch):
        assert _results.array_detector(object()) is None

        class Task:                    # has the attributes, but the point struct changed
            _lib = type("Lib", (), {"MpFaceLandmarkerDetectImage": None,
                                    "MpFaceLandmarkerCloseResult": None})()
            _handle = None

        from mediapipe.tasks.python.vision import face_landmarker as fl
        if not hasattr(fl, "landmark_c_lib"):
            pytest.skip("older MediaPipe")
        assert _results.array_detector(Task()) is not None

        class Point(ctypes.Structure):
            _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double), ("z", ctypes.c_double)]

        monkeypatch.setattr(fl.landmark_c_lib, "MpNormalizedLandmarkC", Point)
        assert _results.array_detector(Task()) is None

    def test_landmarker_falls_back_when_the_fast_path_fails(self, model_path, face_image, monkeypatch):
        def broken(task):
            def detect(image):
                raise AttributeError("no _image_ptr")
            return detect

        monkeypatch.setattr("facekit.detect.landmarker.array_detector", broken)
        with Landmarker(model_path) as lm:
            assert lm._detect_arrays is None
            assert lm.detect(face_image).landmarks.shape == (478, 3)

    def test_landmarker_without_fast_path(self, model_path, face_image, monkeypatch):
        monkeypatch.setattr("facekit.detect.landmarker.array_detector", lambda task: None)
        with Landmarker(model_path) as lm:
            assert lm.detect(face_image).landmarks.shape == (478, 3)


class TestArrayDetectorExtras:
    """Blendshapes, matrices and VIDEO mode through the array path equal MediaPipe's public results."""

    def _public(self, model_path, **kw):
        lm = Landmarker(model_path, **kw)
        lm._detect_arrays = None
        return lm

    def test_extras_same_as_public_path(self, model_path, face_image):
        two = np.zeros((300, 560, 3), np.uint8)
        two[20:276, 294:550] = face_image
        two[40:240, 10:210] = cv2.resize(face_image, (200, 200))
        with Landmarker(model_path, pose=True, blendshapes=True) as fast, \
                self._public(model_path, pose=True, blendshapes=True) as public:
            assert fast._detect_arrays is not None
            for image, n in ((face_image, 1), (two, 2), (np.full((90, 90), 128, np.uint8), 0)):
                a, b = fast.detect_all(image), public.detect_all(image)
                assert len(a) == len(b) == n
                for fa, fb in zip(a, b):
                    np.testing.assert_array_equal(fa.landmarks, fb.landmarks)
                    np.testing.assert_array_equal(fa.matrix, fb.matrix)
                    np.testing.assert_array_equal(fa.blendshape_scores, fb.blendshape_scores)
                    assert fa.score is fb.score is None

    def test_video_mode_same_as_public_path(self, model_path, face_image):
        frames = [np.roll(face_image, 2 * i, axis=1) for i in range(5)]
        with Landmarker(model_path, mode="video", max_faces=1, pose=True) as fast, \
                self._public(model_path, mode="video", max_faces=1, pose=True) as public:
            assert fast._detect_arrays is not None
            for i, f in enumerate(frames):
                a, b = fast.detect_for_video(f, 40 * i), public.detect_for_video(f, 40 * i)
                np.testing.assert_array_equal(a.landmarks, b.landmarks)
                np.testing.assert_array_equal(a.matrix, b.matrix)

    def test_raw_faces_empty_extras_without_request(self, landmarker, face_image):
        import mediapipe as mp
        raw = landmarker._detect_arrays(mp.Image(image_format=mp.ImageFormat.SRGB, data=face_image))
        assert len(raw.landmarks) == 1 and raw.blendshapes == [] and raw.matrices == [] and raw.presence == [None]

    def test_none_when_the_extras_layout_differs(self, landmarker, monkeypatch):
        from mediapipe.tasks.python.vision import face_landmarker as fl
        if not hasattr(fl, "matrix_c_lib"):
            pytest.skip("older MediaPipe")

        class Matrix(ctypes.Structure):
            _fields_ = [("rows", ctypes.c_int64), ("cols", ctypes.c_int64), ("data", ctypes.c_void_p)]

        task = landmarker._task
        assert _results.array_detector(task, extras=True) is not None
        monkeypatch.setattr(fl.matrix_c_lib, "MpMatrixC", Matrix)
        assert _results.array_detector(task, extras=True) is None
        assert _results.array_detector(task) is not None      # landmarks alone keep the fast path
