"""What a detection returns: :class:`Face`, its head pose and its blendshapes.

Pose convention
---------------
MediaPipe's Face Landmarker gives, per face, a 4x4 *facial transformation
matrix* that maps its canonical 3D face model (centimetres) into a camera frame
with **x to the image's right, y up, z towards the camera** (the camera looks
down -z). :func:`pose_from_matrix` writes its rotation ``R`` as::

    R = Rz(roll) @ Ry(yaw) @ Rx(-pitch)

(rotations about the fixed camera axes: first x, then y, then z; the same as
``scipy.spatial.transform.Rotation.from_matrix(R).as_euler("xyz", degrees=True)``
returning ``(-pitch, yaw, roll)``). In words, angles in degrees, 0 = the
canonical model facing the camera:

* **pitch** > 0: the subject raises the chin (looks up); < 0 looks down;
* **yaw** > 0: the subject turns to *their* left, i.e. towards the image's
  right in an unmirrored picture; < 0 to their right;
* **roll** > 0: the face turns counter-clockwise in the image (the top of the
  head towards the image's left, the subject's right shoulder).

A horizontally mirrored image therefore gives the opposite yaw and roll, and
rotating an image counter-clockwise by ``a`` degrees adds about ``a`` to roll.
There is no per-subject calibration: a subject looking straight into the camera
typically gets a few degrees of pitch (the canonical model's own tilt).

Blendshapes
-----------
52 scores in 0..1 named as MediaPipe names them (:data:`BLENDSHAPE_NAMES`,
ARKit-style names; ``*Left``/``*Right`` refer to the subject's side, so a
mirrored image swaps them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .ibug68 import to_ibug68

__all__ = ["Face", "HeadPose", "BLENDSHAPE_NAMES", "pose_from_matrix", "pose_matrix"]

#: MediaPipe's 52 blendshape category names, in the order of its output (index 0..51)
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)


class HeadPose(NamedTuple):
    """Head pose in degrees (see the module docstring for axes, signs and order).

    ``np.asarray(pose, np.float32)`` gives the ``(3,)`` vector ``(pitch, yaw, roll)``.
    """

    pitch: float
    yaw: float
    roll: float


def _rotation(matrix: np.ndarray) -> np.ndarray:
    """The nearest rotation to the upper-left 3x3 block of ``matrix`` (scale removed)."""
    m = np.asarray(matrix, np.float64)
    if m.shape not in ((4, 4), (3, 4), (3, 3)):
        raise ValueError(f"expected a (4, 4), (3, 4) or (3, 3) matrix, got shape {m.shape}")
    u, _, vt = np.linalg.svd(m[:3, :3])
    r = u @ vt
    if np.linalg.det(r) < 0:  # a reflection is not a pose
        raise ValueError("matrix is a reflection, not a rotation")
    return r


def pose_from_matrix(matrix: np.ndarray) -> HeadPose:
    """Pitch, yaw and roll in degrees from a facial transformation matrix.

    Args:
        matrix: ``(4, 4)`` (MediaPipe's), ``(3, 4)`` or ``(3, 3)``; a uniform
            scale in the rotation block is removed.

    Returns:
        :class:`HeadPose`. At yaw = +-90 degrees (gimbal lock) pitch is set to 0
        and the remaining rotation is reported as roll.
    """
    r = _rotation(matrix)
    sy = -r[2, 0]
    yaw = math.asin(max(-1.0, min(1.0, sy)))
    if abs(sy) < 1.0 - 1e-9:
        ax = math.atan2(r[2, 1], r[2, 2])
        roll = math.atan2(r[1, 0], r[0, 0])
    else:  # cos(yaw) = 0: only ax -+ roll is defined
        ax = 0.0
        roll = math.atan2(-r[0, 1], r[1, 1])
    return HeadPose(pitch=math.degrees(-ax), yaw=math.degrees(yaw), roll=math.degrees(roll))


def pose_matrix(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """The ``(3, 3)`` rotation of a pose (inverse of :func:`pose_from_matrix`), float64."""
    a, b, c = (math.radians(v) for v in (-pitch, yaw, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        landmarks: ``(478, 3)`` float32; x, y in pixels of the input image, z in
            the same scale as x (MediaPipe's relative depth times image width).
        score: confidence of the face in 0..1 where MediaPipe reports one: the
            mean *presence* of its landmarks. MediaPipe's Face Landmarker (checked
            up to 1.2.3) fills no presence, so this is ``None``; faces below the
            landmarker's ``min_presence_confidence`` are not returned at all.
        matrix: ``(4, 4)`` float32 facial transformation matrix (canonical face
            model -> camera frame, centimetres), or ``None`` when the landmarker
            was not asked for pose.
        blendshape_scores: ``(52,)`` float32 in :data:`BLENDSHAPE_NAMES` order,
            or ``None`` when the landmarker was not asked for blendshapes.
    """

    landmarks: np.ndarray = field(repr=False)
    score: float | None = None
    matrix: np.ndarray | None = field(default=None, repr=False)
    blendshape_scores: np.ndarray | None = field(default=None, repr=False)

    @property
    def landmarks68(self) -> np.ndarray:
        """``(68, 2)`` float32 iBUG-68 view (see :mod:`facekit.detect.ibug68`)."""
        return to_ibug68(self.landmarks[:, :2])

    @property
    def box(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)``: the extent of the 478 landmarks, input pixels."""
        xy = self.landmarks[:, :2]
        x0, y0 = xy.min(0)
        x1, y1 = xy.max(0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """Same as :attr:`box`."""
        return self.box

    @property
    def area(self) -> float:
        """Area of :attr:`box` in square pixels."""
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)

    @property
    def pose(self) -> HeadPose | None:
        """Pitch, yaw, roll in degrees from :attr:`matrix` (module docstring), or ``None``."""
        return None if self.matrix is None else pose_from_matrix(self.matrix)

    @property
    def blendshapes(self) -> dict[str, float] | None:
        """``{MediaPipe name: score}`` for the 52 blendshapes, or ``None``."""
        if self.blendshape_scores is None:
            return None
        return dict(zip(BLENDSHAPE_NAMES, (float(v) for v in self.blendshape_scores)))
