"""info and preview on real faces: the first sequences of CK+48 through ``prepare`` (paper augmentation)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from facekit.inspect import file_info, format_info, save_preview


@pytest.fixture(scope="module")
def ck_paper(ckplus48_dir: Path, model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facekit.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("ck48p") / "ck48.h5"
    # small faces keep it quick (~2 s): 40 sequences x 110 samples of 40x40
    prepare(PrepareConfig(dataset="folder", root=ckplus48_dir, out=out, options={"subject_regex": r"^(S\d+)_"},
                          augment="paper", face_size=48, patch_size=40, limit=40, model=str(model_path),
                          workers=1, progress=False))
    return out


class TestRealFaces:
    def test_info(self, ck_paper: Path) -> None:
        info = file_info(ck_paper)
        assert info["dataset"] == "folder" and info["augment"] == "paper"
        assert info["counts"]["samples"] == 110 * info["counts"]["faces"] > 0
        assert info["samples_image"]["shape"][1:] == [40, 40]
        assert "augment paper, 110 per face" in format_info(info)

    def test_contact_sheet(self, ck_paper: Path, tmp_path: Path) -> None:
        res = save_preview(ck_paper, tmp_path / "sheet.png", per_class=4)
        img = matplotlib.image.imread(tmp_path / "sheet.png")[..., :3]
        assert img.shape[:2] == (res.height, res.width)
        assert img.std() * 255 > 20

    def test_source_shows_110_samples(self, ck_paper: Path, tmp_path: Path) -> None:
        res = save_preview(ck_paper, tmp_path / "face.png", face=0)
        assert res.summary == "face 0: 110 samples"
        img = matplotlib.image.imread(tmp_path / "face.png")[..., :3]
        assert img.shape[0] > 12 * 104  # aligned face + 11 rows of 10 samples
        assert np.std(img) * 255 > 20
