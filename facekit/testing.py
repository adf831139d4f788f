"""Helpers for tests of code that consumes facekit files.

:func:`make_synthetic_file` writes a small, valid facekit file through the same
part writer and assembler that ``facekit prepare`` uses, with images whose
class and identity are learnable (class = a shape, identity = brightness and
texture), so consumers can be tested without MediaPipe or real faces.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .store import FaceRecord, PartWriter, StorageOptions, assemble, schema

__all__ = ["make_synthetic_file", "synthetic_face"]


def synthetic_face(label: int, subject: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``(size, size)`` uint8 image: a class-specific shape on a subject-specific background."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = 60 + 25 * (subject % 6) + 10 * np.sin(2 * np.pi * (subject + 1) * xx)
    c = 0.5 + rng.normal(0, 0.02, 2)
    r = np.hypot(xx - c[0], yy - c[1])
    theta = np.arctan2(yy - c[1], xx - c[0])
    shape = (r < 0.22 + 0.08 * np.cos((label + 2) * theta)).astype(np.float32)
    img = base + 110 * shape + rng.normal(0, 6, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_synthetic_file(path: str | os.PathLike, *, n_subjects: int = 6, n_classes: int = 3,
                        faces_per_subject: int = 6, augment: str = "none", patch_size: int = 32,
                        face_size: int = 36, margin: int = 4, n_parts: int = 2, seed: int = 0,
                        label_names: list[str] | None = None, dataset: str = "synthetic") -> Path:
    """Write a synthetic facekit file and return its path.

    ``augment="none"``: one sample per face (the canvas). ``augment="paper"``:
    a reduced grid (5 patches x {0, 3} degrees x flip = 20 samples per face) with
    the real columns, cut without rotation (test data only).
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    canvas = face_size + 2 * margin
    names = label_names or [f"class{i}" for i in range(n_classes)]
    faces = []
    for s in range(n_subjects):
        for j in range(faces_per_subject):
            faces.append((s, (s + j) % n_classes, j))
    chunks = np.array_split(np.arange(len(faces)), n_parts)
    parts_dir = Path(schema.parts_dir_for(str(path)))
    sample_shape = (canvas, canvas) if augment == "none" else (patch_size, patch_size)
    part_paths = []
    for p, idx in enumerate(chunks):
        pp = parts_dir / f"part-{p:05d}.h5"
        with PartWriter(pp, sample_shape=sample_shape, canvas_shape=(canvas, canvas),
                        storage=StorageOptions(chunk_samples=16), samples_are_faces=augment == "none") as w:
            for i in idx:
                s, label, j = faces[i]
                img = synthetic_face(label, s, canvas, rng)
                lm = rng.uniform(margin, margin + face_size, (478, 2)).astype(np.float32)
                if augment == "none":
                    samples = img[None]
                    patch, angle, flip = np.array([-1]), np.array([0.0]), np.array([0])
                else:
                    crops, patch, angle, flip = [], [], [], []
                    off = face_size - patch_size
                    corners = [(off // 2, off // 2), (0, 0), (off, 0), (0, off), (off, off)]
                    for a in (0.0, 3.0):
                        for k, (x, y) in enumerate(corners):
                            crop = img[margin + y:margin + y + patch_size, margin + x:margin + x + patch_size]
                            for fl in (0, 1):
                                crops.append(crop[:, ::-1] if fl else crop)
                                patch.append(k), angle.append(a), flip.append(fl)
                    samples = np.stack(crops)
                k = len(samples)
                w.add_face(FaceRecord(
                    source=f"synthetic/S{s:03d}/{j:03d}.png", subject=f"S{s:03d}", sequence=f"S{s:03d}/{j:03d}",
                    label=label, frame=j, image=img, landmarks=lm, matrix=np.eye(2, 3),
                    samples=np.ascontiguousarray(samples), sample_landmarks=np.zeros((k, 68, 2), np.float32),
                    patch=np.array(patch), angle=np.array(angle), flip=np.array(flip)))
            if p == 0:
                w.add_reject("synthetic/broken.png", "cannot be decoded as an image")
        part_paths.append(pp)
    assemble(path, part_paths, dataset=dataset, label_names=names,
             config={"dataset": dataset, "augment": augment, "synthetic": True},
             attrs={"augment": augment, "face_box": [margin, margin, face_size], "patch_size": patch_size})
    return path
