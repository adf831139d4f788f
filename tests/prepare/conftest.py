import shutil
from pathlib import Path

import pytest

from facekit.prepare import PrepareConfig


@pytest.fixture
def ckplus_copy(fixtures_dir, tmp_path) -> Path:
    """A writable copy of the ck+ fixture tree."""
    dst = tmp_path / "ck+"
    shutil.copytree(fixtures_dir / "ck+", dst)
    return dst


@pytest.fixture
def make_config(model_path, tmp_path):
    def make(dataset, root, out="out.h5", **kw):
        kw.setdefault("progress", False)
        kw.setdefault("workers", 1)
        return PrepareConfig(dataset=dataset, root=Path(root), out=tmp_path / out, model=str(model_path), **kw)
    return make
