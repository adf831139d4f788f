"""Tests of the bu-4dfe adapter (facekit.datasets.bu4dfe)."""
from __future__ import annotations

from pathlib import Path

import pytest

from facekit.datasets import get_dataset
from facekit.datasets.bu4dfe import BU4DFE, BU4DFE_LABELS
from facekit.errors import LayoutError


class TestBU4DFEScan:
    def test_registered(self):
        adapter = get_dataset("bu-4dfe")
        assert isinstance(adapter, BU4DFE) and adapter.default_frames == "all"
        assert BU4DFE_LABELS == ("anger", "disgust", "fear", "happy", "sadness", "surprise")

    def test_fixture_scan(self, fixtures_dir):
        result = BU4DFE().scan(fixtures_dir / "bu-4dfe")
        assert result.labels == BU4DFE_LABELS
        assert [s.name for s in result.sequences] == [
            "F001/Happy", "F001/Surprise", "F002/Happy", "F002/Surprise", "M001/Happy", "M001/Surprise"]
        assert [s.label for s in result.sequences] == ["happy", "surprise"] * 3
        assert {s.subject for s in result.sequences} == {"F001", "F002", "M001"}
        assert result.skipped == []  # the .wrl meshes are expected companions

    def test_frames_are_textures_in_order(self, fixtures_dir):
        seq = BU4DFE().scan(fixtures_dir / "bu-4dfe").sequences[0]
        assert [Path(f.path).name for f in seq.frames] == ["000.jpg", "001.jpg", "002.jpg", "003.jpg"]
        assert [f.index for f in seq.frames] == [0, 1, 2, 3]

    @pytest.mark.parametrize("folder, label", [("Angry", "anger"), ("Disgust", "disgust"), ("Fear", "fear"),
                                               ("Sad", "sadness")])
    def test_expression_folder_names(self, tree_copy, folder, label):
        tree = tree_copy("bu-4dfe")
        (tree / "M001" / "Happy").rename(tree / "M001" / folder)
        seq = {s.name: s for s in BU4DFE().scan(tree).sequences}[f"M001/{folder}"]
        assert seq.label == label

    def test_non_subject_and_unknown_folders(self, tree_copy):
        tree = tree_copy("bu-4dfe")
        (tree / "BU_WrlViewer_V2").mkdir()
        (tree / "F001" / "Neutral").mkdir()
        (tree / "F002" / "Happy" / "log.txt").write_text("x")
        reasons = {s.path: s.reason for s in BU4DFE().scan(tree).skipped}
        assert reasons[str(tree / "BU_WrlViewer_V2")] == "not a subject folder (expected Fxxx or Mxxx)"
        assert reasons[str(tree / "F001" / "Neutral")].startswith("unknown expression folder")
        assert reasons[str(tree / "F002" / "Happy" / "log.txt")] == "not an image file"

    def test_wrapper_folder(self, tree_copy, tmp_path):
        tree = tree_copy("bu-4dfe")
        wrapper = tmp_path / "wrap"
        wrapper.mkdir()
        tree.rename(wrapper / "BU4DFE")
        assert len(BU4DFE().scan(wrapper).sequences) == 6

    def test_empty_expression_folder(self, tree_copy):
        tree = tree_copy("bu-4dfe")
        for f in (tree / "M001" / "Happy").iterdir():
            if f.suffix == ".jpg":
                f.unlink()
        result = BU4DFE().scan(tree)
        assert "M001/Happy" not in [s.name for s in result.sequences]
        assert {s.path: s.reason for s in result.skipped}[str(tree / "M001" / "Happy")] == \
            "no image files in expression folder"


class TestBU4DFELayoutErrors:
    def test_missing_root(self, tmp_path):
        with pytest.raises(LayoutError, match="does not exist; bu-4dfe expects Fxxx"):
            BU4DFE().scan(tmp_path / "nope")

    def test_root_is_file(self, fixtures_dir):
        with pytest.raises(LayoutError, match="is a file"):
            BU4DFE().scan(fixtures_dir / "bu-4dfe" / "F001" / "Happy" / "000.jpg")

    def test_not_bu4dfe(self, fixtures_dir):
        with pytest.raises(LayoutError, match="no F001-style or M001-style subject folders"):
            BU4DFE().scan(fixtures_dir / "oulu-casia")
