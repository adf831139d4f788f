"""What training needs to know about a facekit file, read once (no image data).

Two kinds of file arrive here:

* prepared with the paper's 110x augmentation (``augment="paper"`` attribute):
  ``samples/image`` holds (N, P, P[, 3]) patches with their ``patch``, ``angle``
  and ``flip`` columns;
* prepared with ``--augment none``: ``samples/image`` holds the aligned canvas
  (N, C, C[, 3]) and the ``face_box`` attribute says where the face is.

Where the network's input is cut from a sample (face box, patch size) is decided by
:func:`facekit.augment.sample_geometry` from the file's metadata (:meth:`FileInfo.geometry`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facekit.augment import SampleGeometry, sample_geometry
from facekit.store import open_facekit

__all__ = ["FileInfo", "read_file_info"]


@dataclass
class FileInfo:
    """A facekit file's metadata and per-sample columns.

    Arrays are per sample (N,): ``label`` int16, ``subject`` int32, ``face`` int32,
    ``patch`` int8, ``angle`` float32, ``flip`` uint8; ``fold`` int16 or None.
    ``file_face_box`` and ``file_patch_size`` are the file's attributes as recorded
    (see :meth:`geometry` for what is used).
    """

    path: Path
    dataset: str
    label_names: list[str]
    subjects: list[str]
    augment: str                    # "paper" or "none"
    image_shape: tuple[int, ...]    # one sample: (H, W) or (H, W, 3)
    file_face_box: tuple[int, int, int]
    file_patch_size: int
    label: np.ndarray
    subject: np.ndarray
    face: np.ndarray
    patch: np.ndarray
    angle: np.ndarray
    flip: np.ndarray
    fold: np.ndarray | None
    fold_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.label.shape[0])

    @property
    def channels(self) -> int:
        return 3 if len(self.image_shape) == 3 else 1

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @property
    def k(self) -> int:
        if self.fold is None:
            return 0
        k = self.fold_attrs.get("k")
        return int(k) if k is not None else int(self.fold.max()) + 1

    @property
    def stored_augmentation(self) -> bool:
        """True for files holding the paper's augmented copies (patch >= 0)."""
        return bool(self.augment != "none" and self.n_samples and (self.patch >= 0).any())

    @property
    def image_bytes(self) -> int:
        return int(self.n_samples * np.prod(self.image_shape))

    def geometry(self, patch_size: int = 0) -> SampleGeometry:
        """The samples' face box and the patch side a network sees (``patch_size`` > 0: asked for,
        at most the face box; ignored for stored patches). See :func:`facekit.augment.sample_geometry`."""
        return sample_geometry(self.image_shape, self.file_face_box, self.file_patch_size,
                               stored_patches=self.stored_augmentation, patch_override=patch_size)

    @property
    def face_box(self) -> tuple[int, int, int]:
        """``(x, y, size)`` of the face box in the aligned canvas (the stored landmarks' frame)."""
        return self.geometry().face_box


def read_file_info(path: str | os.PathLike) -> FileInfo:
    """Open and validate ``path`` (raises ``NotAFacekitFileError``) and read its columns."""
    with open_facekit(path) as fk:
        return FileInfo(
            path=Path(path), dataset=fk.dataset, label_names=fk.label_names, subjects=fk.subjects,
            augment=fk.augment, image_shape=tuple(int(s) for s in fk.images.shape[1:]),
            file_face_box=fk.face_box, file_patch_size=fk.patch_size,
            label=fk.column("samples/label"), subject=fk.column("samples/subject"),
            face=fk.column("samples/face"), patch=fk.column("samples/patch"), angle=fk.column("samples/angle"),
            flip=fk.column("samples/flip"), fold=fk.folds, fold_attrs=fk.fold_attrs)
