"""Opening and validating facekit HDF5 files."""
from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import DamagedPartError, NotAFacekitFileError
from . import schema

__all__ = ["FacekitFile", "open_facekit", "check_facekit_file", "verify_parts", "part_files"]

_REMEDY = "make it again: run the same `facekit prepare ... --resume` (it rewrites damaged parts)"


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
    for name in schema.VIRTUAL:
        if name not in h5:
            raise NotAFacekitFileError(path, f"incomplete facekit file: {name} is missing")
    parts = part_files(h5, path)
    missing = sorted(rel for rel, p in parts.items() if not p.exists())
    if missing:
        raise NotAFacekitFileError(
            path, f"{len(missing)} part file(s) missing, e.g. {missing[0]}; keep the .parts folder next to the file")
    records = _part_records(h5, path)
    for rel, p in parts.items():
        rec = records.get(rel)
        if rec is not None and rec.get("bytes") is not None:
            size = p.stat().st_size
            if size != int(rec["bytes"]):
                raise DamagedPartError(p, f"damaged part file: {size} bytes where {path} recorded {rec['bytes']} "
                                          f"(truncated or overwritten); {_REMEDY}")
        else:                                  # written before sizes were recorded: let HDF5 check its end
            try:
                h5py.File(p, "r").close()
            except OSError as exc:
                raise DamagedPartError(p, f"damaged part file: cannot be opened as HDF5 "
                                          f"({_hdf5_reason(exc)}); {_REMEDY}") from None


def part_files(h5: h5py.File, path: str | os.PathLike) -> dict[str, Path]:
    """The part files behind ``h5``'s virtual datasets: name as stored -> path (relative
    names resolved against the folder of ``path``), in first-use order."""
    base = Path(path).resolve().parent
    out: dict[str, Path] = {}
    for name in schema.VIRTUAL:
        ds = h5[name]
        if ds.is_virtual:
            for src in ds.virtual_sources():
                if src.file_name != "." and src.file_name not in out:
                    p = Path(src.file_name)
                    out[src.file_name] = p if p.is_absolute() else base / p
    return out


def _part_records(h5: h5py.File, path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    raw = h5.attrs.get("parts")
    if raw is None:
        return {}
    try:
        recs = json.loads(raw)
        return {str(r["file"]): r for r in recs}
    except (ValueError, TypeError, KeyError) as exc:
        raise NotAFacekitFileError(path, f"attribute 'parts' is not a valid part list ({exc})") from None


def _hdf5_reason(exc: BaseException) -> str:
    """The useful part of an h5py error (``truncated file: eof = ...``)."""
    text = str(exc)
    for key in ("truncated file", "file signature not found", "bad object header", "wrong B-tree signature"):
        if key in text:
            i = text.index(key)
            return text[i:].split(")")[0].strip()
    return text.strip().splitlines()[-1][:200] if text.strip() else type(exc).__name__


def verify_parts(source: "FacekitFile | str | os.PathLike",
                 progress: "Any | None" = None) -> list[tuple[str, str]]:
    """Check every part file of a facekit file completely (``facekit info --check``):
    its size and CRC-32 against what the file recorded (files written before these were
    recorded: the size check is skipped), that HDF5 opens it, and that every dataset in
    it reads to the end. Returns ``(part path, problem)`` pairs; empty when all is well.

    ``progress(n_bytes)`` is called as parts are hashed.
    """
    f = source if isinstance(source, FacekitFile) else None
    if f is None:
        h5 = h5py.File(Path(source), "r")
        path = Path(source)
    else:
        h5, path = f.h5, f.path
    problems: list[tuple[str, str]] = []
    try:
        records = _part_records(h5, path)
        for rel, p in part_files(h5, path).items():
            rec = records.get(rel, {})
            if not p.exists():
                problems.append((str(p), "missing"))
                continue
            size = p.stat().st_size
            if rec.get("bytes") is not None and size != int(rec["bytes"]):
                problems.append((str(p), f"{size} bytes where {rec['bytes']} were recorded (truncated or changed)"))
                continue
            if rec.get("crc32") is not None:
                crc = 0
                with open(p, "rb") as fh:
                    while block := fh.read(1 << 22):
                        crc = zlib.crc32(block, crc)
                        if progress is not None:
                            progress(len(block))
                if crc != int(rec["crc32"]):
                    problems.append((str(p), "CRC-32 differs from the recorded one (the bytes changed)"))
                    continue
            elif progress is not None:
                progress(size)
            try:
                with h5py.File(p, "r") as part:
                    _read_all(part)
            except (OSError, RuntimeError, ValueError, KeyError) as exc:
                problems.append((str(p), f"cannot be read ({_hdf5_reason(exc)})"))
    finally:
        if f is None:
            h5.close()
    return problems


def _read_all(group: h5py.Group) -> None:
    """Read every dataset of ``group`` (chunk by chunk along the first axis)."""
    for item in group.values():
        if isinstance(item, h5py.Group):
            _read_all(item)
            continue
        if item.shape == ():
            item[()]
            continue
        if item.shape is None or item.size == 0:
            continue
        step = max(1, (item.chunks or item.shape)[0] * 16)
        for i in range(0, item.shape[0], step):
            item[i:i + step]


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
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except (ValueError, TypeError) as exc:
            raise NotAFacekitFileError(self.path, f"attribute {key!r} is not valid JSON ({exc})") from None

    def _attr_json_as(self, key: str, kind: type, default: Any) -> Any:
        value = self._attr_json(key, default)
        if not isinstance(value, kind):
            raise NotAFacekitFileError(self.path, f"attribute {key!r} is not a JSON {kind.__name__}")
        return value

    @property
    def dataset(self) -> str:
        return str(self.h5.attrs.get("dataset", ""))

    @property
    def schema_version(self) -> int:
        return int(self.h5.attrs["schema_version"])

    @property
    def label_names(self) -> list[str]:
        names = self._attr_json_as("label_names", list, [])
        if not all(isinstance(n, str) for n in names):
            raise NotAFacekitFileError(self.path, "attribute 'label_names' is not a JSON list of strings")
        return names

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._attr_json_as("config", dict, {}))

    @property
    def counts(self) -> dict[str, Any]:
        return dict(self._attr_json_as("counts", dict, {}))

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
            raise NotAFacekitFileError(self.path, f"incomplete facekit file: {name} is missing")
        ds = self.h5[name]
        data = self._data(name)
        if h5py.check_string_dtype(ds.dtype) is not None:
            return np.array(_decode(data), dtype=object)
        return data

    def _data(self, name: str) -> Any:
        if name not in self.h5:
            raise NotAFacekitFileError(self.path, f"incomplete facekit file: {name} is missing")
        return self.h5[name][()]

    @property
    def subjects(self) -> list[str]:
        return _decode(self._data(schema.SUBJECTS))

    @property
    def sequences(self) -> list[str]:
        return _decode(self._data(schema.SEQUENCES))

    @property
    def rejects(self) -> list[tuple[str, str]]:
        return list(zip(_decode(self._data("rejects/path")), _decode(self._data("rejects/reason"))))

    # head pose and blendshapes (schema version 2; absent from version-1 files) ---
    @property
    def has_pose(self) -> bool:
        """Whether ``faces/pose`` is stored (files of schema version 1, or prepared without
        pose and blendshapes, have none)."""
        return "faces/pose" in self.h5

    @property
    def has_blendshapes(self) -> bool:
        """Whether ``faces/blendshapes`` is stored."""
        return "faces/blendshapes" in self.h5

    @property
    def pose(self) -> np.ndarray | None:
        """``(F, 3)`` float32 pitch, yaw, roll in degrees per aligned face (the convention
        of :mod:`facekit.detect.face`), or ``None`` when the file has none. A sample's
        face is ``samples/face``; mirrored samples show the opposite yaw and roll."""
        return self._data("faces/pose") if self.has_pose else None

    @property
    def blendshapes(self) -> np.ndarray | None:
        """``(F, 52)`` float32 blendshape scores (0..1) per aligned face, columns in
        :attr:`blendshape_names` order, or ``None`` when the file has none."""
        return self._data("faces/blendshapes") if self.has_blendshapes else None

    @property
    def blendshape_names(self) -> list[str] | None:
        """The 52 column names of :attr:`blendshapes` (MediaPipe's), or ``None``."""
        if not self.has_blendshapes:
            return None
        raw = self.h5["faces/blendshapes"].attrs.get("names")
        try:
            names = json.loads(raw)
        except (TypeError, ValueError):
            names = None
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise NotAFacekitFileError(self.path, "attribute 'names' of faces/blendshapes is not a JSON list of "
                                                  "strings")
        return names

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
