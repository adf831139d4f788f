"""facekit: landmark-based face alignment and FER dataset preparation.

The alignment pipeline is usable on its own (numpy in, numpy out)::

    import facekit
    with facekit.Landmarker() as lm:
        face = lm.detect(image)                        # largest face, 478 + 68 points
    aligned = facekit.align_face(image, face.landmarks, size=112)
    aligned.image, aligned.landmarks, aligned.matrix

Per-frame analysis of any images and videos (landmarks, head pose, blendshapes)::

    df = facekit.analyze(["clips/", "photo.jpg"], "faces.csv")   # a pandas DataFrame

Submodules are imported lazily: ``import facekit`` loads neither MediaPipe, h5py,
pandas nor torch until something that needs them is used.
"""
from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_LAZY = {
    # detect
    "Landmarker": "facekit.detect", "Face": "facekit.detect", "detect_landmarks": "facekit.detect",
    "resolve_model_path": "facekit.detect", "to_ibug68": "facekit.detect", "MESH_TO_IBUG68": "facekit.detect",
    # align
    "align_face": "facekit.align", "AlignConfig": "facekit.align", "AlignedFace": "facekit.align",
    "estimate_similarity": "facekit.align", "transform_points": "facekit.align",
    # frames
    "select_frames": "facekit.frames", "parse_frame_spec": "facekit.frames",
    # augment
    "augment_face": "facekit.augment", "AugmentConfig": "facekit.augment",
    # datasets
    "get_dataset": "facekit.datasets", "register_dataset": "facekit.datasets",
    "list_datasets": "facekit.datasets", "DatasetAdapter": "facekit.datasets",
    # io
    "read_image": "facekit.imageio",
    # store
    "open_facekit": "facekit.store",
    # prepare
    "prepare": "facekit.prepare", "PrepareConfig": "facekit.prepare",
    # analysis
    "analyze": "facekit.analysis", "read_table": "facekit.analysis",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'facekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
