"""Shared pytest fixtures.

The Face Landmarker model comes from ``FACEKIT_MODEL`` (``.ci/run`` sets it to
``../shared/models/face_landmarker.task``); tests never download it. Real
datasets come from ``FACEKIT_SHARED`` (default ``../shared`` next to the
project); tests that need them are skipped with a reason when absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED = Path(os.environ.get("FACEKIT_SHARED", ROOT.parent / "shared"))


def _model() -> Path | None:
    env = os.environ.get("FACEKIT_MODEL")
    for cand in (env, SHARED / "models" / "face_landmarker.task"):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


MODEL = _model()
if MODEL is not None:
    os.environ.setdefault("FACEKIT_MODEL", str(MODEL))


@pytest.fixture(scope="session")
def model_path() -> Path:
    """Path of face_landmarker.task (skips the test when it is not available)."""
    if MODEL is None:
        pytest.skip("face_landmarker.task not found: set FACEKIT_MODEL")
    return MODEL


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def _dataset(*parts: str) -> Path:
    d = SHARED.joinpath("datasets", *parts)
    if not d.is_dir():
        pytest.skip(f"{parts[-1]} not found at {d}")
    return d


@pytest.fixture(scope="session")
def jaffe_dir() -> Path:
    """../shared/datasets/jaffe/jaffe: 213 JAFFE images (skips when absent)."""
    return _dataset("jaffe", "jaffe")


@pytest.fixture(scope="session")
def ckplus48_dir() -> Path:
    """../shared/datasets/ckplus48/CK+48: 981 CK+48 crops (skips when absent)."""
    return _dataset("ckplus48", "CK+48")


@pytest.fixture(scope="session")
def landmarker(model_path):
    """One shared facekit Landmarker for the session."""
    from facekit.detect import Landmarker
    with Landmarker(model_path) as lm:
        yield lm


@pytest.fixture(scope="session")
def face_image():
    """(256, 256, 3) uint8 RGB: the face in scikit-image's astronaut photo."""
    import numpy as np
    import skimage.data
    return np.ascontiguousarray(skimage.data.astronaut()[0:256, 110:366])
