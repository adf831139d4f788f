"""Tests of the mmi adapter (facekit.datasets.mmi)."""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from facekit.datasets import get_dataset
from facekit.datasets.mmi import MMI, MMI_LABELS, UNLABELLED_REASON, emotion_label, read_emotion, read_session
from facekit.errors import LayoutError


def _metadata(code: str) -> str:
    return f'<?xml version="1.0"?>\n<MetaData><Metatag Name="Emotion" Value="{code}" /></MetaData>\n'


class TestEmotionLabel:
    @pytest.mark.parametrize("value, label", [
        ("1", "anger"), ("2", "disgust"), ("3", "fear"), ("4", "happy"), ("5", "sadness"), ("6", "surprise"),
        ("Happiness", "happy"), ("surprise", "surprise"),
    ])
    def test_values(self, value, label):
        assert emotion_label(value) == label

    @pytest.mark.parametrize("value", ["0", "7", "", "Neutral", "smile"])
    def test_bad_values(self, value):
        with pytest.raises(ValueError):
            emotion_label(value)


class TestReadXml:
    def test_read_session(self, fixtures_dir):
        subject, tracks = read_session(fixtures_dir / "mmi" / "Sessions" / "3" / "session.xml")
        assert subject == "2" and tracks == ["S002-003.avi"]

    def test_read_emotion(self, fixtures_dir):
        assert read_emotion(fixtures_dir / "mmi" / "Sessions" / "1" / "S001-001.xml") == "4"
        assert read_emotion(fixtures_dir / "mmi" / "Sessions" / "6" / "S003-006.xml") is None

    def test_case_and_namespace_insensitive(self, tmp_path):
        path = tmp_path / "m.xml"
        path.write_text('<m:Meta xmlns:m="urn:x"><m:METATAG name="emotion" value=" 6 "/></m:Meta>')
        assert read_emotion(path) == "6"

    def test_malformed(self, tmp_path):
        path = tmp_path / "m.xml"
        path.write_text("<Meta><Metatag")
        with pytest.raises(ET.ParseError):
            read_emotion(path)


class TestMMIScan:
    def test_registered(self):
        adapter = get_dataset("mmi")
        assert isinstance(adapter, MMI) and adapter.default_frames == "middle:3"
        assert MMI_LABELS == ("anger", "disgust", "fear", "happy", "sadness", "surprise")

    def test_fixture_scan(self, fixtures_dir):
        result = MMI().scan(fixtures_dir / "mmi")
        assert result.labels == MMI_LABELS
        assert [(s.name, s.subject, s.label) for s in result.sequences] == [
            ("1", "S001", "happy"), ("2", "S001", "surprise"), ("3", "S002", "happy"),
            ("4", "S002", "surprise"), ("5", "S003", "surprise")]
        assert [(Path(s.path).name, s.reason) for s in result.skipped] == [("6", UNLABELLED_REASON)]

    def test_video_frames(self, fixtures_dir):
        seq = MMI().scan(fixtures_dir / "mmi").sequences[0]
        assert len(seq.frames) == 7
        assert all(f.video and Path(f.path).name == "S001-001.avi" for f in seq.frames)
        assert [f.index for f in seq.frames] == list(range(7))

    def test_sessions_folder_as_root(self, fixtures_dir):
        assert len(MMI().scan(fixtures_dir / "mmi" / "Sessions").sequences) == 5

    def test_download_folder_one_level_up(self, fixtures_dir):
        assert len(MMI().scan(fixtures_dir).sequences) == 5  # fixtures/ holds a single download (mmi/)

    def test_natural_session_order(self, tree_copy):
        tree = tree_copy("mmi")
        shutil.copytree(tree / "Sessions" / "1", tree / "Sessions" / "10")
        assert [s.name for s in MMI().scan(tree).sequences] == ["1", "2", "3", "4", "5", "10"]


class TestMMIBrokenSessions:
    def test_unknown_emotion_code(self, tree_copy):
        tree = tree_copy("mmi")
        meta = tree / "Sessions" / "2" / "S001-002.xml"
        meta.write_text(_metadata("9"))
        result = MMI().scan(tree)
        assert "2" not in [s.name for s in result.sequences]
        bad = [s for s in result.skipped if s.path == str(meta)]
        assert len(bad) == 1 and "Emotion code 9 is not one of 1..6" in bad[0].reason

    def test_emotion_in_session_xml(self, tree_copy):
        tree = tree_copy("mmi")
        folder = tree / "Sessions" / "6"
        (folder / "session.xml").write_text(
            '<session sessionId="6"><subject id="3"/><track filename="S003-006.avi"/>'
            '<Metatag Name="Emotion" Value="5"/></session>')
        seq = {s.name: s for s in MMI().scan(tree).sequences}["6"]
        assert seq.label == "sadness" and seq.subject == "S003"

    def test_subject_from_video_name(self, tree_copy):
        tree = tree_copy("mmi")
        (tree / "Sessions" / "1" / "session.xml").write_text('<session sessionId="1"/>')
        seq = {s.name: s for s in MMI().scan(tree).sequences}["1"]
        assert seq.subject == "S001"

    def test_no_subject(self, tree_copy):
        tree = tree_copy("mmi")
        folder = tree / "Sessions" / "1"
        (folder / "session.xml").write_text("<session/>")
        (folder / "S001-001.avi").rename(folder / "take.avi")
        reasons = {s.path: s.reason for s in MMI().scan(tree).skipped}
        assert reasons[str(folder / "session.xml")].startswith("no <subject id>")

    def test_missing_session_xml(self, tree_copy):
        tree = tree_copy("mmi")
        (tree / "Sessions" / "3" / "session.xml").unlink()
        reasons = {s.path: s.reason for s in MMI().scan(tree).skipped}
        assert reasons[str(tree / "Sessions" / "3")] == "no session.xml in session folder"

    def test_malformed_session_xml(self, tree_copy):
        tree = tree_copy("mmi")
        path = tree / "Sessions" / "4" / "session.xml"
        path.write_text("<session><subject")
        reasons = {s.path: s.reason for s in MMI().scan(tree).skipped}
        assert reasons[str(path)].startswith("not well-formed XML")

    def test_malformed_metadata_xml(self, tree_copy):
        tree = tree_copy("mmi")
        (tree / "Sessions" / "4" / "S002-004.xml").write_text("<MetaData><Metatag")
        reasons = {s.path: s.reason for s in MMI().scan(tree).skipped}
        assert reasons[str(tree / "Sessions" / "4")].startswith("unreadable metadata XML")

    def test_image_only_session(self, tree_copy):
        tree = tree_copy("mmi")
        folder = tree / "Sessions" / "5"
        (folder / "S003-005.avi").unlink()
        (folder / "S003-005.jpg").write_bytes(b"\xff\xd8")
        reasons = {s.path: s.reason for s in MMI().scan(tree).skipped}
        assert "image-only sessions are not supported" in reasons[str(folder)]

    @pytest.mark.parametrize("content, reason", [(b"", "file is empty (0 bytes)"),
                                                 (b"not a video" * 10, "cannot be opened as a video")])
    def test_unreadable_video(self, tree_copy, content, reason):
        tree = tree_copy("mmi")
        video = tree / "Sessions" / "1" / "S001-001.avi"
        video.write_bytes(content)
        reasons = {s.path: s.reason for s in MMI().scan(tree).skipped}
        assert reasons[str(video)] == reason


class TestMMILayoutErrors:
    def test_missing_root(self, tmp_path):
        with pytest.raises(LayoutError, match="does not exist; mmi expects Sessions/<n>/"):
            MMI().scan(tmp_path / "nope")

    def test_root_is_file(self, fixtures_dir):
        with pytest.raises(LayoutError, match="is a file"):
            MMI().scan(fixtures_dir / "mmi" / "Sessions" / "1" / "session.xml")

    def test_not_mmi(self, fixtures_dir):
        with pytest.raises(LayoutError, match="no Sessions/ folder and no session folders with session.xml"):
            MMI().scan(fixtures_dir / "jaffe")

    def test_layout_without_usable_sessions(self, tmp_path):
        (tmp_path / "Sessions" / "7").mkdir(parents=True)
        result = MMI().scan(tmp_path)
        assert result.sequences == [] and result.skipped[0].reason == "no session.xml in session folder"
