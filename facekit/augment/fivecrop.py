"""The paper's augmentation: five crops x eleven rotations x flip = 110 samples.

DE-GAN (section 4.1) cuts five 96x96 patches (centre and four corners) from
each aligned face, rotates by {0, +-3, +-6, +-9, +-12, +-15} degrees and keeps
each patch as is and mirrored. Here the rotation is applied to the aligned
canvas about the face-box centre, the rotated face box is resampled once per
angle (one ``cv2.warpAffine``), and the five patches and their mirrors are
array slices of it: 11 warps per face instead of 110.

Sample order (fixed): ``k = (a * n_patches + p) * n_flips + f`` for angle
index ``a`` over :data:`PAPER_ANGLES` (0, +3, -3, +6, -6, ..., +15, -15),
patch ``p`` over centre, top-left, top-right, bottom-left, bottom-right, and
flip ``f`` over (as is, mirrored). Sample 0 is the un-rotated, un-mirrored
centre patch, the one used for testing.

No black borders: the rotated face box must lie inside the canvas.
:func:`required_margin` gives the margin that guarantees it; a smaller canvas
raises ``ValueError``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..detect.ibug68 import IBUG68_FLIP
from ..align.transform import rotation_about

__all__ = ["PAPER_ANGLES", "PATCH_NAMES", "PATCH_POSITIONS", "AugmentConfig", "Augmented", "augment_face",
           "required_margin", "patch_offsets", "sample_views"]

#: names of the patch indices stored in ``samples/patch``
PATCH_NAMES: tuple[str, ...] = ("centre", "top-left", "top-right", "bottom-left", "bottom-right")

#: where each patch of :data:`PATCH_NAMES` sits in the face box: (x, y) as a fraction of the room the
#: patch leaves (face box size - patch size); 0 = left/top edge, 1 = right/bottom edge
PATCH_POSITIONS: tuple[tuple[float, float], ...] = ((0.5, 0.5), (0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))

#: the paper's rotations in degrees (counter-clockwise positive), in stored sample order
PAPER_ANGLES: tuple[float, ...] = (0.0, 3.0, -3.0, 6.0, -6.0, 9.0, -9.0, 12.0, -12.0, 15.0, -15.0)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation grid.

    Attributes:
        patch_size: side of each patch (96 in the paper).
        angles: rotations in degrees, counter-clockwise positive.
        patches: indices into :data:`PATCH_NAMES` (0 centre .. 4 bottom-right).
        flips: also store mirrored copies.
    """

    patch_size: int = 96
    angles: tuple[float, ...] = PAPER_ANGLES
    patches: tuple[int, ...] = (0, 1, 2, 3, 4)
    flips: bool = True

    @property
    def samples_per_face(self) -> int:
        return len(self.angles) * len(self.patches) * (2 if self.flips else 1)

    def to_dict(self) -> dict:
        return {"patch_size": self.patch_size, "angles": list(self.angles), "patches": list(self.patches),
                "flips": self.flips, "samples_per_face": self.samples_per_face}


@dataclass(frozen=True)
class Augmented:
    """Samples made from one face.

    ``images`` (K, P, P[, 3]) uint8; ``landmarks`` (K, 68, 2) float32 in sample
    pixels (mirrored samples have their points mirrored and re-indexed so index
    36 is still the image-left outer eye corner); ``patch`` (K,) int8, ``angle``
    (K,) float32, ``flip`` (K,) uint8.
    """

    images: np.ndarray
    landmarks: np.ndarray
    patch: np.ndarray
    angle: np.ndarray
    flip: np.ndarray


def required_margin(face_size: int, max_angle: float) -> int:
    """Smallest canvas margin for which rotating the face box by ``max_angle`` stays inside."""
    t = math.radians(abs(max_angle))
    half = face_size / 2
    # +1 pixel so bilinear sampling at the rotated corners never reads outside
    return max(0, math.ceil(half * (math.cos(t) + math.sin(t)) - half - 1e-9)) + 1


def patch_offsets(face_size: float, patch_size: float, *, exact: bool = False) -> np.ndarray:
    """``(5, 2)`` (x, y) offsets of the five patches inside the face box, in PATCH_NAMES order
    (:data:`PATCH_POSITIONS` times the room ``face_size - patch_size``).

    Whole pixels (``intp``, rounded down: with an odd room the centre patch sits half a pixel
    up and left), or with ``exact=True`` the ``float64`` offsets (sub-pixel centre), for
    resamplers that can cut between pixels.
    """
    if patch_size > face_size:
        raise ValueError(f"patch_size {patch_size} is larger than the face box {face_size}")
    room = np.asarray(PATCH_POSITIONS, np.float64) * (face_size - patch_size)
    return room if exact else np.floor(room).astype(np.intp)


def sample_views(config: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (patch, angle, flip) of every sample :func:`augment_face` cuts from a face, in its order
    (``k = (a * n_patches + p) * n_flips + f``): ``patch`` (K,) int8 indices into
    :data:`PATCH_NAMES`, ``angle`` (K,) float32 degrees, ``flip`` (K,) uint8. With the default
    config, the paper's 110 views; sample 0 is the un-rotated, un-mirrored centre patch."""
    n_f = 2 if config.flips else 1
    n_p = len(config.patches)
    patch = np.tile(np.repeat(np.asarray(config.patches, np.int8), n_f), len(config.angles))
    angle = np.repeat(np.asarray(config.angles, np.float32), n_p * n_f)
    flip = np.tile(np.arange(n_f, dtype=np.uint8), len(config.angles) * n_p)
    return patch, angle, flip


def augment_face(canvas: np.ndarray, box: tuple[int, int, int], config: AugmentConfig = AugmentConfig(), *,
                 landmarks68: np.ndarray | None = None) -> Augmented:
    """Cut the augmented samples of one aligned face.

    Args:
        canvas: ``(C, C)`` or ``(C, C, 3)`` uint8 aligned image (face box plus margin).
        box: ``(x, y, size)`` of the face box inside ``canvas``.
        config: the grid; defaults to the paper's 110 samples.
        landmarks68: optional ``(68, 2)`` points in canvas pixels, carried into
            each sample's coordinates.

    Returns:
        :class:`Augmented` with ``config.samples_per_face`` samples in the
        documented order.

    Raises:
        ValueError: the canvas is too small for the largest angle without
            borders, or the patch does not fit the face box.
    """
    bx, by, s = (int(v) for v in box)
    p = int(config.patch_size)
    offsets = patch_offsets(s, p)[list(config.patches)]
    h, w = canvas.shape[:2]
    max_angle = max((abs(a) for a in config.angles), default=0.0)
    need = required_margin(s, max_angle) if max_angle else 0
    if min(bx, by, w - bx - s, h - by - s) < need:
        raise ValueError(f"canvas {w}x{h} with face box {box} is too small to rotate by {max_angle} degrees "
                         f"without borders: needs a margin of {need} px")
    n_f = 2 if config.flips else 1
    n_p = len(offsets)
    patch, angle, flip = sample_views(config)
    k_total = len(patch)
    images = np.empty((k_total, p, p, *canvas.shape[2:]), dtype=np.uint8)
    lms = np.zeros((k_total, 68, 2), np.float32)
    centre = (bx + (s - 1) / 2.0, by + (s - 1) / 2.0)
    mats = np.stack([rotation_about(centre, a) for a in config.angles]) if config.angles \
        else np.zeros((0, 2, 3))
    mats[:, :, 2] -= (bx, by)  # output only the face box
    grid = images.reshape(len(config.angles), n_p, n_f, *images.shape[1:])     # a view: (A, P, F, p, p[, 3])
    for ai, (a, m) in enumerate(zip(config.angles, mats)):
        rotated = cv2.warpAffine(canvas, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) \
            if a else canvas[by:by + s, bx:bx + s]
        mirrored = cv2.flip(rotated, 1) if n_f == 2 else None      # one mirror per angle, then plain crops
        for pi, (ox, oy) in enumerate(offsets):
            grid[ai, pi, 0] = rotated[oy:oy + p, ox:ox + p]
            if mirrored is not None:
                grid[ai, pi, 1] = mirrored[oy:oy + p, s - p - ox:s - ox]
    if landmarks68 is not None and k_total:
        pts = np.asarray(landmarks68, np.float64)
        pts = (np.einsum("nj,akj->ank", pts, mats[:, :, :2]) + mats[:, None, :, 2]).astype(np.float32)
        pts = pts[:, None] - offsets[None, :, None, :].astype(np.float32)       # (A, P, 68, 2)
        lgrid = lms.reshape(len(config.angles), n_p, n_f, 68, 2)
        lgrid[:, :, 0] = pts
        if n_f == 2:
            lgrid[:, :, 1, :, 0] = (p - 1) - pts[:, :, IBUG68_FLIP, 0]
            lgrid[:, :, 1, :, 1] = pts[:, :, IBUG68_FLIP, 1]
    return Augmented(images=images, landmarks=lms, patch=patch, angle=angle, flip=flip)
