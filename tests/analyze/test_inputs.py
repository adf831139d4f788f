"""Tests of facekit.analysis._inputs: the command line's paths -> inputs."""
import json
import os
import shutil

import pytest

from facekit.analysis._inputs import NOT_MEDIA, discover
from facekit.errors import FileError


class TestDiscover:
    def test_mixed_tree(self, mixed_tree):
        inputs, skipped = discover([mixed_tree])
        by_name = {os.path.relpath(i.name, mixed_tree): i for i in inputs}
        assert [os.path.relpath(i.name, mixed_tree) for i in inputs] == [
            "clips/a.avi", "clips/b.mp4", "clips/cut.avi", "clips/empty.mp4", "clips/lie.avi", "clips/noise.mp4",
            "stills/anim.gif", "stills/big.jpg", "stills/cat.png", "stills/half.png", "stills/scan0042",
            "stills/small.png", "stills/zero.jpg"]                      # natural order, folders recursive
        kinds = {k: v.kind for k, v in by_name.items()}
        assert kinds["clips/a.avi"] == kinds["clips/cut.avi"] == kinds["clips/lie.avi"] == "video"
        assert kinds["stills/scan0042"] == kinds["stills/anim.gif"] == kinds["stills/half.png"] == "image"
        assert by_name["clips/empty.mp4"].reason == by_name["stills/zero.jpg"].reason == "file is empty (0 bytes)"
        assert by_name["clips/noise.mp4"].kind == "reject" and "video" in by_name["clips/noise.mp4"].reason
        assert skipped == {NOT_MEDIA: 1}                              # notes.txt; .DS_Store is clutter

    def test_names_keep_the_users_spelling(self, fixtures_dir, monkeypatch):
        monkeypatch.chdir(fixtures_dir)
        inputs, _ = discover(["video", "./jaffe/AA.HA1.1.tif"])
        assert [i.name for i in inputs] == ["video/happy/S001-talk.avi", "video/surprise/S002-talk.mp4",
                                            "jaffe/AA.HA1.1.tif"]

    def test_named_file_always_gets_a_row(self, tmp_path):
        (tmp_path / "notes.txt").write_text("hello\n")
        inputs, skipped = discover([tmp_path / "notes.txt"])
        assert len(inputs) == 1 and inputs[0].kind == "reject" and inputs[0].reason.startswith(NOT_MEDIA)
        assert not skipped

    def test_same_file_once(self, fixtures_dir, tmp_path):
        clip = fixtures_dir / "video" / "happy" / "S001-talk.avi"
        (tmp_path / "link.avi").symlink_to(clip)
        inputs, _ = discover([clip, fixtures_dir / "video", tmp_path / "link.avi"])
        assert [i.path for i in inputs] == [str(clip), str(fixtures_dir / "video/surprise/S002-talk.mp4")]

    def test_pipes_are_never_opened(self, fixtures_dir, tmp_path):
        """A FIFO blocks whoever opens it for reading: discovery must not."""
        shutil.copy(fixtures_dir / "jaffe" / "AA.HA1.1.tif", tmp_path / "a.tif")
        os.mkfifo(tmp_path / "pipe")
        os.mkfifo(tmp_path / "pipe.png")
        inputs, skipped = discover([tmp_path])                  # returns (an open would block here)
        by_name = {os.path.basename(i.name): i for i in inputs}
        assert sorted(by_name) == ["a.tif", "pipe.png"] and skipped == {NOT_MEDIA: 1}
        assert by_name["pipe.png"].kind == "reject"
        assert by_name["pipe.png"].reason == "is not a regular file (a pipe, socket or device)"

    def test_symlink_loop_ends(self, fixtures_dir, tmp_path):
        shutil.copy(fixtures_dir / "jaffe" / "AA.HA1.1.tif", tmp_path / "a.tif")
        (tmp_path / "loop").symlink_to(tmp_path)
        inputs, _ = discover([tmp_path])
        assert len(inputs) == 1

    def test_missing_path_is_refused(self, tmp_path):
        with pytest.raises(FileError, match="nope.mp4: does not exist"):
            discover([tmp_path / "nope.mp4"])
        with pytest.raises(FileError, match="no inputs"):
            discover([])

    def test_unreadable_folder_is_counted(self, fixtures_dir, unprivileged):
        """Run where permissions apply (as ``nobody`` under root, who reads every folder)."""
        tree = unprivileged.dir / "tree"
        locked = tree / "locked"
        locked.mkdir(parents=True)
        shutil.copy(fixtures_dir / "jaffe" / "AA.HA1.1.tif", tree / "a.tif")
        locked.chmod(0)
        r = unprivileged.python("import json\nfrom facekit.analysis._inputs import discover\n"
                                f"inputs, skipped = discover([{str(tree)!r}])\n"
                                "print(json.dumps([len(inputs), skipped]))")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == [1, {"folder cannot be read (permission denied)": 1}]

    def test_name_that_is_not_utf8(self, fixtures_dir, tmp_path):
        raw = os.fsencode(tmp_path) + b"/caf\xe9.tif"
        shutil.copy(fixtures_dir / "jaffe" / "AA.HA1.1.tif", raw)
        inputs, _ = discover([tmp_path])
        assert inputs[0].name.endswith("caf\\xe9.tif") and inputs[0].name.encode("utf-8")
        assert os.path.exists(inputs[0].path)

    def test_own_output_folders_are_left_out(self, fixtures_dir, tmp_path):
        shutil.copy(fixtures_dir / "jaffe" / "AA.HA1.1.tif", tmp_path / "a.tif")
        for sub in ("faces.csv.parts", "aligned"):
            (tmp_path / sub).mkdir()
            shutil.copy(fixtures_dir / "jaffe" / "AA.HA1.1.tif", tmp_path / sub / "x.tif")
        inputs, _ = discover([tmp_path], exclude=[tmp_path / "faces.csv.parts", tmp_path / "aligned"])
        assert [os.path.basename(i.name) for i in inputs] == ["a.tif"]
