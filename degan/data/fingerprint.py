"""What binds a run to its data: the fingerprint of a facekit file.

A :class:`DataFingerprint` holds

* ``file``: SHA-256 of the file's identity by content: its ``dataset``, ``created`` and
  ``augment`` attributes, its subject names, and the sample columns ``samples/label``,
  ``samples/subject``, ``samples/face`` and ``faces/source`` (so a copy of the file, under any
  name, has the same fingerprint, and a file prepared again, with another ``created`` time, has
  another);
* ``samples``: the number of samples;
* ``label_names``: the expression names, in label order;
* ``folds``: SHA-256 of the subject-name -> fold map (``None`` for a file without folds), so
  folds made again with another seed differ even though the file's columns do not.

``path`` is where it was read; it is recorded for the messages and never compared. The
fingerprint is recorded in a run's ``config.json`` and in every checkpoint's meta
(``pretrain.pt``: the pre-training file's), and compared by ``--resume``, ``--from-stage1``,
the reuse of ``pretrain.pt`` and ``degan-eval`` (:func:`fingerprint_mismatch`).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facekit.store import open_facekit

from .fileinfo import FileInfo

__all__ = ["DataFingerprint", "data_fingerprint", "fold_map", "fingerprint_mismatch", "recorded_fingerprint"]

#: the columns whose bytes identify a file (with the attributes in :func:`data_fingerprint`)
COLUMNS = ("samples/label", "samples/subject", "samples/face", "faces/source")

_CACHE: dict[tuple[str, int, int, int], "DataFingerprint"] = {}


@dataclass(frozen=True)
class DataFingerprint:
    """The identity of a facekit file and of its folds (see the module docstring)."""

    file: str
    samples: int
    label_names: tuple[str, ...]
    folds: str | None
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON / checkpoint form."""
        return {"file": self.file, "samples": self.samples, "label_names": list(self.label_names),
                "folds": self.folds, "path": self.path}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DataFingerprint":
        """Inverse of :meth:`to_dict`; ``ValueError`` when a field is missing or malformed."""
        try:
            return cls(str(d["file"]), int(d["samples"]), tuple(str(n) for n in d["label_names"]),
                       None if d.get("folds") is None else str(d["folds"]), str(d.get("path", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed data fingerprint ({type(exc).__name__}: {exc})") from None

    def differences(self, other: "DataFingerprint") -> list[str]:
        """What differs in ``other`` (the data now) from this (the recorded data), as phrases
        (``"folds differ (subject->fold sha 1a2b3c4d recorded, 5e6f7a8b now)"``); empty when both
        describe the same data and folds."""
        out = []
        if self.file != other.file:
            out.append(f"file content differs (sha {self.file[:8]} recorded, {other.file[:8]} now)")
        if self.samples != other.samples:
            out.append(f"sample count differs ({self.samples} recorded, {other.samples} now)")
        if self.label_names != other.label_names:
            out.append(f"label names differ ({','.join(self.label_names)} recorded, {','.join(other.label_names)} now)")
        if self.folds != other.folds:
            out.append(f"folds differ (subject->fold sha {_short(self.folds)} recorded, {_short(other.folds)} now)")
        return out


def _short(sha: str | None) -> str:
    return "none" if sha is None else sha[:8]


def fold_map(subjects: list[str], subject: np.ndarray, fold: np.ndarray) -> dict[str, list[int]]:
    """Subject name -> the sorted folds its samples are in (one fold for subject-disjoint folds)."""
    out: dict[str, set[int]] = {}
    for s, f in zip(np.asarray(subject).tolist(), np.asarray(fold).tolist()):
        name = subjects[s] if 0 <= s < len(subjects) else str(s)
        out.setdefault(name, set()).add(int(f))
    return {k: sorted(v) for k, v in sorted(out.items())}


def data_fingerprint(data: str | os.PathLike | FileInfo) -> DataFingerprint:
    """The fingerprint of a facekit file (a path, or a :class:`FileInfo` read from one).

    Reads the columns named in :data:`COLUMNS` (no image data); cached per file and
    modification time, so asking again is free.
    """
    path = Path(data.path if isinstance(data, FileInfo) else data)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _CACHE.get(key)
    if cached is not None:
        return DataFingerprint(cached.file, cached.samples, cached.label_names, cached.folds, str(path.resolve()))
    h = hashlib.sha256()
    with open_facekit(path) as fk:
        attrs = {k: str(fk.h5.attrs.get(k, "")) for k in ("dataset", "created", "augment")}
        h.update(json.dumps({**attrs, "subjects": fk.subjects}, sort_keys=True).encode())
        for name in COLUMNS:
            col = fk.column(name)
            h.update(name.encode())
            if col.dtype == object:
                h.update("\0".join(str(v) for v in col).encode())
            else:
                h.update(str(col.dtype).encode() + np.ascontiguousarray(col).tobytes())
        folds = None
        if fk.folds is not None:
            m = fold_map(fk.subjects, fk.column("samples/subject"), fk.folds)
            folds = hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()
        fp = DataFingerprint(h.hexdigest(), fk.n_samples, tuple(fk.label_names), folds, str(path.resolve()))
    _CACHE[key] = fp
    return fp


def recorded_fingerprint(record: Mapping[str, Any] | None) -> DataFingerprint | None:
    """The fingerprint a ``config.json`` or a checkpoint's meta records (``record["fingerprint"]``);
    ``None`` when it has none (written before fingerprints were recorded). ``ValueError`` when it
    is malformed."""
    fp = (record or {}).get("fingerprint")
    return None if fp is None else DataFingerprint.from_dict(fp)


def fingerprint_mismatch(recorded: DataFingerprint, current: DataFingerprint, what: str = "trained") -> str | None:
    """``None`` when ``current`` is the data ``recorded`` describes, else one phrase naming both
    files and everything that differs: ``"<current> is not the data it was <what> on (<recorded
    path>): folds differ (...)"``."""
    diffs = recorded.differences(current)
    if not diffs:
        return None
    return f"{current.path} is not the data it was {what} on ({recorded.path}): {'; '.join(diffs)}"
