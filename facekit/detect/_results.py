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

The same reader serves VIDEO mode (``MpFaceLandmarkerDetectForVideo``, the C call
behind ``detect_for_video``) and, when asked (``extras=True``), copies the 52
blendshape scores and the 4x4 facial transformation matrix of each face, again
without MediaPipe's per-item Python objects.

It relies on private attributes of MediaPipe's task and structs. Where they are
not as expected (another MediaPipe version) :func:`array_detector` returns
``None`` and :class:`~facekit.detect.Landmarker` uses the public ``detect``
(or ``detect_for_video``).
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, NamedTuple

import numpy as np

__all__ = ["array_detector", "RawFaces", "N_BLENDSHAPES"]

#: blendshape scores per face (MediaPipe's category indices 0..51)
N_BLENDSHAPES = 52


class RawFaces(NamedTuple):
    """One detection call's faces, in MediaPipe's order.

    ``landmarks``: ``(N, 3)`` float32 normalised x, y, z per face; ``presence``:
    the mean landmark presence per face, or ``None`` where MediaPipe sets none;
    ``blendshapes``: ``(52,)`` float32 per face and ``matrices``: ``(4, 4)``
    float32 per face, both empty lists unless the task was created to output them.
    """

    landmarks: list[np.ndarray]
    presence: list[float | None]
    blendshapes: list[np.ndarray]
    matrices: list[np.ndarray]


Detector = Callable[..., RawFaces]


def _fields(struct: type) -> dict[str, Any]:
    return {name: ctype for name, ctype, *_ in getattr(struct, "_fields_", ())}


def _record(struct: type, names: dict[str, tuple[str, Any]]) -> np.dtype | None:
    """A numpy dtype viewing the fields ``names`` (numpy name -> (C field, numpy type))
    of an array of ``struct``; ``None`` if a field is missing or of another C type."""
    fields = _fields(struct)
    ctype_of = {np.float32: ctypes.c_float, np.int32: ctypes.c_int, np.bool_: ctypes.c_bool}
    out_names, formats, offsets = [], [], []
    for out, (c_name, np_type) in names.items():
        if fields.get(c_name) is not ctype_of[np_type]:
            return None
        out_names.append(out)
        formats.append(np_type)
        offsets.append(getattr(struct, c_name).offset)
    return np.dtype({"names": out_names, "formats": formats, "offsets": offsets,
                     "itemsize": ctypes.sizeof(struct)})


def _extras_layout(fl: Any, result_f: dict[str, Any]) -> tuple[np.dtype, type] | None:
    """``(category dtype, matrix struct)`` when blendshapes and matrices have the layout read below."""
    try:
        categories_t = fl.category_c_lib.MpCategoriesC
        category_t = fl.category_c_lib.MpCategoryC
        matrix_t = fl.matrix_c_lib.MpMatrixC
    except AttributeError:
        return None
    if (getattr(result_f.get("face_blendshapes"), "_type_", None) is not categories_t
            or getattr(result_f.get("facial_transformation_matrixes"), "_type_", None) is not matrix_t
            or "face_blendshapes_count" not in result_f or "facial_transformation_matrixes_count" not in result_f
            or getattr(_fields(categories_t).get("categories"), "_type_", None) is not category_t
            or "categories_count" not in _fields(categories_t)):
        return None
    mf = _fields(matrix_t)
    if (mf.get("rows") is not ctypes.c_uint32 or mf.get("cols") is not ctypes.c_uint32
            or getattr(mf.get("data"), "_type_", None) is not ctypes.c_float):
        return None
    category = _record(category_t, {"index": ("index", np.int32), "score": ("score", np.float32)})
    return None if category is None else (category, matrix_t)


def array_detector(task: Any, *, video: bool = False, extras: bool = False) -> Detector | None:
    """A function ``(mp.Image[, timestamp_ms]) -> RawFaces`` for ``task``.

    Args:
        task: a ``mediapipe.tasks.python.vision.FaceLandmarker``.
        video: the task runs in VIDEO mode; the function then takes the frame's
            timestamp in milliseconds as its second argument.
        extras: also copy blendshapes and transformation matrices (the task must
            have been created with ``output_face_blendshapes`` /
            ``output_facial_transformation_matrixes`` for there to be any).

    Returns:
        The detector, or ``None`` when this MediaPipe does not have the private
        layout it needs (use the public ``detect`` / ``detect_for_video`` then).
    """
    try:
        from mediapipe.tasks.python.vision import face_landmarker as fl
        lib, handle = task._lib, task._handle
        detect_c = lib.MpFaceLandmarkerDetectForVideo if video else lib.MpFaceLandmarkerDetectImage
        close_c = lib.MpFaceLandmarkerCloseResult
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
    has_presence = point_f.get("has_presence") is ctypes.c_bool and point_f.get("presence") is ctypes.c_float
    if has_presence:
        xyz = np.dtype({"names": ["xyz", "has_presence", "presence"],
                        "formats": [(np.float32, (3,)), np.bool_, np.float32],
                        "offsets": [x0, point_t.has_presence.offset, point_t.presence.offset], "itemsize": size})
    else:
        xyz = np.dtype({"names": ["xyz"], "formats": [(np.float32, (3,))], "offsets": [x0], "itemsize": size})
    layout = _extras_layout(fl, result_f) if extras else None
    if extras and layout is None:
        return None
    category_dtype, category_size = (layout[0], layout[0].itemsize) if layout else (None, 0)

    def read_extras(result: Any, out: RawFaces) -> None:
        for i in range(result.face_blendshapes_count):
            cats = result.face_blendshapes[i]
            scores = np.full(N_BLENDSHAPES, np.nan, np.float32)
            n = int(cats.categories_count)
            if n:
                raw = (ctypes.c_char * (n * category_size)).from_address(ctypes.addressof(cats.categories.contents))
                rec = np.frombuffer(raw, category_dtype, count=n)
                ok = (rec["index"] >= 0) & (rec["index"] < N_BLENDSHAPES)
                scores[rec["index"][ok]] = rec["score"][ok]
            out.blendshapes.append(scores)
        for i in range(result.facial_transformation_matrixes_count):
            m = result.facial_transformation_matrixes[i]
            rows, cols = int(m.rows), int(m.cols)
            if not m.data or rows == 0 or cols == 0:
                out.matrices.append(np.full((4, 4), np.nan, np.float32))
                continue
            # column-major in C; copied before the close
            out.matrices.append(np.ctypeslib.as_array(m.data, shape=(cols, rows)).T.copy())

    def detect(image: Any, timestamp_ms: int | None = None) -> RawFaces:
        result = result_t()
        if video:
            detect_c(handle, image._image_ptr, None, int(timestamp_ms), ctypes.byref(result))
        else:
            detect_c(handle, image._image_ptr, None, ctypes.byref(result))
        out = RawFaces([], [], [], [])
        try:
            for i in range(result.face_landmarks_count):
                points = result.face_landmarks[i]
                n = int(points.landmarks_count)
                if n == 0:
                    out.landmarks.append(np.zeros((0, 3), np.float32))
                    out.presence.append(None)
                    continue
                raw = (ctypes.c_char * (n * size)).from_address(ctypes.addressof(points.landmarks.contents))
                rec = np.frombuffer(raw, xyz, count=n)
                out.landmarks.append(rec["xyz"].copy())  # copied before the close
                present = rec["has_presence"] if has_presence else None
                out.presence.append(float(rec["presence"][present].mean())
                                    if present is not None and present.any() else None)
            if layout is not None:
                read_extras(result, out)
        finally:
            close_c(ctypes.byref(result))
        return out

    return detect
