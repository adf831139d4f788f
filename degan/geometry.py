"""A geometric expression expert fused with the image model's prediction (not in the paper).

facekit stores every aligned face's landmarks (``faces/landmarks``, 478 mesh points in canvas
pixels). Their iBUG-68 view, centred on the face box and divided by its size, is a
136-number description of the face's shape; on CK+48 a multinomial logistic regression on it
alone scores about 90 % subject-disjoint, and it errs on other faces than the CNNs do (see
docs/history/degan-rounds.md). With ``eval.geometry_weight = w > 0`` each fold fits one
on its training faces (each face also mirrored: points flipped about the face box's vertical
axis and re-indexed with :data:`facekit.detect.IBUG68_FLIP`), and the reported probability of
a test face is

    p = (1 - w) * p_image + w * p_geometry

(``w = 0.5``: the mean of the two). ``w = 0`` is the paper: the image model alone. The expert
is a late fusion, not part of either network: it sees only the face's stored landmarks
(never the augmented image), so it cannot change how DE-GAN or the baseline train, and
``degan-eval --geometry-weight`` can add it to a finished run.

The fit is scikit-learn's ``StandardScaler`` + ``LogisticRegression`` (L2, ``C =
eval.geometry_c``, lbfgs: deterministic); the fitted numbers are kept as plain arrays
(:class:`GeometryExpert`) so a checkpoint holds them without pickled scikit-learn objects.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facekit.detect import IBUG68_FLIP, to_ibug68
from facekit.store import open_facekit

from .config import Evaluation
from .data import FileInfo, FoldSplit, read_rows

__all__ = ["GeometryExpert", "face_points68", "landmark_features", "mirror_points68", "fit_geometry",
           "fold_expert", "geometry_proba", "fuse_proba"]


@dataclass(frozen=True)
class GeometryExpert:
    """A fitted standardiser + multinomial logistic regression.

    ``mean``, ``scale``: (D,) float64; ``coef``: (N_e, D) float64; ``intercept``: (N_e,) float64.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(F, D) features -> (F, N_e) float64 class probabilities (rows sum to 1)."""
        z = ((np.asarray(features, np.float64) - self.mean) / self.scale) @ self.coef.T + self.intercept
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    def to_state(self) -> dict[str, list[Any]]:
        """JSON/checkpoint-friendly lists."""
        return {k: getattr(self, k).tolist() for k in ("mean", "scale", "coef", "intercept")}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "GeometryExpert":
        return cls(**{k: np.asarray(state[k], np.float64) for k in ("mean", "scale", "coef", "intercept")})


def face_points68(info: FileInfo, faces: Sequence[int] | np.ndarray) -> np.ndarray:
    """iBUG-68 points of aligned faces ``faces`` (rows of ``faces/``): (F, 68, 2) float32, canvas pixels."""
    with open_facekit(info.path) as fk:            # faces/landmarks is part of every valid file
        mesh = read_rows(fk.h5["faces/landmarks"], np.asarray(faces, np.int64))
    return to_ibug68(mesh).astype(np.float32)


def mirror_points68(points: np.ndarray, face_box: tuple[int, int, int]) -> np.ndarray:
    """(F, 68, 2) points of the mirror image of each face (about the face box's vertical centre
    line), re-indexed so that point i is again iBUG point i."""
    bx, _, bs = face_box
    out = np.asarray(points)[:, IBUG68_FLIP].copy()
    out[..., 0] = 2 * (bx + bs / 2) - out[..., 0]
    return out


def landmark_features(points: np.ndarray, face_box: tuple[int, int, int]) -> np.ndarray:
    """(F, 68, 2) canvas points -> (F, 136) float64: centred on the face box, in face-box units."""
    bx, by, bs = face_box
    p = np.asarray(points, np.float64)
    centre = np.array([bx + bs / 2, by + bs / 2])
    return ((p - centre) / bs).reshape(len(p), -1)


def fit_geometry(info: FileInfo, split: FoldSplit, c: float = 0.1) -> GeometryExpert:
    """Fit the expert on the training faces of ``split`` (each face once, plus its mirror image).

    Test faces are never read.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train = np.asarray(split.train, np.int64)
    faces, first = np.unique(info.face[train], return_index=True)
    labels = info.label[train][first].astype(np.int64)
    pts = face_points68(info, faces)
    x = np.concatenate([landmark_features(pts, info.face_box),
                        landmark_features(mirror_points68(pts, info.face_box), info.face_box)])
    y = np.concatenate([labels, labels])
    scaler = StandardScaler().fit(x)
    reg = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x), y)
    n = info.n_classes
    coef = np.zeros((n, x.shape[1]))
    intercept = np.full(n, -1e4)          # a class absent from training gets no probability
    if len(reg.classes_) == 2:            # scikit-learn's binary form: one row for classes_[1]
        coef[reg.classes_[1]], intercept[reg.classes_[1]] = reg.coef_[0], reg.intercept_[0]
        coef[reg.classes_[0]], intercept[reg.classes_[0]] = 0.0, 0.0
    else:
        coef[reg.classes_], intercept[reg.classes_] = reg.coef_, reg.intercept_
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    return GeometryExpert(scaler.mean_.astype(np.float64), scale.astype(np.float64), coef, intercept)


def fold_expert(info: FileInfo, split: FoldSplit, settings: Evaluation,
                saved: dict[str, Any] | None = None) -> GeometryExpert | None:
    """The expert a fold's predictions fuse with under ``settings``: none at ``geometry_weight`` 0,
    else ``saved`` (a :meth:`GeometryExpert.to_state`) when given, else one fitted on the
    fold's training faces with ``settings.geometry_c``."""
    if settings.geometry_weight <= 0:
        return None
    if saved:
        return GeometryExpert.from_state(saved)
    return fit_geometry(info, split, settings.geometry_c)


def geometry_proba(expert: GeometryExpert, info: FileInfo, faces: Sequence[int] | np.ndarray,
                   mirrored: bool = False) -> np.ndarray:
    """(F, N_e) probabilities of faces ``faces``; with ``mirrored`` the mean of each face's and its
    mirror image's (as the image model's ``test_views="mirror"`` averages two views)."""
    pts = face_points68(info, faces)
    p = expert.predict_proba(landmark_features(pts, info.face_box))
    if mirrored:
        p = 0.5 * (p + expert.predict_proba(landmark_features(mirror_points68(pts, info.face_box), info.face_box)))
    return p


def fuse_proba(image: np.ndarray, geometry: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * image + weight * geometry``, both (F, N_e); float32."""
    return ((1.0 - weight) * np.asarray(image, np.float64) + weight * np.asarray(geometry, np.float64)).astype(
        np.float32)
