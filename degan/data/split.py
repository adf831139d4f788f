"""Which samples of a facekit file train and test a fold, and the training-identity labels."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..config import DeganConfig
from ..errors import FoldError, NoFoldsError
from .fileinfo import FileInfo

__all__ = ["FoldSplit", "make_split", "all_labelled_split"]


@dataclass
class FoldSplit:
    """Sample indices of one fold and the identity remapping.

    ``train``/``test``: sorted int64 sample indices. ``identity``: (N,) int64,
    the training-identity index of every sample (0..n_identities-1; -1 for
    subjects not in training). ``identity_names``: subject names of those indices.
    ``dropped``: training samples left out because their subject or face is in the test fold.
    """

    fold: int
    k: int
    train: np.ndarray
    test: np.ndarray
    identity: np.ndarray
    identity_names: list[str]
    dropped: int = 0

    @property
    def n_identities(self) -> int:
        return len(self.identity_names)


def centre_mask(info: FileInfo, mirrored: bool = False) -> np.ndarray:
    """Samples that are an un-rotated, un-mirrored centre view (one per face); with
    ``mirrored`` also the mirrored centre views (two per face of a 110x file)."""
    if not info.stored_augmentation:
        return np.ones(info.n_samples, bool)
    centre = (info.patch == 0) & (np.abs(info.angle) < 1e-6)
    return centre if mirrored else centre & (info.flip == 0)


def _identities(info: FileInfo, train: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N,) training-identity index of every sample (-1: not a training subject) and their names."""
    train_subjects = np.unique(info.subject[train])
    identity = np.full(info.n_samples, -1, np.int64)
    for i, s in enumerate(train_subjects):
        identity[info.subject == int(s)] = i
    names = [info.subjects[int(s)] if int(s) < len(info.subjects) else str(int(s)) for s in train_subjects]
    return identity, names


def make_split(info: FileInfo, fold: int, cfg: DeganConfig) -> FoldSplit:
    """Train = the other folds, test = ``fold``; subject- and face-disjoint by construction.

    With stored augmentation the training set holds every stored copy when
    ``cfg.data.augment`` is "auto"/"stored" and only the centre views otherwise; the
    test set holds the centre views, the centre views and their mirrors when
    ``cfg.eval.test_views == "mirror"``, or every copy when it is ``"all"``.

    Raises:
        NoFoldsError: the file has no ``/folds/fold``.
        FoldError: ``fold`` out of range, or an empty train/test set.
    """
    if info.fold is None:
        raise NoFoldsError(info.path, "has no folds; run `facekit folds FILE --k 10` first")
    k = info.k
    if not 0 <= fold < k:
        raise FoldError(info.path, f"fold {fold} is out of range: the file has {k} folds (0..{k - 1})")
    labelled = info.label >= 0
    in_test = (info.fold == fold) & labelled
    test_subjects = np.unique(info.subject[in_test])
    test_faces = np.unique(info.face[in_test])
    candidate = (info.fold != fold) & labelled
    leak = candidate & (np.isin(info.subject, test_subjects) | np.isin(info.face, test_faces))
    if leak.any():
        warnings.warn(f"{info.path}: {int(leak.sum())} training samples share a subject or face with test fold "
                      f"{fold}; they are left out of training (folds should be subject-disjoint)", stacklevel=2)
    train_mask = candidate & ~leak
    centre = centre_mask(info)
    if info.stored_augmentation and cfg.data.augment in ("online", "off"):
        train_mask &= centre
    views = cfg.eval.test_views
    if views == "all":
        test_mask = in_test
    elif views == "mirror":
        test_mask = in_test & centre_mask(info, mirrored=True)
    else:
        test_mask = in_test & centre
    train, test = np.flatnonzero(train_mask), np.flatnonzero(test_mask)
    if len(test) == 0:
        raise FoldError(info.path, f"fold {fold} has no labelled test samples")
    if len(train) == 0:
        raise FoldError(info.path, f"fold {fold} leaves no training samples")
    identity, names = _identities(info, train)
    return FoldSplit(fold, k, train, test, identity, names, int(leak.sum()))


def all_labelled_split(info: FileInfo) -> FoldSplit:
    """Every labelled sample as training data, identities numbered over all of them (pre-training
    on another file; fold -1, no test set beyond one sample)."""
    labelled = np.flatnonzero(info.label >= 0)
    subj = np.unique(info.subject[labelled])
    identity = np.full(info.n_samples, -1, np.int64)
    for i, s in enumerate(subj):
        identity[info.subject == s] = i
    return FoldSplit(-1, 0, labelled, labelled[:1], identity, [info.subjects[int(s)] for s in subj])
