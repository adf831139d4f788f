"""Tests of the jaffe adapter (facekit.datasets.jaffe), on the fixture and on the real JAFFE."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from facekit.datasets import get_dataset
from facekit.datasets.jaffe import JAFFE, JAFFE_CODES, JAFFE_LABELS
from facekit.errors import LayoutError


class TestJAFFEScan:
    def test_registered(self):
        adapter = get_dataset("jaffe")
        assert isinstance(adapter, JAFFE) and adapter.default_frames == "all"
        assert JAFFE_LABELS == ("anger", "disgust", "fear", "happy", "neutral", "sadness", "surprise")
        assert set(JAFFE_CODES.values()) == set(JAFFE_LABELS)

    def test_fixture_scan(self, fixtures_dir):
        result = JAFFE().scan(fixtures_dir / "jaffe")
        assert result.labels == JAFFE_LABELS
        assert len(result.sequences) == 11 and result.skipped == []
        assert Counter(s.subject for s in result.sequences) == {"AA": 4, "BB": 4, "CC": 3}
        assert Counter(s.label for s in result.sequences) == {"happy": 4, "surprise": 4, "neutral": 3}
        first = result.sequences[0]
        assert first.name == "AA.HA1.1" and first.label == "happy" and first.subject == "AA"
        assert len(first.frames) == 1 and first.frames[0].index == 0
        assert Path(first.frames[0].path).name == "AA.HA1.1.tif"

    def test_natural_name_order(self, fixtures_dir):
        names = [s.name for s in JAFFE().scan(fixtures_dir / "jaffe").sequences]
        assert names.index("BB.NE1.8") < names.index("BB.SU1.6") < names.index("CC.HA1.9")
        assert names[-1] == "CC.SU1.10"

    def test_bad_names_skipped(self, tree_copy):
        tree = tree_copy("jaffe")
        src = tree / "AA.HA1.1.tif"
        for name in ["AA.XX1.50.tiff", "portrait.tiff", "AA.HA1.tiff"]:
            shutil.copy(src, tree / name)
        (tree / "README").write_text("x")
        (tree / ".DS_Store").write_bytes(b"\0")
        (tree / "extra").mkdir()
        result = JAFFE().scan(tree)
        assert len(result.sequences) == 11
        reasons = {Path(s.path).name: s.reason for s in result.skipped}
        assert reasons == {
            "AA.HA1.tiff": "file name does not match XX.EEn.NNN (e.g. KA.AN1.39.tiff)",
            "AA.XX1.50.tiff": "unknown expression code 'XX' (expected one of AN DI FE HA NE SA SU)",
            "README": "not an image file",
            "extra": "sub-folder (not scanned)",
            "portrait.tiff": "file name does not match XX.EEn.NNN (e.g. KA.AN1.39.tiff)",
        }

    def test_released_tiff_spelling(self, tree_copy):
        tree = tree_copy("jaffe")
        for f in tree.glob("*.tif"):
            f.rename(f.with_suffix(".tiff"))
        result = JAFFE().scan(tree)
        assert len(result.sequences) == 11 and result.skipped == []

    def test_other_extension_and_wrapper(self, tree_copy, tmp_path):
        tree = tree_copy("jaffe")
        (tree / "AA.HA1.1.tif").rename(tree / "AA.HA1.1.png")
        wrapper = tmp_path / "download"
        wrapper.mkdir()
        tree.rename(wrapper / "jaffe")
        (wrapper / "SOURCE.txt").write_text("x")
        assert len(JAFFE().scan(wrapper).sequences) == 11


class TestJAFFELayoutErrors:
    def test_missing_root(self, tmp_path):
        with pytest.raises(LayoutError, match="does not exist; jaffe expects image files named XX.EEn.NNN"):
            JAFFE().scan(tmp_path / "nope")

    def test_root_is_file(self, fixtures_dir):
        with pytest.raises(LayoutError, match="is a file"):
            JAFFE().scan(fixtures_dir / "jaffe" / "AA.HA1.1.tif")

    def test_not_jaffe(self, fixtures_dir):
        with pytest.raises(LayoutError, match="no XX.EEn.NNN image files"):
            JAFFE().scan(fixtures_dir / "folder")


class TestJAFFERealData:
    def test_real_jaffe(self, jaffe_dir):
        result = JAFFE().scan(jaffe_dir)
        assert len(result.sequences) == 213 and result.skipped == []
        assert len({s.subject for s in result.sequences}) == 10
        codes = Counter(s.name.split(".")[1][:2] for s in result.sequences)
        assert codes == {"AN": 30, "DI": 29, "FE": 32, "HA": 31, "NE": 30, "SA": 31, "SU": 30}
        assert Counter(s.label for s in result.sequences) == {
            "anger": 30, "disgust": 29, "fear": 32, "happy": 31, "neutral": 30, "sadness": 31, "surprise": 30}
        assert result.sequences[0].name == "KA.AN1.39"
