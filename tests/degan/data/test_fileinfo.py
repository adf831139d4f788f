from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from facekit.augment import sample_geometry
from facekit.errors import NotAFacekitFileError

from degan.data import read_file_info


class TestReadFileInfo:
    def test_canvas_file(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        assert info.image_shape == (44, 44) and info.channels == 1 and info.n_classes == 3 and info.k == 3
        assert not info.stored_augmentation and info.n_samples == 36
        assert info.file_face_box == (4, 4, 36) and info.file_patch_size == 32

    def test_geometry_comes_from_facekit(self, canvas_file: Path, paper_file: Path) -> None:
        info = read_file_info(canvas_file)
        assert info.geometry() == sample_geometry((44, 44), (4, 4, 36), 32, stored_patches=False)
        assert info.geometry(20).patch_size == 20 and info.face_box == (4, 4, 36)
        stored = read_file_info(paper_file)
        assert stored.stored_augmentation and stored.geometry(20).patch_size == 32    # the stored patch

    def test_other_tool_file(self, tmp_path: Path) -> None:
        p = tmp_path / "other.h5"
        with h5py.File(p, "w") as f:
            f["x"] = np.zeros(3)
        with pytest.raises(NotAFacekitFileError, match="another tool"):
            read_file_info(p)
        q = tmp_path / "text.h5"
        q.write_text("hello")
        with pytest.raises(NotAFacekitFileError):
            read_file_info(q)
