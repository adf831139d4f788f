"""Which samples of a facekit file train, validate and test a fold, the training-identity labels,
and how many items one training epoch has per sample."""
from __future__ import annotations

import dataclasses
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np

from facekit.augment import sample_views
from facekit.split import stratified_subject_folds

from ..config import DeganConfig
from ..errors import FoldError, NoFoldsError
from .fileinfo import FileInfo

__all__ = ["FoldSplit", "make_split", "all_labelled_split", "training_views", "PAPER_VIEWS"]

#: views per face in the paper's augmentation (5 crops x 11 angles x mirror; facekit.augment.sample_views)
PAPER_VIEWS = len(sample_views()[0])


def training_views(info: FileInfo, cfg: DeganConfig | None) -> int:
    """Items per training sample in one epoch: :data:`PAPER_VIEWS` with ``data.augment="paper"`` on a
    canvas file (each face's 110 views are rendered from its canvas), else 1 (a 110x file's
    stored copies are samples themselves; online augmentation draws one view per sample)."""
    return PAPER_VIEWS if cfg is not None and cfg.data.augment == "paper" and not info.stored_augmentation else 1


@dataclass
class FoldSplit:
    """Sample indices of one fold and the identity remapping.

    ``train``/``test``: sorted int64 sample indices. ``identity``: (N,) int64,
    the training-identity index of every sample (0..n_identities-1; -1 for
    subjects not in training). ``identity_names``: subject names of those indices.
    ``dropped``: training samples left out because their subject or face is in the test fold.
    ``views``: items per training sample in one epoch (:func:`training_views`).
    ``val``: sorted int64 indices of the inner validation samples (``data.val_fraction`` > 0;
    chosen like the test samples), whose subjects ``val_subjects`` are not trained on.
    """

    fold: int
    k: int
    train: np.ndarray
    test: np.ndarray
    identity: np.ndarray
    identity_names: list[str]
    dropped: int = 0
    views: int = 1
    val: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    val_subjects: list[str] = field(default_factory=list)

    @property
    def n_identities(self) -> int:
        return len(self.identity_names)

    @property
    def n_train_items(self) -> int:
        """Items of one training epoch: training samples x :attr:`views`."""
        return int(len(self.train)) * self.views

    def validation(self) -> "FoldSplit":
        """This split with the validation samples in the place of the test samples (to score them
        with :func:`degan.predict.predict`)."""
        return dataclasses.replace(self, test=self.val)


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
    ``cfg.data.augment`` is "paper"/"auto"/"stored" and only the centre views otherwise; the
    test set holds the centre views, the centre views and their mirrors when
    ``cfg.eval.test_views == "mirror"``, or every copy when it is ``"all"``.

    With ``cfg.data.val_fraction`` = f > 0 the training subjects are split into ``round(1/f)``
    subject-disjoint parts stratified by expression (:func:`facekit.split.stratified_subject_folds`,
    one row per face, the same parts for every seed and setting: ``random_state`` depends on the
    fold only) and the first part is the validation set: its subjects are not trained on and
    their samples are chosen like the test samples.

    Raises:
        NoFoldsError: the file has no ``/folds/fold``.
        FoldError: ``fold`` out of range, an empty train/test set, or too few training subjects
            for the validation split.
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
    in_val = np.zeros_like(train_mask)
    val_names: list[str] = []
    if cfg.data.val_fraction > 0:
        val_subjects = _validation_subjects(info, train_mask, fold, cfg.data.val_fraction)
        in_val = train_mask & np.isin(info.subject, val_subjects)
        train_mask &= ~in_val
        val_names = [_subject_name(info, s) for s in val_subjects]
    centre = centre_mask(info)
    if info.stored_augmentation and cfg.data.augment in ("online", "off"):
        train_mask &= centre
    views = cfg.eval.test_views
    if views == "all":
        scored = np.ones_like(centre)
    elif views == "mirror":
        scored = centre_mask(info, mirrored=True)
    else:
        scored = centre
    train, test = np.flatnonzero(train_mask), np.flatnonzero(in_test & scored)
    if len(test) == 0:
        raise FoldError(info.path, f"fold {fold} has no labelled test samples")
    if len(train) == 0:
        raise FoldError(info.path, f"fold {fold} leaves no training samples")
    identity, names = _identities(info, train)
    return FoldSplit(fold, k, train, test, identity, names, int(leak.sum()), views=training_views(info, cfg),
                     val=np.flatnonzero(in_val & scored), val_subjects=val_names)


def _subject_name(info: FileInfo, s: int) -> str:
    return info.subjects[int(s)] if int(s) < len(info.subjects) else str(int(s))


def _validation_subjects(info: FileInfo, train_mask: np.ndarray, fold: int, fraction: float) -> np.ndarray:
    """Subject indices of the inner validation part of a fold's training samples (see :func:`make_split`)."""
    rows = np.flatnonzero(train_mask & centre_mask(info))          # one row per face
    subj, label = info.subject[rows].astype(np.int64), info.label[rows].astype(np.int64)
    n_parts = max(2, round(1 / fraction))
    n_subjects = len(np.unique(subj))
    if n_subjects < n_parts:
        raise FoldError(info.path, f"data.val_fraction={fraction:g}: fold {fold} has {n_subjects} training "
                                   f"subjects, too few to hold out 1 in {n_parts}")
    parts = stratified_subject_folds(subj, label, n_parts, zlib.crc32(f"val/{fold}".encode()) & 0x7FFFFFFF)
    return np.flatnonzero(parts == 0)


def all_labelled_split(info: FileInfo, cfg: DeganConfig | None = None) -> FoldSplit:
    """Every labelled sample as training data, identities numbered over all of them (pre-training
    on another file; fold -1, no test set beyond one sample); ``cfg`` decides the epoch's views
    (:func:`training_views`; none given: one item per sample)."""
    labelled = np.flatnonzero(info.label >= 0)
    subj = np.unique(info.subject[labelled])
    identity = np.full(info.n_samples, -1, np.int64)
    for i, s in enumerate(subj):
        identity[info.subject == s] = i
    return FoldSplit(-1, 0, labelled, labelled[:1], identity, [info.subjects[int(s)] for s in subj],
                     views=training_views(info, cfg))
