"""Assemble finished part files into the user's ``out.h5``."""
from __future__ import annotations

import datetime as _dt
import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._version import __version__
from ..datasets._base import natural_key
from ..errors import NotAFacekitFileError
from . import schema
from .._fs import atomic_output
from .parts import FACE_DATA_KEYS, part_file_record, part_meta

__all__ = ["assemble", "read_part_contents", "existing_folds"]

_STR = h5py.string_dtype("utf-8")


def _decode(values: np.ndarray) -> list[str]:
    return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in values]


def _json_attr(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, np.integer, np.floating)):
        return value
    return json.dumps(value)


def read_part_contents(path: str | os.PathLike) -> dict[str, Any]:
    """What :func:`assemble` needs of a finished part file: counts, the shapes and dtypes
    of its image/landmark datasets, the small per-face and per-sample columns and the rejects
    (the layout of :attr:`PartWriter.contents`).

    Raises:
        NotAFacekitFileError: missing, unreadable, unfinished or of another schema.
    """
    p = Path(path)
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise NotAFacekitFileError(p, f"part file cannot be opened ({exc})") from None
    with f:
        meta = part_meta(f)
        if not meta:
            raise NotAFacekitFileError(p, "not a finished facekit part file of this version (an unfinished or "
                                          "foreign file, or one from another facekit version: prepare again "
                                          "with --force)")
        sources = schema.part_sources(str(meta.get("samples_image", "samples/image")))
        faces, samples = f["faces/index"][()], f["samples/index"][()]
        names = f["faces/names"][()]
        rejects = f[schema.REJECTS][()]
        record = part_file_record(p)
        return {
            **record,
            "n_faces": int(meta["n_faces"]), "n_samples": int(meta["n_samples"]), "sources": sources,
            "shapes": {name: (f[src].shape[1:], f[src].dtype) for name, src in sources.items()},
            "faces": {**{k: faces[k] for k in ("label", "frame", "matrix", *FACE_DATA_KEYS)
                         if k in (faces.dtype.names or ())},
                      **{k: _decode(names[:, j]) for j, k in enumerate(("source", "subject", "sequence"))}},
            "samples": {k: samples[k] for k in ("face", "patch", "angle", "flip")},
            "rejects": list(zip(_decode(rejects[:, 0]), _decode(rejects[:, 1]))),
        }


def assemble(out_path: str | os.PathLike, part_paths: Sequence[str | os.PathLike], *,
             dataset: str, label_names: Sequence[str], config: dict[str, Any],
             extra_rejects: Sequence[tuple[str, str]] = (), counts: dict[str, Any] | None = None,
             attrs: dict[str, Any] | None = None,
             contents: Sequence[dict[str, Any] | None] | None = None,
             keep_folds: tuple[str, np.ndarray, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write ``out_path`` (atomically) as a view over ``part_paths``.

    Part order defines sample order. Image and landmark arrays become virtual
    datasets referring to the parts by paths relative to ``out_path``'s folder;
    index columns, names and rejects are copied. Returns the ``counts`` written.

    ``contents`` (one per part, ``None`` = read it) are :func:`read_part_contents`
    results already in memory, e.g. :attr:`PartWriter.contents` handed back by the
    worker that wrote the part, so that the parts need not be opened again.

    ``keep_folds`` (:func:`existing_folds` of the file being replaced) is written
    as ``/folds`` when the new file has exactly the same samples (same
    :func:`~facekit.store.schema.samples_digest`), so a re-assembly keeps folds.
    The size and CRC-32 of every part go into the ``parts`` attribute (checked
    when the file is opened, see :mod:`facekit.store.reader`). ``faces/pose`` and
    ``faces/blendshapes`` are written when the parts hold them.

    Raises:
        NotAFacekitFileError: a part is missing, unfinished or of another schema,
            or some parts hold pose and blendshapes and others do not.
    """
    out_path = Path(out_path)
    parts = [Path(p) for p in part_paths]
    if contents is not None and len(contents) != len(parts):
        raise ValueError(f"{len(contents)} part contents for {len(parts)} parts")
    meta: list[dict[str, Any]] = []
    faces: dict[str, list] = {k: [] for k in ("label", "frame", "source", "subject", "sequence", "matrix",
                                              *FACE_DATA_KEYS)}
    face_data: bool | None = None
    samples: dict[str, list] = {k: [] for k in ("face", "patch", "angle", "flip")}
    rejects: list[tuple[str, str]] = [(str(p), str(r)) for p, r in extra_rejects]
    shapes: dict[str, tuple] = {}
    face_offset = 0
    for i, p in enumerate(parts):
        idx = contents[i] if contents is not None and contents[i] is not None else read_part_contents(p)
        meta.append({"path": p, "n_faces": idx["n_faces"], "n_samples": idx["n_samples"], "sources": idx["sources"],
                     "bytes": idx.get("file_bytes"), "crc32": idx.get("file_crc32")})
        for name in schema.VIRTUAL:
            shp, dt = idx["shapes"][name]
            if name in shapes and shapes[name] != (shp, dt):
                raise NotAFacekitFileError(p, f"{name} has shape {shp}, other parts {shapes[name][0]}")
            shapes[name] = (shp, dt)
        for k in ("label", "frame", "matrix"):
            faces[k].append(idx["faces"][k])
        has = all(k in idx["faces"] for k in FACE_DATA_KEYS)
        if face_data is not None and has != face_data:
            raise NotAFacekitFileError(p, f"part {'holds' if has else 'lacks'} head pose and blendshapes, earlier "
                                          f"parts {'lack' if has else 'hold'} them (made with other settings)")
        face_data = has
        if has:
            for k in FACE_DATA_KEYS:
                faces[k].append(idx["faces"][k])
        for k in ("source", "subject", "sequence"):
            faces[k].extend(idx["faces"][k])
        samples["face"].append(idx["samples"]["face"] + face_offset)
        for k in ("patch", "angle", "flip"):
            samples[k].append(idx["samples"][k])
        rejects.extend(idx["rejects"])
        face_offset += idx["n_faces"]

    def cat(chunks: list, dtype: str, tail: tuple = ()) -> np.ndarray:
        return np.concatenate(chunks).astype(dtype) if chunks else np.zeros((0, *tail), dtype)

    subjects = sorted(set(faces["subject"]), key=natural_key)
    sequences = sorted(set(faces["sequence"]), key=natural_key)
    s_index = {s: i for i, s in enumerate(subjects)}
    q_index = {s: i for i, s in enumerate(sequences)}
    face_cols = {
        "label": cat(faces["label"], "int16"),
        "frame": cat(faces["frame"], "int32"),
        "subject": np.array([s_index[s] for s in faces["subject"]], np.int32),
        "sequence": np.array([q_index[s] for s in faces["sequence"]], np.int32),
    }
    sample_face = cat(samples["face"], "int32")
    n_samples, n_faces = len(sample_face), face_offset
    per_class = Counter(int(x) for x in face_cols["label"][sample_face]) if n_samples else Counter()
    all_counts = {
        **(counts or {}),
        "samples": n_samples, "faces": n_faces, "subjects": len(subjects), "sequences": len(sequences),
        "rejects": len(rejects),
        "rejects_by_reason": dict(Counter(r for _, r in rejects).most_common()),
        "samples_per_class": {schema.label_name(i, label_names): per_class[i] for i in sorted(per_class)},
    }

    face_source = np.array(faces["source"], dtype=object)
    face_subject = np.array(subjects, dtype=object)[face_cols["subject"]] if n_faces else np.zeros(0, object)
    digest = schema.samples_digest(face_source, face_cols["frame"], face_subject, face_cols["label"], sample_face,
                                   cat(samples["patch"], "int8"), cat(samples["angle"], "float32"),
                                   cat(samples["flip"], "uint8"))
    part_records = [{"file": os.path.relpath(m["path"], out_path.parent), "bytes": m["bytes"], "crc32": m["crc32"]}
                    for m in meta]

    with atomic_output(out_path) as tmp:
        with h5py.File(tmp, "w") as out:
            for name in schema.VIRTUAL:
                total = n_samples if name.startswith("samples") else n_faces
                shp, dt = shapes.get(name, ((), np.uint8))
                if total == 0:
                    out.create_dataset(name, shape=(0, *shp), dtype=dt)
                    continue
                layout = h5py.VirtualLayout(shape=(total, *shp), dtype=dt)
                start = 0
                for m in meta:
                    n = m["n_samples"] if name.startswith("samples") else m["n_faces"]
                    if n == 0:
                        continue
                    rel = os.path.relpath(m["path"], out_path.parent)
                    layout[start:start + n] = h5py.VirtualSource(rel, m["sources"][name], shape=(n, *shp),
                                                                 dtype=dt)
                    start += n
                out.create_virtual_dataset(name, layout, fillvalue=0)
            for k, v in face_cols.items():
                out.create_dataset(f"faces/{k}", data=v)
                out.create_dataset(f"samples/{k}", data=v[sample_face] if n_samples else v[:0])
            out.create_dataset("faces/matrix", data=cat(faces["matrix"], "float64", (2, 3)))
            if face_data:
                _write_face_data(out, cat(faces["pose"], "float32", (3,)),
                                 cat(faces["blendshapes"], "float32", (schema.N_BLENDSHAPES,)))
            out.create_dataset("faces/source", data=face_source, dtype=_STR)
            out.create_dataset("samples/face", data=sample_face)
            for k, dt in (("patch", "int8"), ("angle", "float32"), ("flip", "uint8")):
                out.create_dataset(f"samples/{k}", data=cat(samples[k], dt))
            out.create_dataset(schema.SUBJECTS, data=np.array(subjects, dtype=object), dtype=_STR)
            out.create_dataset(schema.SEQUENCES, data=np.array(sequences, dtype=object), dtype=_STR)
            out.create_dataset("rejects/path", data=np.array([p for p, _ in rejects], dtype=object), dtype=_STR)
            out.create_dataset("rejects/reason", data=np.array([r for _, r in rejects], dtype=object), dtype=_STR)
            a = out.attrs
            a["facekit_schema"] = schema.SCHEMA_NAME
            a["schema_version"] = schema.SCHEMA_VERSION
            a["facekit_version"] = __version__
            a["dataset"] = dataset
            a["label_names"] = json.dumps(list(label_names))
            a["config"] = json.dumps(config)
            a["counts"] = json.dumps(all_counts)
            a["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            a["parts"] = json.dumps(part_records)
            for key, val in (attrs or {}).items():
                a[key] = _json_attr(val)
            if keep_folds is not None and keep_folds[0] == digest and len(keep_folds[1]) == n_samples:
                group = out.create_group(schema.FOLDS)
                group.create_dataset("fold", data=np.asarray(keep_folds[1]).astype(schema.DTYPES["folds/fold"]))
                for key, val in keep_folds[2].items():
                    group.attrs[key] = val
    return all_counts


def _write_face_data(out: h5py.File, pose: np.ndarray, blendshapes: np.ndarray) -> None:
    """``faces/pose`` and ``faces/blendshapes`` with the attributes that say what they hold."""
    from ..detect.face import BLENDSHAPE_NAMES
    ds = out.create_dataset("faces/pose", data=pose)
    ds.attrs["columns"] = json.dumps(list(schema.POSE_COLUMNS))
    ds.attrs["units"] = "degrees"
    ds.attrs["convention"] = schema.POSE_CONVENTION
    ds = out.create_dataset("faces/blendshapes", data=blendshapes)
    ds.attrs["names"] = json.dumps(list(BLENDSHAPE_NAMES))


def existing_folds(path: str | os.PathLike) -> tuple[str, np.ndarray, dict[str, Any]] | None:
    """``(samples digest, /folds/fold, /folds attributes)`` of a facekit file that has folds,
    for :func:`assemble`'s ``keep_folds``; ``None`` when it has none or cannot be read (its
    parts are not needed: only the small columns are read)."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("facekit_schema") != schema.SCHEMA_NAME or f"{schema.FOLDS}/fold" not in f:
                return None
            names = np.array(_decode(f[schema.SUBJECTS][()]), dtype=object)
            subject = f["faces/subject"][()]
            digest = schema.samples_digest(
                np.array(_decode(f["faces/source"][()]), dtype=object), f["faces/frame"][()],
                names[subject] if subject.size else np.zeros(0, object), f["faces/label"][()],
                f["samples/face"][()], f["samples/patch"][()], f["samples/angle"][()], f["samples/flip"][()])
            return digest, f[f"{schema.FOLDS}/fold"][()], dict(f[schema.FOLDS].attrs)
    except (OSError, KeyError, ValueError, IndexError):
        return None
