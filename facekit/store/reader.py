"""Opening and validating facekit HDF5 files."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import NotAFacekitFileError
from . import schema

__all__ = ["FacekitFile", "open_facekit", "check_facekit_file"]


def _decode(values: np.ndarray) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def check_facekit_file(h5: h5py.File, path: str | os.PathLike) -> None:
    """Raise :class:`NotAFacekitFileError` unless ``h5`` is a complete facekit file."""
    kind = h5.attrs.get("facekit_schema")
    if kind == schema.PART_SCHEMA_NAME:
        raise NotAFacekitFileError(path, "is a part file; open the out.h5 file that the parts belong to")
    if kind != schema.SCHEMA_NAME:
        raise NotAFacekitFileError(
            path, "not a facekit file (no facekit_schema attribute); was it written by another tool? "
                  "Create one with `facekit prepare`")
    version = int(h5.attrs.get("schema_version", 0))
    if version > schema.SCHEMA_VERSION:
        raise NotAFacekitFileError(
            path, f"schema version {version} is newer than this facekit reads ({schema.SCHEMA_VERSION}); upgrade facekit")
    base = Path(path).resolve().parent
    missing: list[str] = []
    for name in schema.VIRTUAL:
        if name not in h5:
            raise NotAFacekitFileError(path, f"incomplete facekit file: {name} is missing")
        ds = h5[name]
        if ds.is_virtual:
            for src in ds.virtual_sources():
                p = Path(src.file_name)
                if src.file_name != "." and not (p if p.is_absolute() else base / p).exists():
                    missing.append(src.file_name)
    if missing:
        uniq = sorted(set(missing))
        raise NotAFacekitFileError(
            path, f"{len(uniq)} part file(s) missing, e.g. {uniq[0]}; keep the .parts folder next to the file")


class FacekitFile:
    """A validated facekit HDF5 file (read-only unless ``mode='r+'``).

    Columns are read lazily with :meth:`column`; images stay on disk
    (:attr:`images` is the h5py dataset).
    """

    def __init__(self, path: str | os.PathLike, mode: str = "r") -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise NotAFacekitFileError(self.path, "file does not exist")
        try:
            self.h5 = h5py.File(self.path, mode)
        except OSError as exc:
            reason = "not an HDF5 file" if "signature" in str(exc).lower() else f"cannot be opened as HDF5 ({exc})"
            raise NotAFacekitFileError(self.path, reason) from None
        try:
            check_facekit_file(self.h5, self.path)
        except BaseException:
            self.h5.close()
            raise

    # attributes ---------------------------------------------------------------
    def _attr_json(self, key: str, default: Any = None) -> Any:
        raw = self.h5.attrs.get(key)
        return default if raw is None else json.loads(raw)

    @property
    def dataset(self) -> str:
        return str(self.h5.attrs.get("dataset", ""))

    @property
    def schema_version(self) -> int:
        return int(self.h5.attrs["schema_version"])

    @property
    def label_names(self) -> list[str]:
        return list(self._attr_json("label_names", []))

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._attr_json("config", {}))

    @property
    def counts(self) -> dict[str, Any]:
        return dict(self._attr_json("counts", {}))

    @property
    def augment(self) -> str:
        return str(self.h5.attrs.get("augment", "none"))

    @property
    def face_box(self) -> tuple[int, int, int]:
        """``(x, y, size)`` of the face box inside each ``faces/image`` canvas."""
        return tuple(int(v) for v in self._attr_json("face_box", [0, 0, 0]))  # type: ignore[return-value]

    @property
    def patch_size(self) -> int:
        return int(self.h5.attrs.get("patch_size", 0))

    # arrays -------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.h5["samples/image"].shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.h5["faces/image"].shape[0])

    @property
    def images(self) -> h5py.Dataset:
        """``samples/image``: (N, P, P[, 3]) uint8, on disk."""
        return self.h5["samples/image"]

    def column(self, name: str) -> np.ndarray:
        """Read a whole column, e.g. ``"samples/label"``; strings come back as ``list[str]``."""
        if name not in self.h5:
            raise KeyError(f"{self.path}: no dataset {name!r}")
        ds = self.h5[name]
        data = ds[()]
        if h5py.check_string_dtype(ds.dtype) is not None:
            return np.array(_decode(data), dtype=object)
        return data

    @property
    def subjects(self) -> list[str]:
        return _decode(self.h5[schema.SUBJECTS][()])

    @property
    def sequences(self) -> list[str]:
        return _decode(self.h5[schema.SEQUENCES][()])

    @property
    def rejects(self) -> list[tuple[str, str]]:
        return list(zip(_decode(self.h5["rejects/path"][()]), _decode(self.h5["rejects/reason"][()])))

    @property
    def has_folds(self) -> bool:
        return f"{schema.FOLDS}/fold" in self.h5

    @property
    def folds(self) -> np.ndarray | None:
        return self.h5[f"{schema.FOLDS}/fold"][()] if self.has_folds else None

    @property
    def fold_attrs(self) -> dict[str, Any]:
        if schema.FOLDS not in self.h5:
            return {}
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.h5[schema.FOLDS].attrs.items()}

    # lifecycle ----------------------------------------------------------------
    def close(self) -> None:
        self.h5.close()

    def __enter__(self) -> "FacekitFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FacekitFile({str(self.path)!r}, dataset={self.dataset!r}, samples={self.n_samples})"


def open_facekit(path: str | os.PathLike, mode: str = "r") -> FacekitFile:
    """Open and validate a facekit file.

    Raises:
        NotAFacekitFileError: missing, not HDF5, written by another tool, a part
            file, a newer schema, or part files missing.
    """
    return FacekitFile(path, mode)
