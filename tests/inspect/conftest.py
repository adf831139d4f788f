"""Facekit files for inspect tests: grayscale or colour, with rejects and augmentation."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from facekit.store import FaceRecord, PartWriter, StorageOptions, assemble, schema
from facekit.testing import synthetic_face


def write_file(path: Path, faces: Sequence[tuple[str, int]], label_names: Sequence[str], *, color: bool = False,
               augment: str = "none", rejects: Sequence[tuple[str, str]] = (), canvas: int = 40,
               patch: int = 24) -> Path:
    """A valid facekit file through the real part writer and assembler.

    ``augment="paper"`` gives 5 patches x {-5, 0, 5} degrees x flip = 30 samples
    per face (stored patch-major), with 68 sample landmarks inside each patch.
    """
    rng = np.random.default_rng(0)
    part = Path(schema.parts_dir_for(str(path))) / "part-00000.h5"
    side = (canvas, canvas, 3) if color else (canvas, canvas)
    sample_side = side if augment == "none" else ((patch, patch, 3) if color else (patch, patch))
    with PartWriter(part, sample_shape=sample_side, canvas_shape=side, storage=StorageOptions(chunk_samples=8)) as w:
        for i, (subject, label) in enumerate(faces):
            img = synthetic_face(max(label, 0), i, canvas, rng)
            if color:
                img = np.stack([img, np.roll(img, 3, axis=1), 255 - img], axis=-1)
            lm = rng.uniform(4, canvas - 4, (478, 2)).astype(np.float32)
            if augment == "none":
                samples, slm = img[None], lm[None, :68]
                pa, an, fl = np.array([-1]), np.array([0.0]), np.array([0])
            else:
                grid = [(p, a, f) for p in range(5) for a in (-5.0, 0.0, 5.0) for f in (0, 1)]
                samples = np.stack([img[:patch, :patch] for _ in grid])
                slm = np.repeat(rng.uniform(2, patch - 2, (1, 68, 2)), len(grid), axis=0)
                pa, an, fl = (np.array(c) for c in zip(*grid))
            w.add_face(FaceRecord(
                source=f"raw/{subject}/{i:03d}.png", subject=subject, sequence=f"{subject}/{i:03d}", label=label,
                frame=0, image=img, landmarks=lm, matrix=np.eye(2, 3), samples=np.ascontiguousarray(samples),
                sample_landmarks=slm.astype(np.float32), patch=pa, angle=an, flip=fl))
        for p, r in rejects:
            w.add_reject(p, r)
    assemble(path, [part], dataset="testset", label_names=list(label_names),
             config={"dataset": "testset", "augment": augment, "options": {"x": 1}},
             attrs={"augment": augment, "face_box": [4, 4, canvas - 8], "patch_size": patch})
    return path


@pytest.fixture
def facekit_file() -> Callable[..., Path]:
    return write_file


@pytest.fixture
def gray_file(tmp_path: Path) -> Path:
    """3 classes x 4 subjects, 2 faces each per class, augment none; 5 rejects of 2 reasons."""
    faces = [(f"S{s}", c) for c in range(3) for s in range(4) for _ in range(2)]
    rejects = [(f"raw/x{i}.png", "no face found") for i in range(4)] + [("raw/bad.png", "cannot be decoded")]
    return write_file(tmp_path / "gray.h5", faces, ["anger", "happy", "surprise"], rejects=rejects)
