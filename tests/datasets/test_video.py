"""Tests of the video adapter (facekit.datasets.video)."""
from __future__ import annotations

import shutil

import pytest

from facekit.datasets import get_dataset
from facekit.datasets.video import VideoFolder, clip_frame_count
from facekit.errors import ImageReadError, LayoutError
from facekit.frames import select_frames


class TestClipFrameCount:
    def test_fixture_clips(self, fixtures_dir):
        assert clip_frame_count(fixtures_dir / "video/happy/S001-talk.avi") == 16
        assert clip_frame_count(fixtures_dir / "video/surprise/S002-talk.mp4") == 24

    def test_unreadable(self, tmp_path):
        (tmp_path / "a.mp4").write_bytes(b"")
        with pytest.raises(ImageReadError, match="empty"):
            clip_frame_count(tmp_path / "a.mp4")


class TestVideoFolderScan:
    def test_registered(self):
        adapter = get_dataset("video")
        assert isinstance(adapter, VideoFolder) and adapter.default_frames == "middle:3"
        assert adapter.options == {"subject_regex": None}

    def test_fixture_scan(self, fixtures_dir):
        result = get_dataset("video", subject_regex=r"^(S\d+)-").scan(fixtures_dir / "video")
        assert result.labels == ("happy", "surprise") and not result.skipped
        assert [(s.name, s.subject, s.label, len(s.frames)) for s in result.sequences] == [
            ("happy/S001-talk", "S001", "happy", 16), ("surprise/S002-talk", "S002", "surprise", 24)]
        frames = result.sequences[0].frames
        assert all(f.video and f.path.endswith("S001-talk.avi") for f in frames)
        assert [f.index for f in frames] == list(range(16))
        assert select_frames(len(frames), get_dataset("video").default_frames) == [7, 8, 9]

    def test_each_clip_its_own_subject_without_regex(self, fixtures_dir):
        result = get_dataset("video").scan(fixtures_dir / "video")
        assert [s.subject for s in result.sequences] == ["S001-talk", "S002-talk"]

    def test_what_is_skipped(self, tree_copy, fixtures_dir):
        root = tree_copy("video")
        happy = root / "happy"
        shutil.copy(fixtures_dir / "video/surprise/S002-talk.mp4", happy / "S003 clip")   # no extension
        shutil.copy(fixtures_dir / "jaffe/AA.HA1.1.tif", happy / "still.tif")
        (happy / "notes.txt").write_text("x")
        (happy / "empty.mp4").write_bytes(b"")
        (happy / "S009-broken.avi").write_bytes(b"RIFF\x00\x01\x00\x00AVI LIST" + bytes(300))
        (happy / "nested").mkdir()
        (happy / "Thumbs.db").write_bytes(b"x")
        (root / "readme.txt").write_text("x")
        (root / "happy" / "x9-talk.avi").write_bytes((fixtures_dir / "video/happy/S001-talk.avi").read_bytes())
        result = get_dataset("video", subject_regex=r"^(S\d+)").scan(root)
        assert [s.name for s in result.sequences] == ["happy/S001-talk", "happy/S003 clip", "surprise/S002-talk"]
        why = {p.rsplit("/", 1)[-1]: r for p, r in ((s.path, s.reason) for s in result.skipped)}
        assert why == {
            "readme.txt": "file outside a label folder",
            "nested": "sub-folder inside a label folder (not scanned)",
            "still.tif": "an image, not a video clip (use the folder adapter for stills)",
            "notes.txt": "not a video file", "empty.mp4": "not a video file",
            "S009-broken.avi": "cannot be opened as a video",
            "x9-talk.avi": "file name does not match subject_regex '^(S\\d+)'",
        }

    def test_layout_errors(self, tmp_path, fixtures_dir):
        with pytest.raises(LayoutError, match="does not exist"):
            get_dataset("video").scan(tmp_path / "missing")
        (tmp_path / "flat").mkdir()
        shutil.copy(fixtures_dir / "video/happy/S001-talk.avi", tmp_path / "flat")
        with pytest.raises(LayoutError, match="no label sub-folders"):
            get_dataset("video").scan(tmp_path / "flat")
        with pytest.raises(ValueError, match="not a valid regular expression"):
            get_dataset("video", subject_regex="(")

    def test_empty_label_folder(self, tmp_path, fixtures_dir):
        (tmp_path / "happy").mkdir()
        (tmp_path / "sad").mkdir()
        shutil.copy(fixtures_dir / "video/happy/S001-talk.avi", tmp_path / "sad")
        result = get_dataset("video").scan(tmp_path)
        assert result.labels == ("happy", "sad") and len(result.sequences) == 1
        assert [s.reason for s in result.skipped] == ["no video clips in label folder"]


class TestVideoPrepare:
    def test_prepare_reads_the_selected_frames(self, fixtures_dir, model_path, tmp_path):
        from facekit.prepare import PrepareConfig, prepare
        from facekit.store import open_facekit
        cfg = PrepareConfig(dataset="video", root=fixtures_dir / "video", out=tmp_path / "v.h5", augment="none",
                            options={"subject_regex": r"^(S\d+)-"}, workers=1, model=str(model_path),
                            progress=False)
        s = prepare(cfg)
        # middle:3 -> frames 7, 8, 9 and 11, 12, 13; frames 7 and 12 are blank (no face)
        assert s.complete and s.frames == 6 and s.faces == 4 and dict(s.rejects) == {"no face found": 2}
        with open_facekit(tmp_path / "v.h5") as f:
            frames = sorted(int(x) for x in f.column("faces/frame"))
        assert frames == [8, 9, 11, 13]
