"""Tests of facekit.datasets._common (helpers shared by the adapters)."""
from __future__ import annotations

from pathlib import Path

import pytest

from facekit.datasets import Sequence
from facekit.datasets._common import canonical_label, child_dirs, collect_frames, descend_once, \
    describe_contents, find_child_dir, is_clutter, is_image_file, require_dir, sort_sequences
from facekit.errors import LayoutError


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class TestIsImageFile:
    @pytest.mark.parametrize("name", ["a.png", "a.JPG", "a.jpeg", "a.bmp", "a.tif", "a.TIFF", "a.webp"])
    def test_image_extensions(self, name):
        assert is_image_file(Path(name))

    @pytest.mark.parametrize("name", ["a.txt", "a.xml", "a.avi", "a.wrl", "README", "a.png.bak"])
    def test_other_extensions(self, name):
        assert not is_image_file(Path(name))


class TestIsClutter:
    @pytest.mark.parametrize("name", [".DS_Store", "._S005_001_00000001.png", "Thumbs.db", "desktop.ini",
                                      "__MACOSX"])
    def test_clutter(self, name):
        assert is_clutter(Path(name))

    def test_normal_file(self):
        assert not is_clutter(Path("S005_001_00000001.png"))


class TestCanonicalLabel:
    @pytest.mark.parametrize("raw, label", [
        ("Angry", "anger"), ("anger", "anger"), ("Happiness", "happy"), ("Happy", "happy"),
        ("Sad", "sadness"), ("Sadness", "sadness"), ("Surprise", "surprise"), ("FEAR", "fear"),
        ("Disgust", "disgust"), ("contempt", "contempt"), ("Neutral", "neutral"), (" SU ", "surprise"),
    ])
    def test_aliases(self, raw, label):
        assert canonical_label(raw) == label

    def test_unknown(self):
        assert canonical_label("Smirk") is None


class TestChildListings:
    def test_natural_order_and_clutter(self, tmp_path):
        for name in ["S10", "S2", "S1", ".hidden", "__MACOSX"]:
            (tmp_path / name).mkdir()
        _touch(tmp_path / "file.txt")
        assert [p.name for p in child_dirs(tmp_path)] == ["S1", "S2", "S10"]

    def test_find_child_dir_case_insensitive(self, tmp_path):
        (tmp_path / "Cohn-Kanade-Images").mkdir()
        assert find_child_dir(tmp_path, "cohn-kanade-images") == tmp_path / "Cohn-Kanade-Images"
        assert find_child_dir(tmp_path, "Emotion") is None

    def test_describe_contents(self, tmp_path):
        assert describe_contents(tmp_path) == "it is empty"
        (tmp_path / "a").mkdir()
        _touch(tmp_path / "b.txt")
        assert describe_contents(tmp_path) == "found: a/, b.txt"


class TestRequireDir:
    def test_missing(self, tmp_path):
        with pytest.raises(LayoutError, match="does not exist; x expects y"):
            require_dir(tmp_path / "nope", "x", "y")

    def test_file(self, tmp_path):
        with pytest.raises(LayoutError, match="is a file, not a folder"):
            require_dir(_touch(tmp_path / "f"), "x", "y")

    def test_folder(self, tmp_path):
        assert require_dir(str(tmp_path), "x", "y") == tmp_path


class TestDescendOnce:
    def test_root_itself(self, tmp_path):
        assert descend_once(tmp_path, lambda p: True) == tmp_path

    def test_single_child(self, tmp_path):
        (tmp_path / "inner" / "marker").mkdir(parents=True)
        assert descend_once(tmp_path, lambda p: (p / "marker").is_dir()) == tmp_path / "inner"

    def test_ambiguous_or_absent(self, tmp_path):
        assert descend_once(tmp_path, lambda p: (p / "marker").is_dir()) is None
        (tmp_path / "a" / "marker").mkdir(parents=True)
        (tmp_path / "b" / "marker").mkdir(parents=True)
        assert descend_once(tmp_path, lambda p: (p / "marker").is_dir()) is None


class TestCollectFrames:
    def test_frames_and_skips(self, tmp_path):
        for name in ["f10.png", "f2.png", "f1.PNG", ".DS_Store", "notes.txt", "mesh.wrl"]:
            _touch(tmp_path / name)
        (tmp_path / "sub").mkdir()
        frames, skipped = collect_frames(tmp_path, companions=[".wrl"])
        assert [Path(f.path).name for f in frames] == ["f1.PNG", "f2.png", "f10.png"]
        assert [f.index for f in frames] == [0, 1, 2]
        assert not any(f.video for f in frames)
        reasons = {Path(s.path).name: s.reason for s in skipped}
        assert reasons == {"notes.txt": "not an image file",
                           "sub": "sub-folder inside a frame folder (not scanned)"}

    def test_without_companions(self, tmp_path):
        _touch(tmp_path / "mesh.wrl")
        frames, skipped = collect_frames(tmp_path)
        assert frames == () and [s.reason for s in skipped] == ["not an image file"]


class TestSortSequences:
    def test_natural_order(self):
        seqs = [Sequence("S", name, None, ()) for name in ["S10/002", "S2/010", "S2/9"]]
        assert [s.name for s in sort_sequences(seqs)] == ["S2/9", "S2/010", "S10/002"]
