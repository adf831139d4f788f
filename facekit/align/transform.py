"""Similarity transforms on point sets (pure numpy; no images).

Matrices are ``(2, 3)`` float64 affine matrices ``[[a, -b, tx], [b, a, ty]]``
mapping source pixels to destination pixels, the form ``cv2.warpAffine`` takes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["estimate_similarity", "transform_points", "invert_affine", "compose_affine",
           "similarity_params", "rotation_about"]


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) with src -> dst.

    The closed form of the 2-D case: with centred points ``s``, ``d`` and
    ``n = sum |s|^2``, the matrix is ``[[a, -b], [b, a]]`` with
    ``a = sum(s . d) / n`` and ``b = sum(s x d) / n`` (the minimiser Umeyama's
    estimator, :class:`skimage.transform.SimilarityTransform`, finds with an
    SVD; the tests check they agree). Element-wise numpy only: no BLAS/LAPACK
    call, whose thread wake-ups made the SVD form cost 0.24 ms per face next to
    a running landmarker (31 us alone), and no ``skimage.transform`` import
    (0.22 s per process, it pulls in SciPy).

    Args:
        src, dst: ``(K, 2)`` corresponding points, K >= 2, not all coincident.

    Returns:
        ``(2, 3)`` float64 matrix.
    """
    src = np.asarray(src, np.float64)[:, :2]
    dst = np.asarray(dst, np.float64)[:, :2]
    if src.shape != dst.shape or src.ndim != 2 or len(src) < 2:
        raise ValueError(f"need two (K, 2) arrays with K >= 2, got {src.shape} and {dst.shape}")
    if not np.isfinite(src).all() or not np.isfinite(dst).all() or np.ptp(src, axis=0).max() < 1e-9:
        raise ValueError("source points are degenerate (coincident or non-finite)")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sx, sy = src[:, 0] - mu_s[0], src[:, 1] - mu_s[1]
    dx, dy = dst[:, 0] - mu_d[0], dst[:, 1] - mu_d[1]
    norm = float((sx * sx).sum() + (sy * sy).sum())
    a = float((sx * dx).sum() + (sy * dy).sum()) / norm
    b = float((sx * dy).sum() - (sy * dx).sum()) / norm
    m = np.array([[a, -b, 0.0], [b, a, 0.0]])
    m[0, 2] = mu_d[0] - (a * mu_s[0] - b * mu_s[1])
    m[1, 2] = mu_d[1] - (b * mu_s[0] + a * mu_s[1])
    return m


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a ``(2, 3)`` affine matrix to ``(..., 2)`` points (extra columns kept, z scaled)."""
    m = np.asarray(matrix, np.float64)
    pts = np.asarray(points)
    x, y = pts[..., 0].astype(np.float64), pts[..., 1].astype(np.float64)
    xy = np.stack([m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]], axis=-1)
    if pts.shape[-1] == 2:      # element-wise, no BLAS call (see estimate_similarity)
        return xy.astype(np.float32)
    scale = float(np.sqrt(abs(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0])))
    rest = pts[..., 2:].astype(np.float64) * scale
    return np.concatenate([xy, rest], axis=-1).astype(np.float32)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a ``(2, 3)`` affine matrix."""
    m = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(m)[:2]


def compose_affine(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Matrix of ``second(first(x))``."""
    a = np.vstack([np.asarray(second, np.float64), [0, 0, 1]])
    b = np.vstack([np.asarray(first, np.float64), [0, 0, 1]])
    return (a @ b)[:2]


def similarity_params(matrix: np.ndarray) -> tuple[float, float, float, float]:
    """``(scale, rotation_degrees, tx, ty)`` of a similarity matrix."""
    m = np.asarray(matrix, np.float64)
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    angle = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    return scale, angle, float(m[0, 2]), float(m[1, 2])


def rotation_about(center: tuple[float, float], degrees: float) -> np.ndarray:
    """``(2, 3)`` rotation by ``degrees`` about ``center``.

    Positive angles turn the image content counter-clockwise as displayed
    (y axis pointing down), the OpenCV convention.
    """
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    cx, cy = center
    return np.array([[c, s, (1 - c) * cx - s * cy],
                     [-s, c, s * cx + (1 - c) * cy]], np.float64)
