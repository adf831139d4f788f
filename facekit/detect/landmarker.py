"""Face landmarks with MediaPipe Face Landmarker (Tasks API, IMAGE mode).

MediaPipe stands in for CE-CLM (OpenFace), which the DE-GAN paper used. The
wrapper adds what dataset preparation needs:

* small inputs (48x48 crops such as CK+48 or FER2013) are upscaled and padded
  before detection, and landmarks are mapped back to input pixels;
* with several faces the **largest** (landmark bounding-box area) is returned;
* MediaPipe's native log lines are silenced and the task is always closed;
* results are read as numpy arrays from MediaPipe's C structs
  (:mod:`facekit.detect._results`; the public ``detect`` where that layout differs).
"""
from __future__ import annotations

import ctypes
import math
import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .._quiet import native_stderr_silenced
from ..errors import NoFaceError
from ..imageio import to_rgb
from ._results import array_detector
from .ibug68 import to_ibug68
from .weights import resolve_model_path, sha256_file

__all__ = ["Face", "Landmarker", "detect_landmarks"]


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        landmarks: ``(478, 3)`` float32; x, y in pixels of the input image, z in
            the same scale as x (MediaPipe's relative depth times image width).
    """

    landmarks: np.ndarray = field(repr=False)

    @property
    def landmarks68(self) -> np.ndarray:
        """``(68, 2)`` float32 iBUG-68 view (see :mod:`facekit.detect.ibug68`)."""
        return to_ibug68(self.landmarks[:, :2])

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` of the landmarks, pixels."""
        xy = self.landmarks[:, :2]
        x0, y0 = xy.min(0)
        x1, y1 = xy.max(0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return (x1 - x0) * (y1 - y0)


_LIVE: "weakref.WeakSet[Landmarker]" = weakref.WeakSet()
_HOOKED = False
_STARTED = False


def mediapipe_started() -> bool:
    """Whether this process has created a MediaPipe task (its thread pools and locks
    then make ``fork`` unsafe: a forked child can deadlock on them)."""
    return _STARTED


def _close_all_at_exit() -> None:
    for lm in list(_LIVE):
        try:
            lm.close()
        except Exception:  # interpreter is going down; nothing useful left to report
            pass


def _register_exit_hook() -> None:
    """Close unclosed landmarkers before Python stops the thread pools MediaPipe
    uses to close them (``atexit`` would run too late and print a traceback)."""
    global _HOOKED
    if not _HOOKED:
        register = getattr(threading, "_register_atexit", None)
        if register is not None:
            register(_close_all_at_exit)
        else:  # pragma: no cover - very old or exotic Pythons
            import atexit
            atexit.register(_close_all_at_exit)
        _HOOKED = True


def preload() -> None:
    """Import MediaPipe now (about 0.4 s: it imports matplotlib and sounddevice too).

    Called before forking worker processes, so that they inherit the imported
    modules instead of each importing them again. Importing starts no MediaPipe
    threads, so forking afterwards is safe (creating a task is not; see
    :func:`mediapipe_started`).
    """
    _mp()


def _mp():
    with native_stderr_silenced():
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    return mp, BaseOptions, vision


class Landmarker:
    """Reusable Face Landmarker; use as a context manager or call :meth:`close`.

    Args:
        model_path: ``face_landmarker.task``; ``None`` resolves it (argument,
            ``$FACEKIT_MODEL``, cache, download; see :mod:`facekit.detect.weights`).
        max_faces: faces MediaPipe may return; the largest is picked.
        min_detection_confidence, min_presence_confidence: MediaPipe thresholds.
        min_size: inputs whose shorter side is below this are upscaled (bicubic)
            to it before detection.
        pad: fraction of the (upscaled) size added as a black border on each
            side for small or tightly cropped inputs, so the face detector sees
            the whole face; also retried once when nothing is found.

    Not thread-safe; one instance per process or thread.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, *, max_faces: int = 4,
                 min_detection_confidence: float = 0.5, min_presence_confidence: float = 0.5,
                 min_size: int = 192, pad: float = 0.25) -> None:
        self.model_path = resolve_model_path(model_path)
        self.max_faces, self.min_size, self.pad = int(max_faces), int(min_size), float(pad)
        mp, BaseOptions, vision = _mp()
        self._mp = mp
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.IMAGE, num_faces=self.max_faces,
            min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_presence_confidence)
        with native_stderr_silenced():
            task = vision.FaceLandmarker.create_from_options(opts)
            # the first inference prints more native warnings; get them out of the way here,
            # and with it check the array fast path (public ``detect`` if it does not work)
            blank = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8))
            self._detect_arrays = array_detector(task)
            try:
                if self._detect_arrays is not None:
                    self._detect_arrays(blank)
            except (AttributeError, TypeError, ctypes.ArgumentError):
                self._detect_arrays = None
            if self._detect_arrays is None:
                task.detect(blank)
        self._task: Any = task
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, Landmarker._close_task, task)
        self._finalizer.atexit = False  # closed by _close_all_at_exit, while MediaPipe's threads still run
        global _STARTED
        _STARTED = True
        _LIVE.add(self)
        _register_exit_hook()

    @staticmethod
    def _close_task(task: Any) -> None:
        with native_stderr_silenced():
            task.close()

    @property
    def model_sha256(self) -> str:
        return sha256_file(self.model_path)

    def close(self) -> None:
        """Release the MediaPipe task (idempotent)."""
        self._finalizer()

    def __enter__(self) -> "Landmarker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ detection
    def _run(self, rgb: np.ndarray) -> list[np.ndarray]:
        if not self._finalizer.alive:
            raise RuntimeError("Landmarker is closed")
        h, w = rgb.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self._detect_arrays is not None:
            # float32 products, rounded once: the same values as the public path's below
            scale = np.array([w, h, w], np.float32)
            return [pts * scale for pts in self._detect_arrays(image)]
        result = self._task.detect(image)
        faces = []
        for pts in result.face_landmarks:
            arr = np.array([(p.x * w, p.y * h, p.z * w) for p in pts], dtype=np.float32)
            faces.append(arr)
        return faces

    def _prepare_input(self, rgb: np.ndarray, pad: float) -> tuple[np.ndarray, float, int]:
        h, w = rgb.shape[:2]
        scale = 1.0
        if min(h, w) < self.min_size:
            scale = self.min_size / min(h, w)
            rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        border = int(math.ceil(pad * max(rgb.shape[:2]))) if pad > 0 else 0
        if border:
            rgb = cv2.copyMakeBorder(rgb, border, border, border, border, cv2.BORDER_CONSTANT, value=0)
        return rgb, scale, border

    def detect_all(self, image: np.ndarray) -> list[Face]:
        """All faces found, largest first (overlapping duplicates removed).

        Args:
            image: ``(H, W)`` grayscale or ``(H, W, 3)`` RGB uint8.
        """
        rgb = to_rgb(np.asarray(image))
        small = min(rgb.shape[:2]) < self.min_size
        tries = [self.pad] if small else [0.0, self.pad]
        found: list[np.ndarray] = []
        for pad in tries:
            inp, scale, border = self._prepare_input(rgb, pad)
            found = self._run(inp)
            if found:
                for arr in found:
                    arr[:, :2] -= border
                    arr /= scale
                break
        faces = sorted((Face(a) for a in found), key=lambda f: f.area, reverse=True)
        kept: list[Face] = []
        for f in faces:  # MediaPipe can return the same face twice in IMAGE mode
            if all(_iou(f.bbox, k.bbox) < 0.5 for k in kept):
                kept.append(f)
        return kept

    def detect(self, image: np.ndarray, *, path: str | os.PathLike = "<array>") -> Face:
        """The largest face in ``image``.

        Raises:
            NoFaceError: nothing found (``path`` names the image in the message).
        """
        faces = self.detect_all(image)
        if not faces:
            raise NoFaceError(path, "no face found")
        return faces[0]


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect_landmarks(image: np.ndarray, model_path: str | os.PathLike | None = None) -> Face:
    """One-shot helper: the largest face in ``image``.

    Creates and closes a :class:`Landmarker` per call (about 60 ms); reuse a
    :class:`Landmarker` when processing many images.
    """
    with Landmarker(model_path) as lm:
        return lm.detect(image)
