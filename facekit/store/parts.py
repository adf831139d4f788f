"""Part files: what one worker writes for one slice of the work.

A part holds the aligned faces and samples of a contiguous run of sequences,
with local face indices and string subject/sequence names; :mod:`.assemble`
turns a complete set of parts into the user's ``out.h5``. A part is written to
a temporary name and renamed when complete, so a part file that exists is a
finished part.
"""
from __future__ import annotations

import json
import mmap
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import schema
from .schema import N_BLENDSHAPES
from .._fs import temp_name

__all__ = ["FaceRecord", "PartWriter", "read_part_meta", "StorageOptions", "part_file_record"]

_STR = h5py.string_dtype("utf-8")


@dataclass(frozen=True)
class StorageOptions:
    """How image arrays are chunked and compressed.

    ``chunk_samples`` is the number of samples per HDF5 chunk along axis 0;
    ``None`` picks about 1 MiB per chunk (110 grayscale 96x96 patches: one
    face's augmented set), the size that read fastest sequentially in
    ``bench/h5_layout.py``. ``compression`` is ``None`` (default: gzip-1 halves
    the size but writes at about 110 MB/s, slower than landmark detection;
    lzf saves 2%), ``"gzip"`` or ``"lzf"``; both are readable by plain h5py.
    """

    chunk_samples: int | None = None
    compression: str | None = None
    compression_level: int | None = None

    def rows_per_chunk(self, shape: tuple[int, ...]) -> int:
        if self.chunk_samples:
            return int(self.chunk_samples)
        return max(1, (1 << 20) // max(1, int(np.prod(shape))))

    def dataset_kwargs(self, shape: tuple[int, ...]) -> dict[str, Any]:
        kw: dict[str, Any] = {"chunks": (self.rows_per_chunk(shape), *shape)}
        if self.compression:
            kw["compression"] = self.compression
            if self.compression == "gzip" and self.compression_level is not None:
                kw["compression_opts"] = self.compression_level
        return kw


@dataclass
class FaceRecord:
    """One aligned face and the samples made from it.

    Shapes: ``image`` (C, C[, 3]) uint8 canvas; ``landmarks`` (478, 2) float32
    canvas pixels; ``matrix`` (2, 3) source->canvas; ``samples`` (K, P, P[, 3])
    uint8; ``sample_landmarks`` (K, 68, 2); ``patch``/``angle``/``flip`` (K,);
    ``pose`` (3,) float32 pitch, yaw, roll in degrees and ``blendshapes`` (52,)
    float32 (:mod:`facekit.detect.face`), or ``None`` when the landmarker was not
    asked for them (a :class:`PartWriter` with ``face_data`` stores NaN then).
    """

    source: str
    subject: str
    sequence: str
    label: int
    frame: int
    image: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray
    samples: np.ndarray
    sample_landmarks: np.ndarray
    patch: np.ndarray
    angle: np.ndarray
    flip: np.ndarray
    pose: np.ndarray | None = None
    blendshapes: np.ndarray | None = None


class _ImageColumn:
    """A growable image dataset; whole uncompressed chunks go straight to the file.

    Rows already in the file are counted here (``n``) rather than asked of
    HDF5, and the extent grows geometrically and is trimmed on :meth:`close`:
    per-append HDF5 metadata calls were a measurable share of a worker's time.
    The dataset is created at the first write: rows that arrive one at a time
    (the canvases) are buffered, and when the first batch is smaller than a
    chunk the chunk shrinks to it, so a part of 31 canvases does not allocate
    a 53-canvas chunk (HDF5 allocates whole chunks).
    """

    def __init__(self, group: h5py.Group, name: str, shape: tuple[int, ...], storage: StorageOptions,
                 flush_rows: int) -> None:
        self.group, self.name, self.shape, self.storage = group, name, shape, storage
        self.ds: h5py.Dataset | None = None
        self.chunk_rows = 0 if storage.compression else storage.rows_per_chunk(shape)  # direct writes
        self.buf: list[np.ndarray] = []
        self.rows = 0             # buffered
        self.n = 0                # in the file
        self.extent = 0
        self.flush_rows = flush_rows

    def _dataset(self, first_rows: int) -> h5py.Dataset:
        if self.ds is None:
            kw = self.storage.dataset_kwargs(self.shape)
            kw["chunks"] = (max(1, min(kw["chunks"][0], first_rows)), *self.shape)
            self.ds = self.group.create_dataset(self.name, shape=(0, *self.shape), maxshape=(None, *self.shape),
                                                dtype=np.uint8, **kw)
        return self.ds

    def _grow(self, rows: int) -> None:
        if rows > self.extent:
            self.extent = max(rows, 2 * self.extent)
            self.ds.resize(self.extent, axis=0)

    def append(self, rows: np.ndarray) -> None:
        if self.chunk_rows and len(rows) == self.chunk_rows and not self.buf \
                and self.n % self.chunk_rows == 0 and rows.dtype == np.uint8 \
                and (self.ds is None or self.ds.chunks[0] == self.chunk_rows):
            ds = self._dataset(len(rows))
            self._grow(self.n + len(rows))
            ds.id.write_direct_chunk((self.n,) + (0,) * len(self.shape), np.ascontiguousarray(rows))
            self.n += len(rows)
            return
        self.buf.append(rows)
        self.rows += len(rows)
        if self.rows >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        data = self.buf[0] if len(self.buf) == 1 else np.concatenate(self.buf)
        ds = self._dataset(len(data))
        self._grow(self.n + len(data))
        ds[self.n:self.n + len(data)] = data
        self.n += len(data)
        self.buf, self.rows = [], 0

    def close(self) -> None:
        self.flush()
        ds = self._dataset(self.chunk_rows or 1)
        if self.extent != self.n:
            ds.resize(self.n, axis=0)


class PartWriter:
    """Write one part file; use as a context manager.

    On normal exit the file is completed and renamed to ``path`` (atomic, not
    fsynced: see ``__exit__``); on an exception the temporary file is deleted
    and ``path`` is not created.

    With ``samples_are_faces`` (``--augment none``: one sample per face, the
    canvas itself) the images are stored once, in ``faces/image``, and the
    assembled ``samples/image`` points there.

    With ``face_data`` each face's head pose and blendshape scores are stored
    too (fields ``pose`` and ``blendshapes`` of ``faces/index``).

    Images are written as faces arrive; the other columns (a few kB per face)
    are kept in memory and written once when the part is complete.
    """

    def __init__(self, path: str | os.PathLike, *, sample_shape: tuple[int, ...],
                 canvas_shape: tuple[int, ...], storage: StorageOptions = StorageOptions(),
                 attrs: dict[str, Any] | None = None, samples_are_faces: bool = False,
                 face_data: bool = False) -> None:
        if samples_are_faces and tuple(sample_shape) != tuple(canvas_shape):
            raise ValueError("samples_are_faces needs sample_shape == canvas_shape")
        self.samples_are_faces = samples_are_faces
        self.face_data = face_data
        self._columns = {**_BUFFERED, **(_FACE_DATA if face_data else {})}
        self.path = Path(path)
        self.tmp = temp_name(self.path)
        self.sample_shape, self.canvas_shape = tuple(sample_shape), tuple(canvas_shape)
        self.storage = storage
        self.attrs = dict(attrs or {})
        self.rejects: list[tuple[str, str]] = []
        self.n_faces = 0
        self.n_samples = 0
        self._f: h5py.File | None = None
        #: after a successful exit: what :func:`facekit.store.assemble.read_part_contents` would
        #: read back from the finished file (lets a worker hand it to the assembly step)
        self.contents: dict[str, Any] | None = None

    def __enter__(self) -> "PartWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = f = h5py.File(self.tmp, "w")
        s, fc = f.create_group(schema.SAMPLES), f.create_group(schema.FACES)
        st = self.storage
        rows = st.rows_per_chunk(self.sample_shape)
        big = rows * -(-256 // rows)  # flush whole chunks: no partial-chunk rewrites
        self._samples_image = None if self.samples_are_faces else \
            _ImageColumn(s, "image", self.sample_shape, st, big)
        self._faces_image = _ImageColumn(fc, "image", self.canvas_shape, st, big) if self.samples_are_faces \
            else _ImageColumn(fc, "image", self.canvas_shape, StorageOptions(8, st.compression,
                                                                              st.compression_level), 16)
        self._lists: dict[str, list] = {name: [] for name in self._columns}
        return self

    def add_face(self, rec: FaceRecord) -> None:
        """Append one aligned face and its samples."""
        k = len(rec.samples)
        if self.samples_are_faces and k != 1:
            raise ValueError(f"samples_are_faces needs one sample per face, got {k}")
        if tuple(rec.samples.shape[1:]) != self.sample_shape:
            raise ValueError(f"sample shape {rec.samples.shape[1:]} != {self.sample_shape}")
        if tuple(rec.image.shape) != self.canvas_shape:
            raise ValueError(f"face image shape {rec.image.shape} != {self.canvas_shape}")
        if self._samples_image is not None:
            self._samples_image.append(np.asarray(rec.samples, np.uint8))
        self._faces_image.append(np.asarray(rec.image, np.uint8)[None])
        c = self._lists
        c["samples/landmarks"].append(np.asarray(rec.sample_landmarks, np.float32).reshape(k, 68, 2))
        c["samples/face"].append(np.full(k, self.n_faces, np.int32))
        c["samples/patch"].append(np.asarray(rec.patch, np.int8).reshape(k))
        c["samples/angle"].append(np.asarray(rec.angle, np.float32).reshape(k))
        c["samples/flip"].append(np.asarray(rec.flip, np.uint8).reshape(k))
        c["faces/landmarks"].append(np.asarray(rec.landmarks, np.float32)[:, :2])
        c["faces/matrix"].append(np.asarray(rec.matrix, np.float64))
        c["faces/label"].append(rec.label)
        c["faces/frame"].append(rec.frame)
        c["faces/source"].append(rec.source)
        c["faces/subject"].append(rec.subject)
        c["faces/sequence"].append(rec.sequence)
        if self.face_data:
            c["faces/pose"].append(_or_nan(rec.pose, 3))
            c["faces/blendshapes"].append(_or_nan(rec.blendshapes, N_BLENDSHAPES))
        self.n_faces += 1
        self.n_samples += k

    def add_reject(self, path: str, reason: str) -> None:
        self.rejects.append((str(path), str(reason)))

    @property
    def _samples_image_name(self) -> str:
        """Where the samples' images are in this part (``samples/image`` of out.h5 points there)."""
        return "faces/image" if self.samples_are_faces else "samples/image"

    def _write_buffered(self, f: h5py.File) -> dict[str, Any]:
        """Write the buffered columns as a few packed datasets (see :data:`PART_TABLES`);
        returns them as separate columns (arrays, and lists for the strings)."""
        cols: dict[str, Any] = {}
        for name, (dtype, tail) in self._columns.items():
            vals = self._lists[name]
            if dtype is _STR:
                cols[name] = list(vals)
            elif name.startswith(schema.SAMPLES):
                cols[name] = (np.concatenate(vals) if vals else np.zeros((0, *tail), dtype)).astype(dtype, copy=False)
            else:
                cols[name] = np.asarray(vals, dtype).reshape(len(vals), *tail)
        lm_rows = self.storage.rows_per_chunk(self.sample_shape)
        for name, rows in (("samples/landmarks", lm_rows), ("faces/landmarks", 8)):
            arr = cols[name]
            kw = {"chunks": (min(len(arr), rows), *arr.shape[1:])} if len(arr) else {}  # read along with the images
            f.create_dataset(name, data=arr, **kw)
        for table, names in PART_TABLES.items():
            if table == "faces/index" and self.face_data:
                names = (*names, *_FACE_DATA)
            if self._columns[names[0]][0] is _STR:
                rows = list(zip(*(cols[n] for n in names)))
                f.create_dataset(table, data=np.array(rows, dtype=object).reshape(len(rows), len(names)),
                                 dtype=_STR)
                continue
            rec = np.empty(len(cols[names[0]]), dtype=_table_dtype(names, self._columns))
            for n in names:
                rec[n.rsplit("/", 1)[1]] = cols[n]
            f.create_dataset(table, data=rec)
        rej = np.array(self.rejects, dtype=object).reshape(len(self.rejects), 2)
        f.create_dataset(schema.REJECTS, data=rej, dtype=_STR)
        return cols

    def _contents(self, cols: dict[str, Any]) -> dict[str, Any]:
        sources = schema.part_sources(self._samples_image_name)
        u8 = np.dtype(np.uint8)
        shapes = {"faces/image": (self.canvas_shape, u8),
                  "samples/image": (self.canvas_shape if self.samples_are_faces else self.sample_shape, u8),
                  **{k: (_BUFFERED[k][1], np.dtype(_BUFFERED[k][0])) for k in ("faces/landmarks",
                                                                              "samples/landmarks")}}
        return {
            "n_faces": self.n_faces, "n_samples": self.n_samples, "sources": sources, "shapes": shapes,
            "faces": {k: cols[f"faces/{k}"] for k in (*FACE_KEYS, *(FACE_DATA_KEYS if self.face_data else ()))},
            "samples": {k: cols[f"samples/{k}"] for k in ("face", "patch", "angle", "flip")},
            "rejects": list(self.rejects),
        }

    def __exit__(self, exc_type, exc, tb) -> None:
        f = self._f
        assert f is not None
        if exc_type is not None:
            f.close()
            self.tmp.unlink(missing_ok=True)
            return
        try:
            for col in (self._samples_image, self._faces_image):
                if col is not None:
                    col.close()
            cols = self._write_buffered(f)
            f.attrs["facekit_schema"] = schema.PART_SCHEMA_NAME
            f.attrs["part_version"] = schema.PART_VERSION
            # one JSON attribute: each HDF5 object costs ~0.1-0.4 ms, and a part is written
            # every ~10 faces (read back by read_part_meta)
            f.attrs["meta"] = json.dumps({"schema_version": schema.SCHEMA_VERSION, "n_faces": self.n_faces,
                                          "n_samples": self.n_samples, "samples_image": self._samples_image_name,
                                          "face_data": self.face_data, **self.attrs}, default=_json_default)
            f.close()
        except BaseException:
            f.close()
            self.tmp.unlink(missing_ok=True)
            raise
        # Renamed without fsync: atomic against Ctrl-C and kill -9; an
        # OS crash could leave a renamed but incomplete part, which the final out.h5
        # assembly (fsynced) would reference, so after one re-run with --force.
        # fsync here cost 10% of a JAFFE run (bench/prepare.py).
        os.replace(self.tmp, self.path)
        self.contents = {**self._contents(cols), **part_file_record(self.path)}


# columns kept in memory until the part is complete: dtype and per-row shape
_BUFFERED: dict[str, tuple[Any, tuple[int, ...]]] = {
    "samples/landmarks": (np.float32, (68, 2)),
    "samples/face": (np.int32, ()),
    "samples/patch": (np.int8, ()),
    "samples/angle": (np.float32, ()),
    "samples/flip": (np.uint8, ()),
    "faces/landmarks": (np.float32, (478, 2)),
    "faces/matrix": (np.float64, (2, 3)),
    "faces/label": (np.int16, ()),
    "faces/frame": (np.int32, ()),
    "faces/source": (_STR, ()),
    "faces/subject": (_STR, ()),
    "faces/sequence": (_STR, ()),
}


#: per-face columns of :attr:`PartWriter.contents` (``faces``), and those of a part with ``face_data``
FACE_KEYS = ("label", "frame", "matrix", "source", "subject", "sequence")
FACE_DATA_KEYS = ("pose", "blendshapes")

#: per-face columns of a part written with ``face_data`` (fields of ``faces/index``)
_FACE_DATA: dict[str, tuple[Any, tuple[int, ...]]] = {
    "faces/pose": (np.float32, (3,)),
    "faces/blendshapes": (np.float32, (N_BLENDSHAPES,)),
}


def _or_nan(values: np.ndarray | None, n: int) -> np.ndarray:
    return np.full(n, np.nan, np.float32) if values is None else np.asarray(values, np.float32).reshape(n)


#: packed datasets of a part file and the columns each holds, in order: numeric columns as
#: one compound dataset (fields named after the column), string columns as one (rows, columns)
#: table (a table holds columns of one kind)
PART_TABLES: dict[str, tuple[str, ...]] = {
    "faces/index": ("faces/label", "faces/frame", "faces/matrix"),
    "faces/names": ("faces/source", "faces/subject", "faces/sequence"),
    "samples/index": ("samples/face", "samples/patch", "samples/angle", "samples/flip"),
}


def _table_dtype(names: tuple[str, ...], columns: dict[str, tuple[Any, tuple[int, ...]]] = _BUFFERED) -> np.dtype:
    return np.dtype([(n.rsplit("/", 1)[1], np.dtype(columns[n][0]), columns[n][1]) for n in names])


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a part's metadata")


def part_file_record(path: str | os.PathLike) -> dict[str, Any]:
    """``{"file_bytes", "file_crc32"}`` of a finished part: what the assembled file stores
    per part, so that opening it can check each part's size and ``facekit info --check``
    its bytes. CRC-32 (zlib) detects accidental damage at about 1.7 GB/s, twice the speed
    of sha256: a part just written is read back from the page cache by the worker that
    wrote it (JAFFE, paper augmentation: 235 MB, about 0.15 s of CPU time)."""
    with open(path, "rb") as f:
        n = os.fstat(f.fileno()).st_size
        if n == 0:
            return {"file_bytes": 0, "file_crc32": 0}
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:   # no copies: a third faster
            return {"file_bytes": n, "file_crc32": zlib.crc32(m)}


def read_part_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a finished part file of this format (``n_faces``, ``fingerprint``,
    ``items_digest``, ...); an empty dict if it is unreadable, unfinished, not a part or
    written in another part format (``--resume`` then writes it again)."""
    try:
        with h5py.File(path, "r") as f:
            return part_meta(f)
    except OSError:
        return {}


def part_meta(f: h5py.File) -> dict[str, Any]:
    """:func:`read_part_meta` of an open file."""
    a = f.attrs
    if a.get("facekit_schema") != schema.PART_SCHEMA_NAME or a.get("part_version") != schema.PART_VERSION:
        return {}
    try:
        meta = json.loads(a["meta"])
    except (KeyError, ValueError, TypeError):
        return {}
    return meta if isinstance(meta, dict) else {}
