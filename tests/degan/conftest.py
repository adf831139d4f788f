"""Fixtures for the degan tests: small synthetic facekit files with folds (written through the real writer)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("torch")

from facekit.testing import make_synthetic_file  # noqa: E402


def add_folds(path: Path, k: int = 3, shift: int = 0) -> Path:
    """Subject-disjoint folds (fold = (subject index + shift) % k), stored as ``facekit folds`` stores them."""
    with h5py.File(path, "r+") as f:
        subj = f["samples/subject"][()]
        g = f.require_group("folds")
        if "fold" in g:
            del g["fold"]
        g.create_dataset("fold", data=((subj + shift) % k).astype("int16"))
        g.attrs.update({"k": k, "seed": 0, "method": "test", "created": "2026-01-01T00:00:00+00:00"})
    return path


def copy_file(src: Path, dst: Path) -> Path:
    """A copy of a facekit file under another name (and folder): the file, and its part files
    where the copy's virtual datasets look for them (``<original name>.parts`` beside it)."""
    import shutil
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    parts = Path(f"{src}.parts")
    if parts.is_dir() and not (dst.parent / parts.name).exists():
        shutil.copytree(parts, dst.parent / parts.name)
    return dst


def make_file(path: Path, *, folds: int | None = 3, **kw: object) -> Path:
    p = make_synthetic_file(path, **kw)  # type: ignore[arg-type]
    return add_folds(p, folds) if folds else p


@pytest.fixture(scope="session")
def canvas_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """augment=none: 6 subjects x 6 faces, 3 classes, 44-px canvases, folds k=3."""
    return make_file(tmp_path_factory.mktemp("canvas") / "faces.h5")


@pytest.fixture(scope="session")
def paper_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """augment=paper (20 stored copies per face, 32-px patches), folds k=3."""
    return make_file(tmp_path_factory.mktemp("paper") / "faces.h5", augment="paper")


@pytest.fixture(scope="session")
def no_folds_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_file(tmp_path_factory.mktemp("nofolds") / "faces.h5", folds=None)


@pytest.fixture
def tiny_cfg():  # type: ignore[no-untyped-def]
    """The ``tiny`` preset: one epoch per stage."""
    from degan.presets import get_preset
    return get_preset("tiny")


@pytest.fixture(autouse=True)
def _threads() -> None:
    import torch
    torch.set_num_threads(2)


def rng_image(seed: int, size: int = 44) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size, size), dtype=np.uint8)
