"""Face landmarks with MediaPipe Face Landmarker (Tasks API, IMAGE or VIDEO mode).

MediaPipe stands in for CE-CLM (OpenFace), which the DE-GAN paper used. The
wrapper adds what dataset preparation and per-frame analysis need:

* small inputs (48x48 crops such as CK+48 or FER2013) are upscaled and padded
  before detection, and landmarks are mapped back to input pixels;
* with several faces the **largest** (landmark bounding-box area) is first;
* head pose (the facial transformation matrix) and the 52 blendshapes are
  computed only when asked for (``pose=True``, ``blendshapes=True``): each
  costs MediaPipe extra work (``bench/analyze.py`` measures how much);
* ``mode="video"`` runs MediaPipe's VIDEO mode (:meth:`Landmarker.detect_for_video`,
  monotonic timestamps): after the first frame the face is tracked from the
  previous frame's landmarks and the face detector runs only when the track is
  lost, or while fewer than ``max_faces`` faces are tracked (so ``max_faces=1``
  for speed);
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
from typing import Any

import cv2
import numpy as np

from .._quiet import native_stderr_silenced
from ..errors import NoFaceError
from ..imageio import to_rgb
from ._results import N_BLENDSHAPES, RawFaces, array_detector
from .face import Face
from .weights import resolve_model_path, sha256_file

__all__ = ["Face", "Landmarker", "detect_landmarks", "MODES"]

#: running modes of :class:`Landmarker`
MODES = ("image", "video")


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
        max_faces: faces MediaPipe may return; the largest is picked. In VIDEO
            mode MediaPipe runs its face detector on every frame while fewer than
            ``max_faces`` faces are tracked: use 1 there for tracking speed.
        min_detection_confidence, min_presence_confidence: MediaPipe thresholds.
        min_tracking_confidence: VIDEO mode: below this the track is dropped
            and the detector runs again.
        min_size: inputs whose shorter side is below this are upscaled (bicubic)
            to it before detection.
        pad: fraction of the (upscaled) size added as a black border on each
            side for small or tightly cropped inputs, so the face detector sees
            the whole face. IMAGE mode: large inputs are tried without a border
            first and retried once with it when nothing is found. VIDEO mode:
            small frames always get the border, large ones never (a retry would
            need another timestamp and would break the track).
        mode: ``"image"`` (each call independent: :meth:`detect`,
            :meth:`detect_all`) or ``"video"`` (frames of one video in order:
            :meth:`detect_for_video`, :meth:`detect_all_for_video`).
        pose: also compute the facial transformation matrix
            (:attr:`Face.matrix`, :attr:`Face.pose`).
        blendshapes: also compute the 52 blendshape scores
            (:attr:`Face.blendshapes`).

    Not thread-safe; one instance per process or thread, and one per video in
    VIDEO mode (its timestamps only go forward).
    """

    def __init__(self, model_path: str | os.PathLike | None = None, *, max_faces: int = 4,
                 min_detection_confidence: float = 0.5, min_presence_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, min_size: int = 192, pad: float = 0.25,
                 mode: str = "image", pose: bool = False, blendshapes: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.model_path = resolve_model_path(model_path)
        self.max_faces, self.min_size, self.pad = int(max_faces), int(min_size), float(pad)
        self.mode, self.pose, self.blendshapes = mode, bool(pose), bool(blendshapes)
        self._video = mode == "video"
        self._last_ts: int | None = None
        mp, BaseOptions, vision = _mp()
        self._mp = mp
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.VIDEO if self._video else vision.RunningMode.IMAGE,
            num_faces=self.max_faces,
            min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
            output_face_blendshapes=self.blendshapes,
            output_facial_transformation_matrixes=self.pose)
        extras = self.pose or self.blendshapes
        with native_stderr_silenced():
            task = vision.FaceLandmarker.create_from_options(opts)
            # the first inference prints more native warnings; get them out of the way here,
            # and with it check the array fast path (public ``detect`` if it does not work).
            # VIDEO mode: the blank frame takes MediaPipe's timestamp 0; callers' timestamps
            # are shifted by one millisecond (see detect_all_for_video)
            blank = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8))
            if self._video:
                self._detect_arrays = array_detector(task, video=True, extras=extras)
            else:
                self._detect_arrays = array_detector(task, extras=extras) if extras else array_detector(task)
            try:
                if self._detect_arrays is not None:
                    self._detect_arrays(blank, 0) if self._video else self._detect_arrays(blank)
            except (AttributeError, TypeError, ctypes.ArgumentError):
                self._detect_arrays = None
                if self._video:  # the timestamp may be taken: start the task afresh for the public path
                    task.close()
                    task = vision.FaceLandmarker.create_from_options(opts)
            if self._detect_arrays is None:
                task.detect_for_video(blank, 0) if self._video else task.detect(blank)
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
    def _run(self, rgb: np.ndarray, timestamp_ms: int | None = None) -> RawFaces:
        """MediaPipe on ``rgb``: landmarks in pixels of ``rgb``, extras as MediaPipe gives them."""
        if not self._finalizer.alive:
            raise RuntimeError("Landmarker is closed")
        h, w = rgb.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self._detect_arrays is not None:
            raw = self._detect_arrays(image, timestamp_ms) if self._video else self._detect_arrays(image)
            # float32 products, rounded once: the same values as the public path's below
            scale = np.array([w, h, w], np.float32)
            return raw._replace(landmarks=[pts * scale for pts in raw.landmarks])
        if self._video:
            result = self._task.detect_for_video(image, timestamp_ms)
        else:
            result = self._task.detect(image)
        out = RawFaces([], [], [], [])
        for pts in result.face_landmarks:
            out.landmarks.append(np.array([(p.x * w, p.y * h, p.z * w) for p in pts], dtype=np.float32))
            presence = [p.presence for p in pts if p.presence is not None]
            out.presence.append(float(np.mean(np.asarray(presence, np.float32))) if presence else None)
        for cats in result.face_blendshapes or ():
            scores = np.full(N_BLENDSHAPES, np.nan, np.float32)
            for c in cats:
                if 0 <= c.index < N_BLENDSHAPES:
                    scores[c.index] = c.score
            out.blendshapes.append(scores)
        for m in result.facial_transformation_matrixes or ():
            m = np.asarray(m, np.float32)
            out.matrices.append(m if m.shape == (4, 4) else np.full((4, 4), np.nan, np.float32))
        return out

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

    def _faces(self, raw: RawFaces, scale: float, border: int) -> list[Face]:
        """Faces in input pixels, largest first, overlapping duplicates removed."""
        faces = []
        for i, arr in enumerate(raw.landmarks):
            arr[:, :2] -= border
            arr /= scale
            faces.append(Face(arr, score=raw.presence[i] if i < len(raw.presence) else None,
                              matrix=raw.matrices[i] if i < len(raw.matrices) else None,
                              blendshape_scores=raw.blendshapes[i] if i < len(raw.blendshapes) else None))
        faces.sort(key=lambda f: f.area, reverse=True)
        kept: list[Face] = []
        for f in faces:  # MediaPipe can return the same face twice in IMAGE mode
            if all(_iou(f.box, k.box) < 0.5 for k in kept):
                kept.append(f)
        return kept

    def detect_all(self, image: np.ndarray) -> list[Face]:
        """All faces found, largest first (overlapping duplicates removed). IMAGE mode.

        Args:
            image: ``(H, W)`` grayscale or ``(H, W, 3)`` RGB uint8.
        """
        if self._video:
            raise RuntimeError("this Landmarker runs in VIDEO mode: use detect_for_video / detect_all_for_video")
        rgb = to_rgb(np.asarray(image))
        small = min(rgb.shape[:2]) < self.min_size
        tries = [self.pad] if small else [0.0, self.pad]
        raw, scale, border = RawFaces([], [], [], []), 1.0, 0
        for pad in tries:
            inp, scale, border = self._prepare_input(rgb, pad)
            raw = self._run(inp)
            if raw.landmarks:
                break
        return self._faces(raw, scale, border)

    def detect(self, image: np.ndarray, *, path: str | os.PathLike = "<array>") -> Face:
        """The largest face in ``image``. IMAGE mode.

        Raises:
            NoFaceError: nothing found (``path`` names the image in the message).
        """
        faces = self.detect_all(image)
        if not faces:
            raise NoFaceError(path, "no face found")
        return faces[0]

    def detect_all_for_video(self, image: np.ndarray, timestamp_ms: int) -> list[Face]:
        """All faces in a video frame, largest first. VIDEO mode.

        Args:
            image: ``(H, W)`` grayscale or ``(H, W, 3)`` RGB uint8.
            timestamp_ms: the frame's time in milliseconds, >= 0 and larger than
                the previous call's (MediaPipe tracks faces from frame to frame).

        Raises:
            ValueError: the timestamp does not increase.
        """
        if not self._video:
            raise RuntimeError("this Landmarker runs in IMAGE mode: create it with mode='video' "
                               "for detect_for_video / detect_all_for_video")
        ts = int(timestamp_ms)
        if ts < 0 or (self._last_ts is not None and ts <= self._last_ts):
            raise ValueError(f"video timestamps must be >= 0 and increase: got {ts} ms after {self._last_ts} ms")
        rgb = to_rgb(np.asarray(image))
        small = min(rgb.shape[:2]) < self.min_size
        inp, scale, border = self._prepare_input(rgb, self.pad if small else 0.0)
        raw = self._run(inp, ts + 1)  # MediaPipe's timestamp 0 went to the warm-up frame
        self._last_ts = ts
        return self._faces(raw, scale, border)

    def detect_for_video(self, image: np.ndarray, timestamp_ms: int, *,
                         path: str | os.PathLike = "<frame>") -> Face:
        """The largest face in a video frame. VIDEO mode (see :meth:`detect_all_for_video`).

        Raises:
            NoFaceError: nothing found (``path`` names the frame in the message).
        """
        faces = self.detect_all_for_video(image, timestamp_ms)
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
