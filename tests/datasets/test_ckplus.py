"""Tests of the ck+ adapter (facekit.datasets.ckplus)."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from facekit.datasets import get_dataset
from facekit.datasets.ckplus import CKPLUS_LABELS, UNLABELLED_REASON, CKPlus, parse_emotion_file
from facekit.errors import LayoutError


def _emotion(tree: Path, subject: str, seq: str) -> Path:
    return next((tree / "Emotion" / subject / seq).glob("*_emotion.txt"))


class TestParseEmotionFile:
    @pytest.mark.parametrize("text, label", [
        ("   1.0000000e+00\n", "anger"), ("   2.0000000e+00", "contempt"), ("3", "disgust"),
        ("   5.0000000e+00\n\n", "happy"), ("7.0", "surprise"),
    ])
    def test_codes(self, tmp_path, text, label):
        path = tmp_path / "S005_001_00000011_emotion.txt"
        path.write_text(text)
        assert parse_emotion_file(path) == label

    @pytest.mark.parametrize("text, message", [
        ("", "empty"), ("   \n", "empty"), ("happy", "one number"), ("3 4", "one number"),
        ("   0.0000000e+00", "not one of 1..7"), ("8", "not one of 1..7"), ("2.5", "not one of 1..7"),
        ("-1", "not one of 1..7"), ("inf", "not a finite number"), ("   1e400", "not a finite number"),
        ("-inf", "not a finite number"), ("nan", "not a finite number"),
    ])
    def test_malformed(self, tmp_path, text, message):
        path = tmp_path / "x_emotion.txt"
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            parse_emotion_file(path)


class TestCKPlusAdapter:
    def test_registered(self):
        adapter = get_dataset("CK+")
        assert isinstance(adapter, CKPlus)
        assert adapter.default_frames == "last:3" and adapter.options == {}
        assert CKPLUS_LABELS == ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")

    def test_fixture_scan(self, fixtures_dir):
        result = CKPlus().scan(fixtures_dir / "ck+")
        assert result.labels == CKPLUS_LABELS
        assert [s.name for s in result.sequences] == [
            "S005/001", "S005/002", "S010/001", "S010/002", "S011/001", "S011/002", "S014/001", "S014/002"]
        assert {s.subject for s in result.sequences} == {"S005", "S010", "S011", "S014"}
        assert Counter(s.label for s in result.sequences) == {"happy": 4, "surprise": 4}
        assert all(len(s.frames) == 6 for s in result.sequences)

    def test_frames_in_order(self, fixtures_dir):
        seq = CKPlus().scan(fixtures_dir / "ck+").sequences[0]
        assert [Path(f.path).name for f in seq.frames] == [f"S005_001_{i:08d}.png" for i in range(1, 7)]
        assert [f.index for f in seq.frames] == list(range(6))
        assert not any(f.video for f in seq.frames)

    def test_unlabelled_sequence_skipped(self, fixtures_dir):
        result = CKPlus().scan(fixtures_dir / "ck+")
        assert [(Path(s.path).parts[-2:], s.reason) for s in result.skipped] == [
            (("S014", "003"), UNLABELLED_REASON)]
        assert "327 of 593" in UNLABELLED_REASON

    def test_natural_frame_order(self, tree_copy):
        tree = tree_copy("ck+")
        seq_dir = tree / "cohn-kanade-images" / "S005" / "001"
        for i, path in enumerate(sorted(seq_dir.iterdir())):
            path.rename(seq_dir / f"img{i + 1}.png")  # img1 .. img6
        shutil.copy(seq_dir / "img6.png", seq_dir / "img10.png")
        seq = CKPlus().scan(tree).sequences[0]
        assert [Path(f.path).name for f in seq.frames] == [f"img{i}.png" for i in (1, 2, 3, 4, 5, 6, 10)]

    def test_clutter_ignored_and_other_files_reported(self, tree_copy):
        tree = tree_copy("ck+")
        seq_dir = tree / "cohn-kanade-images" / "S005" / "001"
        (seq_dir / ".DS_Store").write_bytes(b"\0\0")
        (seq_dir / "notes.txt").write_text("x")
        result = CKPlus().scan(tree)
        assert len(result.sequences[0].frames) == 6
        reasons = {Path(s.path).name: s.reason for s in result.skipped}
        assert reasons["notes.txt"] == "not an image file"
        assert ".DS_Store" not in reasons


class TestCKPlusRoots:
    def test_zip_folder_one_level_up(self, tree_copy, tmp_path):
        tree = tree_copy("ck+")
        wrapper = tmp_path / "download"
        wrapper.mkdir()
        tree.rename(wrapper / "CK+")
        result = CKPlus().scan(wrapper)
        assert len(result.sequences) == 8

    def test_emotion_labels_folder_name(self, tree_copy):
        tree = tree_copy("ck+")
        (tree / "Emotion").rename(tree / "Emotion_labels")
        assert len(CKPlus().scan(tree).sequences) == 8

    def test_emotion_labels_with_inner_emotion(self, tree_copy):
        tree = tree_copy("ck+")
        (tree / "Emotion_labels").mkdir()
        (tree / "Emotion").rename(tree / "Emotion_labels" / "Emotion")
        assert len(CKPlus().scan(tree).sequences) == 8


class TestCKPlusLayoutErrors:
    def test_missing_root(self, tmp_path):
        with pytest.raises(LayoutError, match="does not exist; ck\\+ expects cohn-kanade-images/") as err:
            CKPlus().scan(tmp_path / "missing")
        assert err.value.path == str(tmp_path / "missing")

    def test_root_is_file(self, tmp_path):
        path = tmp_path / "ck.zip"
        path.write_bytes(b"PK")
        with pytest.raises(LayoutError, match="is a file, not a folder"):
            CKPlus().scan(path)

    def test_not_ck_layout(self, tmp_path):
        (tmp_path / "something").mkdir()
        with pytest.raises(LayoutError, match="no cohn-kanade-images/ folder; ck\\+ expects"):
            CKPlus().scan(tmp_path)

    def test_pointed_at_images_folder(self, fixtures_dir):
        with pytest.raises(LayoutError, match="holds Sxxx folders but no cohn-kanade-images/"):
            CKPlus().scan(fixtures_dir / "ck+" / "cohn-kanade-images")

    def test_missing_emotion_folder(self, tree_copy):
        tree = tree_copy("ck+")
        shutil.rmtree(tree / "Emotion")
        with pytest.raises(LayoutError, match="no Emotion/ folder"):
            CKPlus().scan(tree)

    def test_layout_without_usable_sequences(self, tree_copy):
        tree = tree_copy("ck+")
        shutil.rmtree(tree / "Emotion")
        (tree / "Emotion").mkdir()
        result = CKPlus().scan(tree)
        assert result.sequences == [] and result.labels == CKPLUS_LABELS
        assert len(result.skipped) == 9
        assert {s.reason for s in result.skipped} == {UNLABELLED_REASON}


class TestCKPlusBrokenLabels:
    @pytest.mark.parametrize("text, message", [
        ("", "emotion file is empty"), ("happy\n", "does not hold one number"),
        ("   9.0000000e+00\n", "not one of 1..7"), ("   0.0000000e+00\n", "not one of 1..7"),
        ("   inf\n", "not a finite number"), ("1e400", "not a finite number"),
    ])
    def test_malformed_file_skips_its_sequence(self, tree_copy, text, message):
        tree = tree_copy("ck+")
        label_file = _emotion(tree, "S010", "002")
        label_file.write_text(text)
        result = CKPlus().scan(tree)
        assert "S010/002" not in [s.name for s in result.sequences]
        assert len(result.sequences) == 7
        bad = [s for s in result.skipped if s.path == str(label_file)]
        assert len(bad) == 1 and bad[0].reason.startswith(f"unusable emotion file {label_file.name}: ")
        assert message in bad[0].reason

    def test_several_emotion_files(self, tree_copy):
        tree = tree_copy("ck+")
        label_file = _emotion(tree, "S005", "001")
        shutil.copy(label_file, label_file.with_name("S005_001_00000005_emotion.txt"))
        result = CKPlus().scan(tree)
        assert "S005/001" not in [s.name for s in result.sequences]
        assert any(s.reason.startswith("several emotion files") for s in result.skipped)

    def test_orphan_label_and_empty_sequence(self, tree_copy):
        tree = tree_copy("ck+")
        (tree / "Emotion" / "S999" / "001").mkdir(parents=True)
        empty = tree / "cohn-kanade-images" / "S005" / "009"
        empty.mkdir()
        (tree / "cohn-kanade-images" / "README").mkdir()
        reasons = {s.path: s.reason for s in CKPlus().scan(tree).skipped}
        assert reasons[str(tree / "Emotion" / "S999" / "001")] == "emotion label without an image folder"
        assert reasons[str(empty)] == "no image files in sequence folder"
        assert reasons[str(tree / "cohn-kanade-images" / "README")] == "not a subject folder (expected Sxxx)"
