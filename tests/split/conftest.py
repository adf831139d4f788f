"""Helpers for fold tests: facekit files with a chosen subject/class structure."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from facekit.store import FaceRecord, PartWriter, StorageOptions, assemble, schema


def write_structured_file(path: Path, faces: Sequence[tuple[str, int]], label_names: Sequence[str], *,
                          samples_per_face: int = 1, size: int = 8) -> Path:
    """Write a valid facekit file whose faces have the given ``(subject, label)``.

    Images are tiny constant squares: only the index columns matter for folds.
    Goes through the real part writer and assembler, like ``facekit prepare``.
    """
    part = Path(schema.parts_dir_for(str(path))) / "part-00000.h5"
    k = samples_per_face
    with PartWriter(part, sample_shape=(size, size), canvas_shape=(size, size),
                    storage=StorageOptions(chunk_samples=256)) as w:
        for i, (subject, label) in enumerate(faces):
            img = np.full((size, size), (i * 7) % 256, np.uint8)
            w.add_face(FaceRecord(
                source=f"{subject}/{i:05d}.png", subject=subject, sequence=f"{subject}/{label}", label=label,
                frame=i, image=img, landmarks=np.zeros((478, 2), np.float32), matrix=np.eye(2, 3),
                samples=np.repeat(img[None], k, axis=0), sample_landmarks=np.zeros((k, 68, 2), np.float32),
                patch=np.zeros(k, np.int8), angle=np.zeros(k, np.float32), flip=np.zeros(k, np.uint8)))
    assemble(path, [part], dataset="structured", label_names=list(label_names), config={"test": True},
             attrs={"augment": "paper" if k > 1 else "none", "face_box": [0, 0, size], "patch_size": size})
    return path


@pytest.fixture
def structured_file() -> Callable[..., Path]:
    return write_structured_file


@pytest.fixture
def imbalanced_file(tmp_path: Path) -> Path:
    """24 subjects, 4 classes of very different size, 1..6 faces per subject, 5 samples per face."""
    rng = np.random.default_rng(3)
    faces = []
    for s in range(24):
        for _ in range(int(rng.integers(1, 7))):
            faces.append((f"P{s:02d}", int(rng.choice(4, p=[0.5, 0.25, 0.15, 0.10]))))
    return write_structured_file(tmp_path / "imb.h5", faces, ["neutral", "happy", "sad", "fear"],
                                 samples_per_face=5)
