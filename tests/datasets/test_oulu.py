"""Tests of the oulu-casia adapter (facekit.datasets.oulu)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from facekit.datasets import get_dataset
from facekit.datasets.oulu import OULU_LABELS, OuluCasia
from facekit.errors import LayoutError

_NAMES = ["P001/Happiness", "P001/Surprise", "P002/Happiness", "P002/Surprise", "P003/Happiness", "P003/Surprise"]


class TestOuluOptions:
    def test_defaults(self):
        adapter = get_dataset("oulu-casia")
        assert isinstance(adapter, OuluCasia)
        assert adapter.default_frames == "last:3"
        assert adapter.config == {"modality": "VL", "illumination": "Strong"}
        assert OULU_LABELS == ("anger", "disgust", "fear", "happy", "sadness", "surprise")

    def test_case_insensitive_and_aliases(self):
        adapter = OuluCasia(modality="nir", illumination="dark")
        assert adapter.config == {"modality": "NI", "illumination": "Dark"}

    @pytest.mark.parametrize("options, message", [
        ({"modality": "IR"}, "use VL or NI"), ({"illumination": "dim"}, "use Strong, Weak or Dark"),
        ({"colour": "x"}, "no option 'colour'"),
    ])
    def test_bad_options(self, options, message):
        with pytest.raises(ValueError, match=message):
            OuluCasia(**options)


class TestOuluScan:
    def test_fixture_vl(self, fixtures_dir):
        result = OuluCasia().scan(fixtures_dir / "oulu-casia")
        assert result.labels == OULU_LABELS
        assert [s.name for s in result.sequences] == _NAMES
        assert [s.label for s in result.sequences] == ["happy", "surprise"] * 3
        assert {s.subject for s in result.sequences} == {"P001", "P002", "P003"}
        assert all(len(s.frames) == 5 for s in result.sequences)
        assert result.skipped == []
        assert all("/VL/Strong/" in f.path.replace("\\", "/") for s in result.sequences for f in s.frames)

    def test_fixture_ni(self, fixtures_dir):
        result = OuluCasia(modality="NI").scan(fixtures_dir / "oulu-casia")
        assert [s.name for s in result.sequences] == _NAMES[:4]
        assert all(len(s.frames) == 4 for s in result.sequences)

    def test_frame_order(self, fixtures_dir):
        seq = OuluCasia().scan(fixtures_dir / "oulu-casia").sequences[0]
        assert [Path(f.path).name for f in seq.frames] == [f"{i:03d}.jpeg" for i in range(5)]
        assert [f.index for f in seq.frames] == list(range(5))

    @pytest.mark.parametrize("sub", ["OriginalImg", "OriginalImg/VL", "OriginalImg/VL/Strong"])
    def test_any_level_as_root(self, fixtures_dir, sub):
        result = OuluCasia().scan(fixtures_dir / "oulu-casia" / sub)
        assert [s.name for s in result.sequences] == _NAMES

    def test_prefers_original_img_among_sets(self, tree_copy):
        tree = tree_copy("oulu-casia")
        shutil.copytree(tree / "OriginalImg" / "NI", tree / "Cropped" / "VL")
        result = OuluCasia().scan(tree)
        assert all("OriginalImg" in f.path for s in result.sequences for f in s.frames)

    def test_unknown_folders_reported(self, tree_copy):
        tree = tree_copy("oulu-casia")
        strong = tree / "OriginalImg" / "VL" / "Strong"
        (strong / "P001" / "Contempt").mkdir()
        (strong / "extra").mkdir()
        (strong / "P002" / "Surprise" / "info.txt").write_text("x")
        reasons = {s.path: s.reason for s in OuluCasia().scan(tree).skipped}
        assert reasons[str(strong / "P001" / "Contempt")].startswith("unknown expression folder")
        assert reasons[str(strong / "extra")] == "not a subject folder (expected Pxxx)"
        assert reasons[str(strong / "P002" / "Surprise" / "info.txt")] == "not an image file"

    def test_empty_expression_folder(self, tree_copy):
        tree = tree_copy("oulu-casia")
        folder = tree / "OriginalImg" / "VL" / "Strong" / "P003" / "Anger"
        folder.mkdir()
        reasons = {s.path: s.reason for s in OuluCasia().scan(tree).skipped}
        assert reasons[str(folder)] == "no image files in expression folder"


class TestOuluLayoutErrors:
    def test_missing_root(self, tmp_path):
        with pytest.raises(LayoutError, match="does not exist; oulu-casia expects OriginalImg/"):
            OuluCasia().scan(tmp_path / "nope")

    def test_root_is_file(self, fixtures_dir):
        with pytest.raises(LayoutError, match="is a file"):
            OuluCasia().scan(next((fixtures_dir / "oulu-casia").rglob("*.jpeg")))

    def test_not_oulu(self, tmp_path):
        (tmp_path / "images").mkdir()
        with pytest.raises(LayoutError, match="no OriginalImg/, VL/, NI/ or Pxxx folders"):
            OuluCasia().scan(tmp_path)

    def test_missing_illumination(self, fixtures_dir):
        with pytest.raises(LayoutError, match="no Weak/ folder \\(oulu-casia option illumination=Weak\\)"):
            OuluCasia(illumination="Weak").scan(fixtures_dir / "oulu-casia")

    def test_modality_folder_mismatch(self, fixtures_dir):
        with pytest.raises(LayoutError, match="is the VL/ modality folder but modality=NI"):
            OuluCasia(modality="NI").scan(fixtures_dir / "oulu-casia" / "OriginalImg" / "VL")

    def test_several_sets_without_original(self, tree_copy):
        tree = tree_copy("oulu-casia")
        shutil.copytree(tree / "OriginalImg", tree / "SetB")
        (tree / "OriginalImg").rename(tree / "SetC")
        with pytest.raises(LayoutError, match="several image sets"):
            OuluCasia().scan(tree)
