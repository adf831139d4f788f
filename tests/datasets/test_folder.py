"""Tests of the generic folder adapter (facekit.datasets.folder), on the fixture and on CK+48."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from facekit.datasets import get_dataset
from facekit.datasets.folder import ImageFolder
from facekit.errors import LayoutError

SUBJECT = r"^(S\d+)_"
SEQUENCE = r"^(S\d+_\d+)_"


class TestImageFolderOptions:
    def test_registered(self):
        adapter = get_dataset("folder")
        assert isinstance(adapter, ImageFolder) and adapter.default_frames == "all"
        assert adapter.options == {"subject_regex": None, "sequence_regex": None}

    @pytest.mark.parametrize("option", ["subject_regex", "sequence_regex"])
    def test_invalid_regex(self, option):
        with pytest.raises(ValueError, match=f"folder option {option}='\\(S' is not a valid regular"):
            ImageFolder(**{option: "(S"})

    def test_empty_regex_means_none(self, fixtures_dir):
        result = ImageFolder(subject_regex="", sequence_regex=" ").scan(fixtures_dir / "folder")
        assert len(result.sequences) == 11


class TestImageFolderScan:
    def test_defaults(self, fixtures_dir):
        result = ImageFolder().scan(fixtures_dir / "folder")
        assert result.labels == ("happy", "neutral", "surprise")
        assert len(result.sequences) == 11 and result.skipped == []
        seq = result.sequences[0]
        assert seq.name == "happy/S001_001_00000004" and seq.subject == "S001_001_00000004"
        assert len(seq.frames) == 1

    def test_subject_regex(self, fixtures_dir):
        result = ImageFolder(subject_regex=SUBJECT).scan(fixtures_dir / "folder")
        assert len(result.sequences) == 11
        assert Counter(s.subject for s in result.sequences) == {"S001": 4, "S002": 4, "S003": 3}
        assert Counter(s.label for s in result.sequences) == {"happy": 4, "surprise": 4, "neutral": 3}

    def test_whole_match_without_group(self, fixtures_dir):
        result = ImageFolder(subject_regex=r"S\d{3}").scan(fixtures_dir / "folder")
        assert {s.subject for s in result.sequences} == {"S001", "S002", "S003"}

    def test_sequence_regex(self, fixtures_dir):
        result = ImageFolder(subject_regex=SUBJECT, sequence_regex=SEQUENCE).scan(fixtures_dir / "folder")
        names = [s.name for s in result.sequences]
        assert names == ["happy/S001_001", "happy/S002_001", "happy/S003_002", "neutral/S001_003",
                         "neutral/S002_003", "neutral/S003_003", "surprise/S001_002", "surprise/S002_002",
                         "surprise/S003_001"]
        seq = result.sequences[0]
        assert seq.subject == "S001" and seq.label == "happy"
        assert [Path(f.path).name for f in seq.frames] == ["S001_001_00000004.png", "S001_001_00000005.png"]
        assert [f.index for f in seq.frames] == [0, 1]

    def test_sequence_frames_natural_order(self, tree_copy):
        tree = tree_copy("folder")
        src = tree / "happy" / "S001_001_00000004.png"
        for name in ["S009_001_img10.png", "S009_001_img9.png", "S009_001_img1.png"]:
            shutil.copy(src, tree / "happy" / name)
        result = ImageFolder(subject_regex=SUBJECT, sequence_regex=SEQUENCE).scan(tree)
        seq = {s.name: s for s in result.sequences}["happy/S009_001"]
        assert [Path(f.path).name for f in seq.frames] == [
            "S009_001_img1.png", "S009_001_img9.png", "S009_001_img10.png"]

    def test_unmatched_and_other_files(self, tree_copy):
        tree = tree_copy("folder")
        shutil.copy(tree / "happy" / "S001_001_00000004.png", tree / "happy" / "face.png")
        (tree / "happy" / "notes.txt").write_text("x")
        (tree / "happy" / ".DS_Store").write_bytes(b"\0")
        (tree / "happy" / "nested").mkdir()
        (tree / "labels.csv").write_text("x")
        (tree / "empty").mkdir()
        result = ImageFolder(subject_regex=SUBJECT).scan(tree)
        assert result.labels == ("empty", "happy", "neutral", "surprise")
        reasons = {Path(s.path).name: s.reason for s in result.skipped}
        assert reasons == {
            "face.png": "file name does not match subject_regex '^(S\\d+)_'",
            "notes.txt": "not an image file",
            "nested": "sub-folder inside a label folder (not scanned)",
            "labels.csv": "file outside a label folder",
            "empty": "no image files in label folder",
        }

    def test_sequence_regex_mismatch(self, tree_copy):
        tree = tree_copy("folder")
        shutil.copy(tree / "happy" / "S001_001_00000004.png", tree / "happy" / "S004.png")
        result = ImageFolder(sequence_regex=SEQUENCE).scan(tree)
        reasons = {Path(s.path).name: s.reason for s in result.skipped}
        assert reasons == {"S004.png": "file name does not match sequence_regex '^(S\\d+_\\d+)_'"}

    def test_sequence_with_two_subjects(self, tree_copy):
        tree = tree_copy("folder")
        result = ImageFolder(subject_regex=r"_(\d+)\.png$", sequence_regex=SEQUENCE).scan(tree)
        bad = [s for s in result.skipped if s.path == str(tree / "happy" / "S001_001")]
        assert len(bad) == 1 and bad[0].reason == "files of one sequence give different subjects (00000004, 00000005)"


class TestImageFolderEdgeCases:
    def test_same_stem_two_files_are_two_sequences(self, tree_copy):
        """Item 9 of issue 24: S010_a.png and S010_a.jpg are two faces, not two frames."""
        tree = tree_copy("folder")
        src = tree / "happy" / "S001_001_00000004.png"
        shutil.copy(src, tree / "happy" / "S010_a.png")
        shutil.copy(src, tree / "happy" / "S010_a.jpg")
        result = ImageFolder(subject_regex=SUBJECT).scan(tree)
        names = [s.name for s in result.sequences]
        assert "happy/S010_a.png" in names and "happy/S010_a.jpg" in names and "happy/S010_a" not in names
        assert all(len(s.frames) == 1 for s in result.sequences)
        assert len(result.sequences) == 13 and result.skipped == []

    def test_same_stem_files_are_frames_when_the_sequence_rule_says_so(self, tree_copy):
        tree = tree_copy("folder")
        src = tree / "happy" / "S001_001_00000004.png"
        shutil.copy(src, tree / "happy" / "S010_004_a.png")
        shutil.copy(src, tree / "happy" / "S010_004_a.jpg")
        result = ImageFolder(sequence_regex=SEQUENCE).scan(tree)
        seq = next(s for s in result.sequences if s.name == "happy/S010_004")
        assert [Path(f.path).name for f in seq.frames] == ["S010_004_a.jpg", "S010_004_a.png"]

    def test_output_of_the_running_prepare_is_not_input(self, tree_copy):
        """Item 10 of issue 24: OUT, OUT.parts/, OUT.lock inside the root."""
        from facekit.datasets._common import excluding_output
        tree = tree_copy("folder")
        (tree / "out.h5.parts").mkdir()
        (tree / "out.h5.parts" / "part-00000-of-00001.h5").write_bytes(b"")
        (tree / "out.h5").write_bytes(b"")
        (tree / "out.h5.lock").write_text("{}")
        (tree / "out.h5.tmp-host-1").write_bytes(b"")
        with excluding_output(tree / "out.h5"):
            result = ImageFolder().scan(tree)
        assert result.labels == ("happy", "neutral", "surprise") and result.skipped == []
        outside = ImageFolder().scan(tree)                      # without it, they are what they look like
        assert "out.h5.parts" in outside.labels

    def test_unreadable_label_folder_is_skipped_and_counted(self, tree_copy, unprivileged):
        """Item 2 of issue 24 (an unprivileged process: root reads every folder)."""
        tree = unprivileged.dir / "folder"
        shutil.copytree(tree_copy("folder"), tree)
        (tree / "neutral").chmod(0)
        r = unprivileged.python(
            "import json; from facekit.datasets.folder import ImageFolder\n"
            f"r = ImageFolder().scan({str(tree)!r})\n"
            "print(json.dumps([r.labels, len(r.sequences), [[s.path, s.reason] for s in r.skipped]]))")
        assert r.returncode == 0, r.stderr
        import json
        labels, n, skipped = json.loads(r.stdout)
        assert labels == ["happy", "neutral", "surprise"] and n == 8
        assert skipped == [[str(tree / "neutral"), "cannot be read (Permission denied)"]]


class TestImageFolderByContent:
    """Images are recognised by content (issue 23): GIF, no extension, a misleading extension."""

    @staticmethod
    def _tree(tree_copy, fixtures_dir):
        from PIL import Image
        tree = tree_copy("folder")
        happy = tree / "happy"
        src = happy / "S001_001_00000004.png"
        Image.open(src).convert("RGB").save(happy / "S010_anim.gif")
        shutil.copy(src, happy / "S011_scan0042")                                     # a PNG without extension
        shutil.copy(fixtures_dir / "jaffe" / "AA.HA1.1.tif", happy / "S012_photo.dat")  # a TIFF named .dat
        shutil.copy(fixtures_dir / "video" / "happy" / "S001-talk.avi", happy / "S013_clip.avi")
        shutil.copy(fixtures_dir / "video" / "surprise" / "S002-talk.mp4", happy / "S014_clip")  # no extension
        (happy / "S015_notes").write_text("not an image")
        (happy / "S016_empty.png").write_bytes(b"")                  # promises an image: prepare says why not
        return tree

    def test_any_decodable_image_is_a_frame_and_clips_point_at_the_video_adapter(self, tree_copy, fixtures_dir):
        tree = self._tree(tree_copy, fixtures_dir)
        result = ImageFolder(subject_regex=SUBJECT).scan(tree)
        names = {s.name for s in result.sequences}
        assert {"happy/S010_anim", "happy/S011_scan0042", "happy/S012_photo", "happy/S016_empty"} <= names
        assert len(result.sequences) == 15
        why = {Path(s.path).name: s.reason for s in result.skipped}
        assert why == {"S013_clip.avi": "a video clip, not an image (use the video adapter for clips)",
                       "S014_clip": "a video clip, not an image (use the video adapter for clips)",
                       "S015_notes": "not an image file"}

    def test_prepare_aligns_them(self, tree_copy, fixtures_dir, model_path, tmp_path):
        from facekit.prepare import PrepareConfig, prepare
        from facekit.store import open_facekit
        tree = self._tree(tree_copy, fixtures_dir)
        s = prepare(PrepareConfig(dataset="folder", root=tree, out=tmp_path / "o.h5", augment="none", workers=1,
                                  options={"subject_regex": SUBJECT}, model=str(model_path), progress=False))
        with open_facekit(tmp_path / "o.h5") as f:
            sources = set(f.column("faces/source"))
            rejects = dict(f.rejects)
        assert {"happy/S010_anim.gif", "happy/S011_scan0042", "happy/S012_photo.dat"} <= sources
        assert rejects["happy/S016_empty.png"] == "file is empty (0 bytes)"
        assert rejects["happy/S013_clip.avi"] == "a video clip, not an image (use the video adapter for clips)"
        assert s.faces == 14

    def test_a_pipe_is_never_opened(self, tree_copy):
        """A FIFO blocks whoever opens it for reading: the scan must not."""
        import os
        tree = tree_copy("folder")
        os.mkfifo(tree / "happy" / "S020_pipe")
        os.mkfifo(tree / "happy" / "S021_pipe.png")
        result = ImageFolder().scan(tree)                       # returns (a blocking open would hang here)
        why = {Path(s.path).name: s.reason for s in result.skipped}
        assert why == {"S020_pipe": "not an image file"}
        assert "happy/S021_pipe" in {s.name for s in result.sequences}       # rejected by prepare's reader

    def test_unreadable_image_file_is_kept_for_the_reader(self, tree_copy, unprivileged):
        tree = unprivileged.dir / "folder"
        shutil.copytree(tree_copy("folder"), tree)
        (tree / "happy" / "S001_001_00000004.png").chmod(0)
        r = unprivileged.python(
            "from facekit.datasets.folder import ImageFolder\n"
            f"r = ImageFolder().scan({str(tree)!r})\n"
            "print(len(r.sequences), len(r.skipped))")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["11", "0"]


class TestImageFolderLayoutErrors:
    def test_missing_root(self, tmp_path):
        with pytest.raises(LayoutError, match="does not exist; folder expects <label>/<image files>"):
            ImageFolder().scan(tmp_path / "nope")

    def test_root_is_file(self, fixtures_dir):
        with pytest.raises(LayoutError, match="is a file"):
            ImageFolder().scan(fixtures_dir / "folder" / "happy" / "S001_001_00000004.png")

    def test_unreadable_root(self, tree_copy, unprivileged):
        tree = unprivileged.dir / "folder"
        shutil.copytree(tree_copy("folder"), tree)
        tree.chmod(0o311)
        r = unprivileged.python("from facekit.datasets.folder import ImageFolder\n"
                                "from facekit.errors import LayoutError\n"
                                f"try:\n    ImageFolder().scan({str(tree)!r})\n"
                                "except LayoutError as e:\n    print(e)")
        assert r.stdout.strip() == f"{tree}: folder cannot be read (Permission denied)", r.stderr

    def test_no_label_folders(self, fixtures_dir):
        with pytest.raises(LayoutError, match="no label sub-folders; folder expects"):
            ImageFolder().scan(fixtures_dir / "folder" / "happy")


class TestImageFolderCKPlus48:
    def test_counts(self, ckplus48_dir):
        result = ImageFolder(subject_regex=SUBJECT).scan(ckplus48_dir)
        assert result.labels == ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
        assert len(result.sequences) == 981 and result.skipped == []
        assert len({s.subject for s in result.sequences}) == 118
        assert Counter(s.label for s in result.sequences) == {
            "anger": 135, "contempt": 54, "disgust": 177, "fear": 75, "happy": 207, "sadness": 84,
            "surprise": 249}
        assert all(s.subject == Path(s.frames[0].path).name[:4] for s in result.sequences)

    def test_sequences(self, ckplus48_dir):
        result = ImageFolder(subject_regex=SUBJECT, sequence_regex=SEQUENCE).scan(ckplus48_dir)
        assert len(result.sequences) == 327
        assert sum(len(s.frames) for s in result.sequences) == 981
