"""Similarity alignment of a face to the canonical template."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from ..detect.ibug68 import to_ibug68
from ..imageio import to_gray, to_rgb
from .template import RIGID_POINTS, TEMPLATE_68
from .transform import estimate_similarity, transform_points

__all__ = ["AlignConfig", "AlignedFace", "align_face", "landmarks_to_ibug68"]

_BORDERS = {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
_INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA,
           "lanczos": cv2.INTER_LANCZOS4}


@dataclass(frozen=True)
class AlignConfig:
    """How faces are aligned.

    Attributes:
        size: side of the face box in output pixels (the template's unit square).
            112 leaves room for the paper's five 96x96 patches.
        margin: extra pixels kept around the face box on each side (for
            rotation augmentation); the output is ``size + 2 * margin`` square.
        grayscale: output ``(C, C)`` grayscale instead of ``(C, C, 3)`` RGB.
        border: how pixels outside the source image are filled: ``"reflect"``
            (default; never black), ``"replicate"`` or ``"constant"`` (black).
        interpolation: ``"linear"``, ``"cubic"``, ``"area"`` or ``"lanczos"``.
        points: iBUG-68 indices used to estimate the transform.
        template: ``(68, 2)`` template in face-box units; ``None`` is
            :data:`~facekit.align.template.TEMPLATE_68`.
    """

    size: int = 112
    margin: int = 0
    grayscale: bool = False
    border: str = "reflect"
    interpolation: str = "linear"
    points: tuple[int, ...] = tuple(int(i) for i in RIGID_POINTS)
    template: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.border not in _BORDERS:
            raise ValueError(f"border must be one of {sorted(_BORDERS)}, got {self.border!r}")
        if self.interpolation not in _INTERP:
            raise ValueError(f"interpolation must be one of {sorted(_INTERP)}, got {self.interpolation!r}")
        if len(self.points) < 2:
            raise ValueError("at least two points are needed to estimate a similarity")

    @property
    def canvas(self) -> int:
        """Side of the output image, ``size + 2 * margin``."""
        return self.size + 2 * self.margin

    @property
    def box(self) -> tuple[int, int, int]:
        """``(x, y, size)`` of the face box inside the output image."""
        return self.margin, self.margin, self.size

    def target_points(self) -> np.ndarray:
        """``(68, 2)`` template in output pixels."""
        template = TEMPLATE_68 if self.template is None else np.asarray(self.template, np.float64)
        if template.shape != (68, 2):
            raise ValueError(f"template must be (68, 2), got {template.shape}")
        return template * self.size + self.margin

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "margin": self.margin, "grayscale": self.grayscale, "border": self.border,
                "interpolation": self.interpolation, "points": list(self.points), "template": "ibug68-mean-v1"
                if self.template is None else np.asarray(self.template).tolist()}


@dataclass(frozen=True)
class AlignedFace:
    """Result of :func:`align_face`.

    Attributes:
        image: ``(C, C)`` or ``(C, C, 3)`` uint8, ``C = size + 2 * margin``.
        landmarks: input landmarks in output pixels, same shape as given
            (``(478, 2|3)`` or ``(68, 2)``), float32.
        matrix: ``(2, 3)`` float64 similarity, source pixels -> output pixels.
        box: ``(x, y, size)`` of the face box inside ``image``.
    """

    image: np.ndarray = field(repr=False)
    landmarks: np.ndarray = field(repr=False)
    matrix: np.ndarray
    box: tuple[int, int, int]

    @property
    def face(self) -> np.ndarray:
        """The face box without margin (a view into :attr:`image`)."""
        x, y, s = self.box
        return self.image[y:y + s, x:x + s]

    @property
    def landmarks68(self) -> np.ndarray:
        """``(68, 2)`` iBUG points in output pixels."""
        return landmarks_to_ibug68(self.landmarks)


def landmarks_to_ibug68(landmarks: np.ndarray) -> np.ndarray:
    """Accept ``(478, D)`` mesh or ``(68, D)`` iBUG points; return ``(68, 2)`` float32."""
    lm = np.asarray(landmarks)
    if lm.ndim != 2 or lm.shape[1] < 2:
        raise ValueError(f"landmarks must be (478, 2|3) or (68, 2), got shape {lm.shape}")
    if lm.shape[0] == 68:
        return lm[:, :2].astype(np.float32)
    if lm.shape[0] >= 468:
        return to_ibug68(lm[:, :2]).astype(np.float32)
    raise ValueError(f"landmarks must have 478 (MediaPipe) or 68 (iBUG) points, got {lm.shape[0]}")


def align_face(image: np.ndarray, landmarks: np.ndarray, config: AlignConfig | None = None,
               **overrides: Any) -> AlignedFace:
    """Warp ``image`` so that ``landmarks`` match the template.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` RGB uint8.
        landmarks: ``(478, 2|3)`` MediaPipe mesh or ``(68, 2)`` iBUG points, in
            ``image`` pixels.
        config: :class:`AlignConfig`; keyword ``overrides`` replace its fields
            (``align_face(img, lm, size=128, grayscale=True)``).

    Returns:
        :class:`AlignedFace` (image, landmarks in output pixels, matrix, box).
    """
    cfg = replace(config or AlignConfig(), **overrides) if overrides else (config or AlignConfig())
    pts68 = landmarks_to_ibug68(landmarks)
    idx = np.asarray(cfg.points, np.intp)
    matrix = estimate_similarity(pts68[idx], cfg.target_points()[idx])
    src = np.asarray(image)
    src = to_gray(src) if cfg.grayscale else to_rgb(src)
    c = cfg.canvas
    out = cv2.warpAffine(src, matrix, (c, c), flags=_INTERP[cfg.interpolation],
                         borderMode=_BORDERS[cfg.border], borderValue=0)
    aligned_lm = transform_points(matrix, np.asarray(landmarks, np.float32))
    return AlignedFace(image=out, landmarks=aligned_lm, matrix=matrix, box=cfg.box)
