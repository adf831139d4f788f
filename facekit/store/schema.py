"""The facekit HDF5 schema (version 2).

One file (``out.h5``) is the entry point. Large arrays are HDF5 *virtual
datasets* whose data lives in part files under ``out.h5.parts/`` (written in
parallel by worker processes, possibly on several machines); small per-sample
and per-face columns are stored in ``out.h5`` itself. Keep ``out.h5`` and
``out.h5.parts/`` together. Plain h5py reads everything; no plugins.

Groups and datasets (N samples, F aligned faces)::

    /samples/image      (N, P, P) or (N, P, P, 3)  uint8   [virtual] training images
    /samples/landmarks  (N, 68, 2)   float32  [virtual] iBUG-68 points in sample pixels
    /samples/face       (N,)  int32   index into /faces (the aligned face it came from)
    /samples/label      (N,)  int16   index into attrs['label_names']; -1 = unlabelled
    /samples/subject    (N,)  int32   index into /subjects
    /samples/sequence   (N,)  int32   index into /sequences
    /samples/frame      (N,)  int32   frame index within its sequence
    /samples/patch      (N,)  int8    0 centre, 1 top-left, 2 top-right, 3 bottom-left,
                                      4 bottom-right; -1 = whole aligned face (no augmentation)
    /samples/angle      (N,)  float32 rotation in degrees (counter-clockwise positive)
    /samples/flip       (N,)  uint8   1 = mirrored horizontally
    /faces/image        (F, C, C[, 3]) uint8 [virtual] aligned canvas (face box + margin)
    /faces/landmarks    (F, 478, 2) float32 [virtual] mesh points in canvas pixels
    /faces/matrix       (F, 2, 3) float64  source image -> canvas similarity transform
    /faces/source       (F,)  str     source file (video files: path, frame in /faces/frame)
    /faces/pose         (F, 3)  float32  head pitch, yaw, roll in degrees (convention of
                                      facekit.detect.face); attrs columns, units, convention
    /faces/blendshapes  (F, 52) float32  MediaPipe's 52 blendshape scores (0..1); attr names
                                      (JSON list, MediaPipe's order)
    /faces/label, /faces/subject, /faces/sequence, /faces/frame   as for samples
    /subjects           (S,)  str     subject names as the dataset spells them
    /sequences          (Q,)  str     sequence names
    /rejects/path, /rejects/reason  (R,) str   everything that was skipped, and why
    /folds/fold         (N,)  int16   written by ``facekit folds``; attrs k, seed, method, created

Root attributes: ``facekit_schema`` (= :data:`SCHEMA_NAME`), ``schema_version``,
``facekit_version``, ``dataset``, ``label_names`` (JSON list), ``config`` (JSON,
the full preparation config), ``counts`` (JSON), ``augment`` ("paper"/"none"),
``face_box`` (x, y, size of the face box inside the canvas), ``patch_size``,
``created`` (ISO 8601), ``parts`` (JSON list, one ``{file, bytes, crc32}`` per part
file, ``file`` relative to the file's folder: opening checks each part's size,
``facekit info --check`` its CRC-32; files written before it was added lack it).

Versions: 2 added ``faces/pose`` and ``faces/blendshapes`` (present when the
file was prepared with them, the default; :attr:`FacekitFile.has_pose`). Version
1 files have neither and are read as they are.
"""
from __future__ import annotations

import numpy as np

from ..augment.fivecrop import PATCH_NAMES  # noqa: F401  (names of the samples/patch values)

SCHEMA_NAME = "facekit/faces"
SCHEMA_VERSION = 2
PART_SCHEMA_NAME = "facekit/part"
#: layout of the part files (internal; :func:`facekit.store.assemble.read_part_contents` reads it).
#: 2: the small columns packed into ``faces/index``, ``faces/names``, ``samples/index``,
#: ``rejects`` and one JSON ``meta`` attribute (fewer HDF5 objects per part);
#: 3: ``faces/index`` may hold ``pose`` and ``blendshapes`` (meta ``face_data``)
PART_VERSION = 3

#: blendshape scores per face (MediaPipe's categories, :data:`facekit.detect.BLENDSHAPE_NAMES`)
N_BLENDSHAPES = 52
#: ``faces/pose`` columns and the convention they follow
POSE_COLUMNS = ("pitch", "yaw", "roll")
POSE_CONVENTION = ("degrees; from MediaPipe's facial transformation matrix, R = Rz(roll) Ry(yaw) Rx(-pitch) in "
                   "camera axes (x right, y up, z towards the camera); pitch > 0 chin up, yaw > 0 the subject "
                   "turns to their left, roll > 0 counter-clockwise in the image (facekit.detect.face)")

NO_PATCH = -1

SAMPLES = "samples"
FACES = "faces"
SUBJECTS = "subjects"
SEQUENCES = "sequences"
REJECTS = "rejects"
FOLDS = "folds"

#: per-sample columns copied from the face they came from
FACE_COLUMNS = ("label", "subject", "sequence", "frame")
#: per-sample columns of augmentation parameters
AUG_COLUMNS = ("patch", "angle", "flip")
#: datasets stored as virtual datasets over the part files
VIRTUAL = ("samples/image", "samples/landmarks", "faces/image", "faces/landmarks")


def part_sources(samples_image: str = "samples/image") -> dict[str, str]:
    """Dataset in a part file behind each :data:`VIRTUAL` name (``samples/image`` is
    ``faces/image`` in parts written with one sample per face, ``--augment none``)."""
    return {**{name: name for name in VIRTUAL}, "samples/image": samples_image}

DTYPES = {
    "samples/face": "int32", "samples/label": "int16", "samples/subject": "int32",
    "samples/sequence": "int32", "samples/frame": "int32", "samples/patch": "int8",
    "samples/angle": "float32", "samples/flip": "uint8",
    "faces/label": "int16", "faces/subject": "int32", "faces/sequence": "int32",
    "faces/frame": "int32", "faces/matrix": "float64", "faces/pose": "float32", "faces/blendshapes": "float32",
    "folds/fold": "int16",
}


#: name shown for label -1
UNLABELLED = "unlabelled"


def label_name(label: int, names: "list[str] | tuple[str, ...]") -> str:
    """Display name of a stored label (-1 unlabelled; out-of-range ``label<N>``)."""
    if 0 <= label < len(names):
        return names[label]
    return UNLABELLED if label == -1 else f"label{label}"


def class_list(labels: "np.ndarray", names: "list[str] | tuple[str, ...]") -> list[tuple[int, str]]:
    """``(label, name)`` for every declared label, then undeclared ones present, then -1 if present."""
    present = set(np.unique(labels).tolist())
    out = [(i, n) for i, n in enumerate(names)]
    out += [(v, label_name(v, names)) for v in sorted(present) if v >= len(names)]
    if -1 in present:
        out.append((-1, UNLABELLED))
    return out


def samples_digest(face_source: "np.ndarray", face_frame: "np.ndarray", face_subject: "np.ndarray",
                   face_label: "np.ndarray", sample_face: "np.ndarray", patch: "np.ndarray",
                   angle: "np.ndarray", flip: "np.ndarray") -> str:
    """A hash of which samples a file holds, in which order: per face its source, frame,
    subject name and label, per sample its face, patch, angle and flip. Equal digests
    mean folds made for one file fit the other."""
    import hashlib
    import json

    h = hashlib.sha256()
    h.update(json.dumps([[str(s), str(n)] for s, n in zip(face_source, face_subject)]).encode("utf-8"))
    for arr, dt in ((face_frame, "<i4"), (face_label, "<i2"), (sample_face, "<i4"), (patch, "<i1"),
                    (angle, "<f4"), (flip, "u1")):
        h.update(np.ascontiguousarray(np.asarray(arr).astype(dt)).tobytes())
    return h.hexdigest()


def parts_dir_for(out_path: str) -> str:
    """Folder that holds the part files behind ``out_path``."""
    return f"{out_path}.parts"
