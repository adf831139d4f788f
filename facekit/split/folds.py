"""Subject-disjoint, expression-stratified k-fold cross-validation folds.

The protocol: no subject appears in two folds, so every sample of a subject
(every frame, every augmented copy) lands in one fold, and each fold's class
mix is kept as close to the whole dataset's as the subjects allow.

How the stratification is computed
----------------------------------
Folds are made with scikit-learn's :class:`~sklearn.model_selection.StratifiedGroupKFold`
(groups = subjects, classes = expressions, ``shuffle=True``,
``random_state=seed``). Its greedy assignment looks at nothing but the matrix
``C[s, c]`` = number of *samples* of subject ``s`` with class ``c``: it places
subjects one by one into the fold that keeps the per-class proportions most even
across folds. Class balance is therefore measured in samples, which is what a
classifier trains on; a subject with many frames or augmented copies weighs
accordingly.

Passing all N samples (100k+ with the paper's 110-fold augmentation) works but
costs Python loops over every row (about 1 s per million samples at k=10, more
for large k). Since the objective only compares proportions, which do not change
when every count is divided by the same number, we pass one row per ``g``
samples, where ``g`` is the greatest common divisor of the non-zero entries of
``C`` (for CK+48 with 3 frames per sequence and 110 samples per face, g = 330:
981 faces become 327 rows, one per sequence). Every face has the same number of samples in files
that ``facekit prepare`` writes, so this is also what running over faces would
give; if sample counts per face were uneven, ``g`` may be 1 and the rows are the
samples themselves: still sample-weighted, only slower. Rows are repeated when
needed so that the largest class has at least k rows (scikit-learn refuses
fewer; repetition does not change proportions either).

The objective is the same as a run over all samples, but equally good
placements can be tie-broken differently (floating-point rounding), so the
exact folds differ from such a run; the balance does not (CK+48, k=10, 30
seeds: largest class-share deviation 3.45 points on average here, 3.42 over all
samples). Folds are reproducible for the same file, k, seed and scikit-learn
version; they are stored in the file, so training never recomputes them.

``k`` equal to the number of subjects gives leave-one-subject-out: subject ``i``
(in ``/subjects`` order) is fold ``i``; the seed plays no part.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._version import __version__
from ..errors import FileError, OutputExistsError
from ..store import FacekitFile, atomic_output, lock_output, open_facekit, schema

__all__ = ["FoldAssignment", "FoldsError", "make_folds", "write_folds", "read_folds", "create_folds",
           "export_folds_csv", "stratified_subject_folds", "METHOD_SGKF", "METHOD_LOSO"]

METHOD_SGKF = "StratifiedGroupKFold"
METHOD_LOSO = "LeaveOneSubjectOut"
_MAX_K = int(np.iinfo(np.int16).max)


class FoldsError(FileError):
    """Folds cannot be made for, or stored in, this file (names the file and why)."""


@dataclass(frozen=True)
class FoldAssignment:
    """Folds of one facekit file, with the counts needed to judge them.

    Attributes:
        path: the file the folds belong to.
        fold: ``(N,)`` int16, fold of every sample (0 .. k-1), in sample order.
        subject_fold: ``(S,)`` int16, fold of every subject in ``/subjects``
            order; -1 for a subject with no samples.
        subjects: ``(S,)`` subject names.
        class_names: names of the columns of ``class_counts``: the classes that
            occur, in label order, with ``"unlabelled"`` last if label -1 occurs.
        class_counts: ``(k, C)`` int64, samples per fold and class.
        subjects_per_class: ``(C,)`` int64, how many subjects have samples of
            each class (a class with fewer subjects than k cannot be in every fold).
        samples_per_subject: ``(S,)`` int64.
        k, seed, method: how the folds were made.
        created: ISO 8601 time the folds were made.
        split_subjects: subjects whose samples lie in more than one fold; always
            empty for folds made here, filled when reading folds that another
            tool wrote so the leak can be reported.
    """

    path: Path
    fold: np.ndarray
    subject_fold: np.ndarray
    subjects: list[str]
    class_names: list[str]
    class_counts: np.ndarray
    subjects_per_class: np.ndarray
    samples_per_subject: np.ndarray
    k: int
    seed: int | None
    method: str
    created: str
    split_subjects: list[str] = field(default_factory=list)

    # derived ------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.fold.shape[0])

    @property
    def samples_per_fold(self) -> np.ndarray:
        """``(k,)`` int64."""
        return self.class_counts.sum(axis=1)

    @property
    def subjects_per_fold(self) -> list[list[str]]:
        """Subject names in each fold, in ``/subjects`` order."""
        out: list[list[str]] = [[] for _ in range(self.k)]
        for name, f in zip(self.subjects, self.subject_fold):
            if 0 <= f < self.k:
                out[int(f)].append(name)
        return out

    @property
    def class_proportions(self) -> np.ndarray:
        """``(k, C)`` float64: share of each class within each fold (rows sum to 1)."""
        n = self.samples_per_fold[:, None].astype(np.float64)
        return np.divide(self.class_counts, n, out=np.zeros(self.class_counts.shape), where=n > 0)

    @property
    def overall_proportions(self) -> np.ndarray:
        """``(C,)`` float64: share of each class in the whole file."""
        total = self.class_counts.sum(axis=0).astype(np.float64)
        return total / max(1.0, total.sum())

    def max_deviation(self) -> tuple[float, int, str]:
        """Largest ``|fold share - overall share|`` of any class (a fraction, 0.02 = 2 points).

        Returns ``(deviation, fold, class name)``.
        """
        dev = np.abs(self.class_proportions - self.overall_proportions[None, :])
        if dev.size == 0:
            return 0.0, 0, ""
        f, c = np.unravel_index(int(np.argmax(dev)), dev.shape)
        return float(dev[f, c]), int(f), self.class_names[c]

    def sparse_classes(self) -> list[tuple[str, int]]:
        """Classes held by fewer subjects than there are folds: ``(name, subjects)``."""
        return [(n, int(s)) for n, s in zip(self.class_names, self.subjects_per_class) if s < self.k]

    # storage ------------------------------------------------------------------
    def attrs(self) -> dict[str, Any]:
        """Attributes stored on the ``/folds`` group (JSON strings for lists)."""
        dev, dev_fold, dev_class = self.max_deviation()
        return {
            "k": self.k,
            "seed": -1 if self.seed is None else self.seed,
            "method": self.method,
            "created": self.created,
            "facekit_version": __version__,
            "stratify": "samples",
            "n_samples": self.n_samples,
            "subjects": json.dumps(self.subjects_per_fold),
            "samples_per_fold": json.dumps([int(x) for x in self.samples_per_fold]),
            "class_names": json.dumps(self.class_names),
            "class_counts": json.dumps(self.class_counts.tolist()),
            "max_class_deviation": dev,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``facekit folds --json``): ``file, k, seed (int or null), method,
        created, samples, subjects, class_names, max_class_deviation (fraction),
        split_subjects, folds: [{fold, subjects [names], samples, samples_per_class {name: n}}]``."""
        dev, _, _ = self.max_deviation()
        return {
            "file": str(self.path), "k": self.k, "seed": self.seed, "method": self.method,
            "created": self.created, "samples": self.n_samples,
            "subjects": int(np.count_nonzero(self.subject_fold >= 0)), "class_names": list(self.class_names),
            "max_class_deviation": round(dev, 6), "split_subjects": list(self.split_subjects),
            "folds": [{"fold": i, "subjects": subs, "samples": int(n),
                       "samples_per_class": dict(zip(self.class_names, (int(c) for c in cc)))}
                      for i, (subs, n, cc) in enumerate(zip(self.subjects_per_fold, self.samples_per_fold,
                                                            self.class_counts))],
        }

    def format_table(self) -> str:
        """Human-readable table: per fold, subjects, samples and samples per class."""
        head = ["fold", "subjects", "samples", *self.class_names]
        rows = [[str(i), str(len(s)), str(int(n)), *(str(int(c)) for c in cc)]
                for i, (s, n, cc) in enumerate(zip(self.subjects_per_fold, self.samples_per_fold,
                                                   self.class_counts))]
        n_subj = int(np.count_nonzero(self.subject_fold >= 0))
        total = self.class_counts.sum(axis=0)
        rows.append(["all", str(n_subj), str(int(total.sum())), *(str(int(c)) for c in total)])
        rows.append(["share", "", "", *(f"{100 * p:.1f}%" for p in self.overall_proportions)])
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
        for i, r in enumerate(rows):
            if i == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
            lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths)))
        dev, f, c = self.max_deviation()
        seed = "" if self.method == METHOD_LOSO or self.seed is None else f", seed {self.seed}"
        lines.insert(0, f"{self.k} folds ({self.method}{seed}) over {n_subj} subjects, "
                        f"{self.n_samples} samples")
        if self.method == METHOD_LOSO:
            lines.append("leave-one-subject-out: each fold is one subject, so class shares are not balanced")
            return "\n".join(lines)
        lines.append(f"largest deviation of a class share from the whole: {100 * dev:.1f} points "
                     f"(fold {f}, {c})")
        for name, n in self.sparse_classes():
            lines.append(f"note: {name} is held by {n} subject(s) only, so {self.k - n} or more folds "
                         f"have no {name} samples")
        for name in self.split_subjects[:5]:
            lines.append(f"WARNING: subject {name} has samples in more than one fold")
        return "\n".join(lines)


# building ---------------------------------------------------------------------
@contextmanager
def _opened(source: FacekitFile | str | os.PathLike) -> Iterator[FacekitFile]:
    if isinstance(source, FacekitFile):
        yield source
    else:
        with open_facekit(source) as f:
            yield f


def _class_columns(label: np.ndarray, label_names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Map labels to dense class columns; returns ``(column per sample, names)``."""
    values, inv = np.unique(label, return_inverse=True)
    names = [schema.label_name(v, label_names) for v in values.tolist()]
    if values.size and values[0] < 0:  # unlabelled (-1) sorts first; show it last
        order = np.r_[np.arange(1, len(values)), 0]
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        inv, names = rank[inv], [names[i] for i in order]
    return inv.astype(np.int64).ravel(), names


def _read_columns(f: FacekitFile) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(subject (N,), label (N,), subject names)``; refuses files without subject ids."""
    if "samples/subject" not in f.h5 or schema.SUBJECTS not in f.h5:
        raise FoldsError(f.path, "has no subject ids (no samples/subject column); "
                                 "subject-disjoint folds need them")
    subjects = f.subjects
    subj = f.column("samples/subject").astype(np.int64)
    label = f.column("samples/label").astype(np.int64)
    if subj.size == 0:
        raise FoldsError(f.path, "has no samples, so there is nothing to split into folds")
    if not subjects or all(not s.strip() for s in subjects):
        raise FoldsError(f.path, "has no subject ids (all subject names are empty); prepare it with subject "
                                 "ids (e.g. --subject-regex) to make subject-disjoint folds")
    config = f.config
    if config.get("dataset") == "folder" and not (config.get("options") or {}).get("subject_regex"):
        raise FoldsError(f.path, "has no subject ids: it was prepared with the folder adapter without "
                                 "--subject-regex, so every sequence counts as its own subject; prepare it "
                                 "again with --subject-regex (e.g. '^(S\\d+)_') for subject-disjoint folds")
    if subj.min() < 0 or subj.max() >= len(subjects):
        bad = int(np.count_nonzero((subj < 0) | (subj >= len(subjects))))
        raise FoldsError(f.path, f"{bad} sample(s) have no valid subject id (samples/subject outside "
                                 f"0..{len(subjects) - 1}); subject-disjoint folds need one for every sample")
    return subj, label, subjects


def _summarise(path: Path, fold: np.ndarray, subj: np.ndarray, label: np.ndarray, subjects: list[str],
               label_names: list[str], *, k: int, seed: int | None, method: str, created: str) -> FoldAssignment:
    cls, class_names = _class_columns(label, label_names)
    n_cls = len(class_names)
    counts = np.zeros((k, n_cls), np.int64)
    ok = (fold >= 0) & (fold < k)
    np.add.at(counts, (fold[ok].astype(np.int64), cls[ok]), 1)
    pairs = np.unique(np.stack([subj, cls]), axis=1) if subj.size else np.zeros((2, 0), np.int64)
    subjects_per_class = np.bincount(pairs[1], minlength=n_cls).astype(np.int64)
    # fold of each subject: its samples' fold; -1 if it has none
    subject_fold = np.full(len(subjects), -1, np.int16)
    sf_pairs = np.unique(np.stack([subj, fold.astype(np.int64)]), axis=1)
    subject_fold[sf_pairs[0]] = sf_pairs[1]
    per_subject = np.bincount(sf_pairs[0], minlength=len(subjects))
    split = [subjects[i] for i in np.flatnonzero(per_subject > 1)]
    return FoldAssignment(
        path=Path(path), fold=fold.astype(np.int16), subject_fold=subject_fold, subjects=list(subjects),
        class_names=class_names, class_counts=counts, subjects_per_class=subjects_per_class,
        samples_per_subject=np.bincount(subj, minlength=len(subjects)).astype(np.int64),
        k=k, seed=seed, method=method, created=created, split_subjects=split)


def stratified_subject_folds(subj: np.ndarray, cls: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Subject-disjoint, class-stratified folds (StratifiedGroupKFold, as described above).

    Args:
        subj: ``(N,)`` non-negative int subject index of every sample.
        cls: ``(N,)`` non-negative int class of every sample.
        k: number of folds (at most the number of distinct subjects).
        seed: ``random_state`` of the shuffling.

    Returns:
        ``(max(subj) + 1,)`` int64: the fold (0 .. k-1) of every subject index present in
        ``subj``, -1 for the others.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    present, s_inv = np.unique(subj, return_inverse=True)
    n_cls = int(cls.max()) + 1
    counts = np.zeros((len(present), n_cls), np.int64)  # C[s, c]: samples of subject s in class c
    np.add.at(counts, (s_inv.ravel(), cls), 1)
    # Same proportions with fewer rows: divide by the gcd of all non-zero counts ...
    units = counts // int(np.gcd.reduce(counts[counts > 0]))
    # ... but keep at least k rows in the largest class (scikit-learn refuses fewer).
    units *= max(1, math.ceil(k / int(units.sum(axis=0).max())))
    row_subject = np.repeat(np.repeat(np.arange(len(present)), n_cls), units.ravel())
    row_class = np.repeat(np.tile(np.arange(n_cls), len(present)), units.ravel())
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    local = np.full(len(present), -1, np.int64)
    with warnings.catch_warnings():
        # "least populated class has only n members": about our compact rows, not
        # about subjects; sparse classes are reported by FoldAssignment instead.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for i, (_, test) in enumerate(splitter.split(np.zeros((len(row_class), 1)), row_class, row_subject)):
            local[np.unique(row_subject[test])] = i
    out = np.full(int(subj.max()) + 1, -1, np.int64)
    out[present] = local
    return out


def make_folds(source: FacekitFile | str | os.PathLike, k: int = 10, seed: int = 0) -> FoldAssignment:
    """Compute subject-disjoint, expression-stratified folds for a facekit file.

    Args:
        source: an open :class:`FacekitFile` or the path of one.
        k: number of folds, 2 .. number of subjects; equal to the number of
            subjects gives leave-one-subject-out.
        seed: random state of the shuffle (same file, k and seed -> same folds).

    Returns:
        A :class:`FoldAssignment`; nothing is written (see :func:`write_folds`).

    Raises:
        NotAFacekitFileError: ``source`` is not a (complete) facekit file.
        FoldsError: k < 2, k larger than the number of subjects, no subject ids,
            no samples, or StratifiedGroupKFold left a fold empty.
    """
    with _opened(source) as f:
        path = f.path
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise FoldsError(path, f"k must be an integer (got {k!r})")
        k = int(k)
        if k < 2:
            raise FoldsError(path, f"k must be at least 2 (got k={k}); cross-validation needs two folds or more")
        subj, label, subjects = _read_columns(f)
        label_names = f.label_names
    n_subjects = int(np.unique(subj).size)
    if k > n_subjects:
        raise FoldsError(path, f"k={k} is larger than the number of subjects ({n_subjects}); subject-disjoint "
                               f"folds allow at most k={n_subjects} (leave-one-subject-out)")
    if k > _MAX_K:
        raise FoldsError(path, f"k={k} does not fit the int16 fold column (at most {_MAX_K})")
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    if k == n_subjects:
        present = np.unique(subj)
        subject_fold = np.full(int(subj.max()) + 1, -1, np.int64)
        subject_fold[present] = np.arange(len(present))
        method = METHOD_LOSO
    else:
        cls, _ = _class_columns(label, label_names)
        subject_fold = stratified_subject_folds(subj, cls, k, int(seed))
        method = METHOD_SGKF
    fold = subject_fold[subj]
    a = _summarise(path, fold, subj, label, subjects, label_names, k=k, seed=int(seed), method=method,
                   created=created)
    empty = [i for i, n in enumerate(a.samples_per_fold) if n == 0]
    if empty:  # not seen in practice with k < subjects, but never store an empty fold
        raise FoldsError(path, f"StratifiedGroupKFold left fold {empty[0]} empty with k={k}; use a smaller k "
                               "or another --seed")
    return a


def read_folds(source: FacekitFile | str | os.PathLike) -> FoldAssignment | None:
    """The folds stored in a file, with their counts, or ``None`` if it has none."""
    with _opened(source) as f:
        if not f.has_folds:
            return None
        fold = np.asarray(f.folds).astype(np.int64)
        attrs = f.fold_attrs
        subj, label, subjects = _read_columns(f)
        label_names = f.label_names
        path = f.path
    if fold.shape != subj.shape:
        raise FoldsError(path, f"/folds/fold has {fold.size} entries but the file has {subj.size} samples; "
                               "make the folds again with --force")
    k = int(attrs.get("k", int(fold.max()) + 1 if fold.size else 0))
    seed = attrs.get("seed")
    return _summarise(path, fold, subj, label, subjects, label_names, k=k,
                      seed=None if seed is None or int(seed) < 0 else int(seed),
                      method=str(attrs.get("method", "unknown")), created=str(attrs.get("created", "")))


def write_folds(path: str | os.PathLike, assignment: FoldAssignment, *, force: bool = False) -> Path:
    """Store ``assignment`` in ``path`` as ``/folds/fold`` plus ``/folds`` attributes.

    The file is never modified in place: it is copied to a temporary file in the
    same folder (the virtual image datasets refer to ``out.h5.parts/`` by
    relative path, so the copy stays valid), the folds are written into the copy,
    the copy is checked, and it replaces ``path`` by an atomic rename. An
    interruption at any point leaves ``path`` exactly as it was.

    The file is locked meanwhile (``FILE.lock``, as ``facekit prepare`` locks
    its output), so folds are never written into a file that a prepare run is
    replacing.

    Raises:
        NotAFacekitFileError: ``path`` is not a facekit file.
        OutputExistsError: it already has folds and ``force`` is false.
        OutputLockedError: a prepare run (or another ``folds``) holds the file.
        FoldsError: the assignment does not match the file's sample count.
    """
    path = Path(path)
    with lock_output(path, doing="folds"):
        return _write_folds(path, assignment, force)


def _write_folds(path: Path, assignment: FoldAssignment, force: bool) -> Path:
    with open_facekit(path) as f:
        if not force:
            _refuse_existing(f)
        n = f.n_samples
    if assignment.n_samples != n:
        raise FoldsError(path, f"the folds cover {assignment.n_samples} samples but the file has {n}")
    with atomic_output(path, copy_from=path) as tmp:
        shutil.copymode(path, tmp)
        values = assignment.fold.astype(schema.DTYPES["folds/fold"])
        with h5py.File(tmp, "r+") as h5:
            old = h5.get(f"{schema.FOLDS}/fold")
            if old is not None and old.shape == values.shape and old.dtype == values.dtype:
                group = h5[schema.FOLDS]  # overwrite in place: HDF5 does not reclaim deleted space
                old[...] = values
                for key in list(group.attrs):
                    del group.attrs[key]
            else:
                if schema.FOLDS in h5:
                    del h5[schema.FOLDS]
                group = h5.create_group(schema.FOLDS)
                group.create_dataset("fold", data=values)
            for key, value in assignment.attrs().items():
                group.attrs[key] = value
        with open_facekit(tmp):  # the copy must still be a complete facekit file (parts resolve)
            pass
    return path


def _refuse_existing(f: FacekitFile) -> None:
    if f.has_folds:
        a = f.fold_attrs
        raise OutputExistsError(f.path, f"already has folds (k={a.get('k')}, {a.get('method')}, created "
                                        f"{a.get('created')}); pass --force to replace them")


def export_folds_csv(assignment: FoldAssignment, csv_path: str | os.PathLike) -> Path:
    """Write ``subject,fold,samples`` (one row per subject, with header), atomically.

    Raises:
        FoldsError: the folder of ``csv_path`` does not exist.
    """
    csv_path = Path(csv_path)
    _check_export_target(csv_path)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["subject", "fold", "samples"])
    for name, fold, n in zip(assignment.subjects, assignment.subject_fold, assignment.samples_per_subject):
        if fold >= 0:
            w.writerow([name, int(fold), int(n)])
    with atomic_output(csv_path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return csv_path


def _check_export_target(csv_path: Path) -> None:
    parent = csv_path.resolve().parent
    if not parent.is_dir():
        raise FoldsError(csv_path, f"cannot write the CSV: folder {parent} does not exist")
    if csv_path.is_dir():
        raise FoldsError(csv_path, "cannot write the CSV: is a folder")


def create_folds(path: str | os.PathLike, k: int = 10, seed: int = 0, *, force: bool = False,
                 export: str | os.PathLike | None = None) -> FoldAssignment:
    """Make, store and optionally export folds: everything ``facekit folds`` does.

    Checks everything that can be refused (not a facekit file, existing folds
    without ``force``, bad k, no subjects, unwritable CSV folder) before
    anything is written.
    """
    path = Path(path)
    with open_facekit(path) as f:
        if not force:
            _refuse_existing(f)
        assignment = make_folds(f, k, seed)
    if export is not None:
        _check_export_target(Path(export))
    write_folds(path, assignment, force=force)
    if export is not None:
        export_folds_csv(assignment, export)
    return assignment
