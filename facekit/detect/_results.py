"""Face Landmarker results as numpy arrays, without one Python object per landmark.

MediaPipe 1.x's Tasks API is a ctypes binding: ``FaceLandmarker.detect`` runs the
C detector, then turns every one of the 478 landmarks of every face into a
``NormalizedLandmark`` dataclass, which the caller turns back into numbers.
On the 2-core VM of the benchmarks that conversion costs about 1 ms of a
14-15 ms JAFFE detection (8 interleaved passes over 213 images, median: 14.70
against 13.56 ms per image). :func:`array_detector` makes the same C call through the
task's own serialising dispatcher and copies ``x, y, z`` of each face with one
numpy view of the C array. The values are bit for bit the public path's
(``tests/detect/test_results.py`` checks).

It relies on private attributes of MediaPipe's task and structs. Where they are
not as expected (another MediaPipe version) :func:`array_detector` returns
``None`` and :class:`~facekit.detect.Landmarker` uses the public ``detect``.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable

import numpy as np

__all__ = ["array_detector"]

Detector = Callable[[Any], list[np.ndarray]]


def _fields(struct: type) -> dict[str, Any]:
    return {name: ctype for name, ctype, *_ in getattr(struct, "_fields_", ())}


def array_detector(task: Any) -> Detector | None:
    """A function ``mp.Image -> [(N, 3) float32 normalised x, y, z per face]`` for ``task``.

    Args:
        task: a ``mediapipe.tasks.python.vision.FaceLandmarker`` in IMAGE mode.

    Returns:
        The detector, or ``None`` when this MediaPipe does not have the private
        layout it needs (use ``task.detect`` then).
    """
    try:
        from mediapipe.tasks.python.vision import face_landmarker as fl
        lib, handle = task._lib, task._handle
        detect_c, close_c = lib.MpFaceLandmarkerDetectImage, lib.MpFaceLandmarkerCloseResult
        result_t = fl.MpFaceLandmarkerResultC
        point_t = fl.landmark_c_lib.MpNormalizedLandmarkC
    except (ImportError, AttributeError):
        return None
    result_f = _fields(result_t)
    points_t = getattr(result_f.get("face_landmarks"), "_type_", None)
    point_f = _fields(point_t)
    if (points_t is None or "face_landmarks_count" not in result_f
            or getattr(_fields(points_t).get("landmarks"), "_type_", None) is not point_t
            or "landmarks_count" not in _fields(points_t)
            or any(point_f.get(k) is not ctypes.c_float for k in "xyz")):
        return None
    x0 = point_t.x.offset
    if (point_t.y.offset, point_t.z.offset) != (x0 + 4, x0 + 8):
        return None
    size = ctypes.sizeof(point_t)
    xyz = np.dtype({"names": ["xyz"], "formats": [(np.float32, (3,))], "offsets": [x0], "itemsize": size})

    def detect(image: Any) -> list[np.ndarray]:
        result = result_t()
        detect_c(handle, image._image_ptr, None, ctypes.byref(result))
        try:
            faces = []
            for i in range(result.face_landmarks_count):
                points = result.face_landmarks[i]
                n = int(points.landmarks_count)
                if n == 0:
                    faces.append(np.zeros((0, 3), np.float32))
                    continue
                raw = (ctypes.c_char * (n * size)).from_address(ctypes.addressof(points.landmarks.contents))
                faces.append(np.frombuffer(raw, xyz, count=n)["xyz"].copy())  # copied before the close
        finally:
            close_c(ctypes.byref(result))
        return faces

    return detect
