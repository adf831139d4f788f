import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from facekit.errors import FileError, LayoutError, NotAFacekitFileError, OutputExistsError
from facekit.prepare import NothingUsableError, prepare
from facekit.prepare import _worker
from facekit.store import open_facekit, schema

FIXTURE_RUNS = [
    # dataset, tree, options, expected faces, expected subjects, expected labels present
    ("ck+", "ck+", {}, 24, 4, {"happy", "surprise"}),
    ("oulu-casia", "oulu-casia", {}, 18, 3, {"happy", "surprise"}),
    ("mmi", "mmi", {}, 15, 3, {"happy", "surprise"}),
    ("bu-4dfe", "bu-4dfe", {}, 24, 3, {"happy", "surprise"}),
    ("jaffe", "jaffe", {}, 11, 3, {"happy", "surprise", "neutral"}),
    ("folder", "folder", {"subject_regex": r"^(S\d+)_"}, None, None, None),
]


class TestPrepareOnFixtures:
    @pytest.mark.parametrize("dataset,tree,options,faces,subjects,labels", FIXTURE_RUNS,
                             ids=[r[0] for r in FIXTURE_RUNS])
    def test_every_adapter_end_to_end(self, make_config, fixtures_dir, dataset, tree, options, faces, subjects,
                                      labels):
        cfg = make_config(dataset, fixtures_dir / tree, options=options, augment="none")
        s = prepare(cfg)
        assert s.complete and s.faces == s.frames and not s.rejects     # every fixture face aligns
        with open_facekit(cfg.out) as f:
            assert f.n_faces == s.faces and f.n_samples == s.faces
            assert f.images.shape[1:] == (140, 140) and f.images.dtype == np.uint8
            if faces is not None:
                assert s.faces == faces
                assert len(f.subjects) == subjects
                names = f.label_names
                assert {names[i] for i in set(f.column("samples/label").tolist())} == labels
            sources = f.column("faces/source")
            assert not any(str(p).startswith("/") for p in sources)          # relative to the root
            assert f.config["dataset"] == dataset

    def test_paper_augmentation_with_two_workers(self, make_config, fixtures_dir):
        cfg = make_config("ck+", fixtures_dir / "ck+", workers=2, part_faces=6)
        s = prepare(cfg)
        assert s.workers == 2 and s.parts_total == 4
        assert (s.sequences, s.sequences_skipped, s.faces, s.samples) == (8, 1, 24, 24 * 110)
        with open_facekit(cfg.out) as f:
            assert f.images.shape == (2640, 96, 96)
            face = f.column("samples/face")
            assert (np.bincount(face) == 110).all()
            assert f.column("samples/patch")[:10].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
            assert f.column("samples/frame")[::330].tolist() == [3, 3, 3, 3, 3, 3, 3, 3]  # last 3 of 6 frames
            assert f.rejects == [("cohn-kanade-images/S014/003", f.rejects[0][1])]
            assert f.h5.attrs["patch_size"] == 96 and f.face_box == (14, 14, 112)
            # sample 0 of each face is the centre crop of its aligned canvas
            np.testing.assert_array_equal(f.images[0], f.h5["faces/image"][0][22:118, 22:118])

    def test_one_process_run_restores_opencv_threads(self, make_config, fixtures_dir):
        before = cv2.getNumThreads()
        try:
            cv2.setNumThreads(3)
            seen = []
            orig = _worker.PartProcessor._face

            def spy(self, *a, **k):
                seen.append(cv2.getNumThreads())
                return orig(self, *a, **k)
            _worker.PartProcessor._face = spy
            try:
                prepare(make_config("ck+", fixtures_dir / "ck+", augment="none", workers=1, limit=2))
            finally:
                _worker.PartProcessor._face = orig
            assert seen and set(seen) == {1}            # one OpenCV thread while preparing
            assert cv2.getNumThreads() == 3              # the caller's setting afterwards
        finally:
            cv2.setNumThreads(before)

    def test_colour_and_frames_override(self, make_config, fixtures_dir):
        cfg = make_config("ck+", fixtures_dir / "ck+", augment="none", grayscale=False, frames="last:1")
        s = prepare(cfg)
        assert s.faces == 8
        with open_facekit(cfg.out) as f:
            assert f.images.shape[1:] == (140, 140, 3)


class TestPoseAndBlendshapes:
    """Each face's head pose and blendshapes are stored (faces/pose, faces/blendshapes)."""

    @pytest.mark.parametrize("augment,workers", [("none", 1), ("paper", 2)])
    def test_stored_values_are_the_landmarkers(self, make_config, fixtures_dir, model_path, augment, workers):
        from facekit import Landmarker, read_image
        from facekit.detect import BLENDSHAPE_NAMES
        cfg = make_config("jaffe", fixtures_dir / "jaffe", augment=augment, workers=workers, part_faces=4)
        prepare(cfg)
        with open_facekit(cfg.out) as f:
            assert f.has_pose and f.has_blendshapes and f.blendshape_names == list(BLENDSHAPE_NAMES)
            pose, shapes, sources = f.pose, f.blendshapes, f.column("faces/source")
            assert pose.shape == (11, 3) and shapes.shape == (11, 52) and pose.dtype == shapes.dtype == np.float32
        with Landmarker(model_path, pose=True, blendshapes=True) as lm:
            for i, src in enumerate(sources):
                face = lm.detect(read_image(fixtures_dir / "jaffe" / src))
                np.testing.assert_array_equal(pose[i], np.asarray(face.pose, np.float32), err_msg=src)
                np.testing.assert_array_equal(shapes[i], face.blendshape_scores, err_msg=src)
        assert np.abs(pose).max() < 45 and (shapes >= 0).all() and (shapes <= 1).all()

    def test_without_them_and_resume_redoes_parts_of_the_other_setting(self, make_config, fixtures_dir):
        cfg = make_config("jaffe", fixtures_dir / "jaffe", augment="none", part_faces=4, pose_blendshapes=False)
        s = prepare(cfg)
        with open_facekit(cfg.out) as f:
            assert not f.has_pose and f.pose is None and f.config["pose_blendshapes"] is False
        s2 = prepare(make_config("jaffe", fixtures_dir / "jaffe", augment="none", part_faces=4, resume=True))
        assert s2.parts_reused == 0 and s2.parts_done == s.parts_total
        with open_facekit(cfg.out) as f:
            assert f.has_pose and f.pose.shape == (11, 3)


class TestBadInput:
    def test_per_file_problems_are_rejected_and_the_run_goes_on(self, make_config, ckplus_copy):
        seq = ckplus_copy / "cohn-kanade-images" / "S005" / "001"
        frames = sorted(seq.glob("*.png"))
        frames[-1].write_bytes(b"\x89PNG\r\n\x1a\n garbage")                     # corrupt
        cv2.imwrite(str(frames[-2]), np.full((160, 160), 90, np.uint8))         # no face
        emo = sorted((ckplus_copy / "Emotion" / "S010").rglob("*_emotion.txt"))[0]
        emo.write_text("happy\n")                                              # malformed label
        s = prepare(make_config("ck+", ckplus_copy, augment="none"))
        assert s.complete and s.faces == 24 - 3 - 2
        assert s.rejects["no face found"] == 1
        assert any("cannot be decoded" in r for r in s.rejects)
        with open_facekit(s.out) as f:
            paths = dict(f.rejects)
        assert paths[frames[-1].relative_to(ckplus_copy).as_posix()].startswith("cannot be decoded")
        assert paths[frames[-2].relative_to(ckplus_copy).as_posix()] == "no face found"
        assert any(emo.name in p or "S010" in p for p in paths)

    def test_wrong_layout(self, make_config, fixtures_dir):
        with pytest.raises(LayoutError, match="cohn-kanade-images"):
            prepare(make_config("ck+", fixtures_dir / "jaffe"))

    def test_nothing_usable(self, make_config, tmp_path):
        root = tmp_path / "faceless"
        (root / "happy").mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(root / "happy" / f"S1_{i}.png"), np.full((100, 100), 50 + i, np.uint8))
        with pytest.raises(NothingUsableError, match="no face could be aligned"):
            prepare(make_config("folder", root, augment="none"))
        assert not (tmp_path / "out.h5").exists()

    def test_empty_layout(self, make_config, tmp_path):
        (tmp_path / "empty" / "happy").mkdir(parents=True)
        with pytest.raises((NothingUsableError, LayoutError)):
            prepare(make_config("folder", tmp_path / "empty"))

    def test_output_exists_needs_force(self, make_config, fixtures_dir):
        cfg = make_config("jaffe", fixtures_dir / "jaffe", augment="none")
        prepare(cfg)
        with pytest.raises(OutputExistsError, match="--force"):
            prepare(make_config("jaffe", fixtures_dir / "jaffe", augment="none"))
        assert prepare(make_config("jaffe", fixtures_dir / "jaffe", augment="none", force=True)).complete

    def test_unwritable_output(self, make_config, fixtures_dir, tmp_path):
        blocker = tmp_path / "file"
        blocker.write_text("x")
        with pytest.raises(FileError, match="cannot write"):
            prepare(make_config("jaffe", fixtures_dir / "jaffe", out="file/out.h5"))
        with pytest.raises(FileError, match="is a folder"):
            prepare(make_config("jaffe", fixtures_dir / "jaffe", out="."))


class TestInterruptAndResume:
    def test_ctrl_c_keeps_finished_parts_and_resume_reuses_them(self, make_config, fixtures_dir, monkeypatch):
        calls = {"n": 0}
        real = _worker.PartProcessor.process

        def flaky(self, part, path, progress=None):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return real(self, part, path, progress)

        monkeypatch.setattr(_worker.PartProcessor, "process", flaky)
        cfg = make_config("ck+", fixtures_dir / "ck+", part_faces=6)
        with pytest.raises(KeyboardInterrupt):
            prepare(cfg)
        parts = sorted(p.name for p in (cfg.out.parent / "out.h5.parts").iterdir())
        assert not cfg.out.exists() and parts == ["part-00000-of-00004.h5", "part-00001-of-00004.h5"]
        with pytest.raises(OutputExistsError, match="--resume"):
            prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6))
        monkeypatch.setattr(_worker.PartProcessor, "process", real)
        s = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, resume=True))
        assert s.complete and s.parts_reused == 2 and s.parts_done == 2 and s.samples == 24 * 110

    def test_resume_rewrites_a_part_of_another_part_format(self, make_config, fixtures_dir):
        cfg = make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none")
        first = prepare(cfg)
        parts_dir = cfg.out.parent / "out.h5.parts"
        with h5py.File(sorted(parts_dir.iterdir())[1], "a") as f:
            f.attrs["part_version"] = schema.PART_VERSION - 1
        s = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", resume=True))
        assert s.complete and (s.parts_reused, s.parts_done) == (first.parts_total - 1, 1)
        assert len(list(parts_dir.iterdir())) == first.parts_total

    def test_resume_redoes_parts_made_with_other_settings(self, make_config, fixtures_dir):
        prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none"))
        s = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, resume=True))
        assert s.parts_reused == 0 and s.samples == 24 * 110

    def test_stale_temp_files_are_removed(self, make_config, fixtures_dir, tmp_path):
        parts = tmp_path / "out.h5.parts"
        parts.mkdir()
        stale = parts / "part-00000-of-00004.h5.tmp-99999"
        stale.write_bytes(b"half a part")
        s = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", resume=True))
        assert s.complete and not stale.exists()

    @pytest.mark.slow
    def test_kill_9_leaves_nothing_that_looks_valid(self, model_path, jaffe_dir, tmp_path):
        out = tmp_path / "j.h5"
        cmd = [sys.executable, "-m", "cli", "prepare", "jaffe", str(jaffe_dir), str(out), "--workers", "1",
               "--part-size", "8", "--model", str(model_path), "-q"]
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        parts = tmp_path / "j.h5.parts"
        deadline = time.time() + 60
        while time.time() < deadline and not list(parts.glob("part-*-of-*.h5")):
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not out.exists()
        with pytest.raises(NotAFacekitFileError):
            open_facekit(out)
        done = len(list(parts.glob("part-*-of-*.h5")))
        assert done >= 1
        r = subprocess.run(cmd + ["--resume", "--json"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        import json
        summary = json.loads(r.stdout)
        assert summary["parts"]["reused"] >= 1 and summary["faces_aligned"] == 213
        with open_facekit(out) as f:
            assert f.n_samples == 213 * 110


class TestShards:
    def test_two_shards_then_complete(self, make_config, fixtures_dir):
        a = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", shard=(0, 2)))
        assert not a.complete and a.parts_done == 2 and not (a.out and os.path.exists(a.out))
        b = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", shard=(1, 2),
                                resume=True))
        assert b.complete and b.faces == 24
        whole = prepare(make_config("ck+", fixtures_dir / "ck+", out="whole.h5", part_faces=6, augment="none"))
        with open_facekit(b.out) as f, open_facekit(whole.out) as g:
            np.testing.assert_array_equal(f.images[:], g.images[:])
            assert f.column("faces/source").tolist() == g.column("faces/source").tolist()


@pytest.mark.slow
class TestRealData:
    def test_ckplus48_through_the_folder_adapter(self, make_config, ckplus48_dir):
        """>= 99% of the 981 CK+48 crops (48x48) are aligned."""
        s = prepare(make_config("folder", ckplus48_dir, options={"subject_regex": r"^(S\d+)_"},
                                augment="none", workers=2))
        assert s.frames == 981
        assert s.faces / 981 >= 0.99, s.rejects
        with open_facekit(s.out) as f:
            assert len(f.subjects) == 118 and len(f.label_names) == 7


# --- the cases of issue 24: bad input, a second run, leftovers ------------------------
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _folder_copy(fixtures_dir, dst):
    import shutil
    shutil.copytree(fixtures_dir / "folder", dst)
    return dst


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG that announces w x h pixels and holds no image data (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _bomb_png(w: int, h: int) -> bytes:
    """A valid, all-black grayscale PNG of w x h pixels: a few hundred kB that decode to w*h bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    z = zlib.compressobj(9)
    row = bytes(w + 1)
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _wait_for(pattern, marks, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list(marks.glob(pattern)):
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    raise AssertionError(f"no {pattern}")


def _host() -> str:
    """This machine's name as temporary and lock file names spell it."""
    import re
    import socket
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          timeout=300, **kw)


class TestSecondRun:
    """Item 6: a lock on OUT; a second prepare on the same OUT is refused and harms nothing."""

    @pytest.mark.parametrize("second", [["--force"], ["--resume"], []], ids=["force", "resume", "plain"])
    def test_a_second_run_is_refused_while_the_first_works(self, model_path, fixtures_dir, tmp_path, second,
                                                          held_run):
        out = tmp_path / "o.h5"
        marks = tmp_path / "marks"
        first = held_run(marks, 1, "prepare", "ck+", fixtures_dir / "ck+", out, "--workers", "2",
                         "--part-size", "9", "--augment", "none", "-q")
        _wait_for("holding-*-1", marks, first)
        temps = sorted((tmp_path / "o.h5.parts").glob("part-00001-*.tmp-*"))
        # a second run on other data into the same OUT
        r = _cli("prepare", "jaffe", fixtures_dir / "jaffe", out, "--augment", "none",
                 "-q", *second)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().splitlines() == [r.stderr.strip()]
        assert r.stderr.startswith(f"error: {out}: locked by pid {first.pid} on ") and "(started " in r.stderr
        assert temps and all(t.exists() for t in temps)             # the first run's work is untouched
        (marks / "release").write_text("")
        stdout, stderr = first.communicate(timeout=120)
        assert first.returncode == 0, stderr
        assert stdout.startswith(f"wrote {out}")
        with open_facekit(out) as f:
            assert f.n_faces == 24 and f.dataset == "ck+"
        assert not (tmp_path / "o.h5.lock").exists()

    def test_a_lock_left_by_a_killed_run_is_taken_over(self, make_config, fixtures_dir, tmp_path):
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        (tmp_path / "out.h5.lock").write_text(json.dumps({"pid": dead.pid, "host": _host(), "started": "t"}))
        s = prepare(make_config("jaffe", fixtures_dir / "jaffe", augment="none"))
        assert s.complete and not (tmp_path / "out.h5.lock").exists()


class TestShardsWithoutResume:
    """Item 7: the shards of one run fill one OUT.parts/ without --resume, also at the same time."""

    def test_shard_after_shard(self, make_config, fixtures_dir):
        a = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", shard=(0, 2)))
        assert not a.complete and a.parts_done == 2
        b = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", shard=(1, 2)))
        assert b.complete and b.faces == 24 and b.parts_reused == 0 and b.parts_done == 2
        again = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", shard=(0, 2),
                                    force=True))
        assert again.complete and again.parts_done == 2        # --force with --shard redid only shard 0

    def test_shards_at_the_same_time(self, model_path, fixtures_dir, tmp_path, held_run):
        out = tmp_path / "o.h5"
        common = ["ck+", fixtures_dir / "ck+", out, "--part-size", "6", "--augment", "none",
                  "--workers", "1", "-q"]
        marks = tmp_path / "marks"
        first = held_run(marks, 0, "prepare", *common, "--shard", "0/2")
        _wait_for("holding-*-0", marks, first)
        r = _cli("prepare", *common, "--shard", "1/2")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"parts written to {out}.parts (2/4 present")
        r = _cli("prepare", *common, "--shard", "0/2")       # the same shard twice: refused
        assert r.returncode == 2 and "locked by pid" in r.stderr
        (marks / "release").write_text("")
        stdout, stderr = first.communicate(timeout=120)
        assert first.returncode == 0, stderr
        assert stdout.startswith(f"wrote {out}")
        with open_facekit(out) as f:
            assert f.n_faces == 24

    def test_parts_of_other_settings_are_refused(self, make_config, fixtures_dir):
        prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", shard=(0, 2)))
        with pytest.raises(OutputExistsError, match="other settings"):
            prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="paper", shard=(1, 2)))


class TestResumeOfAFinishedFile:
    """Item 3: a resume with nothing to do leaves OUT (and its folds) as it is."""

    def test_nothing_to_do_keeps_the_file_byte_for_byte(self, make_config, fixtures_dir):
        from facekit.split import create_folds, read_folds
        cfg = make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none")
        prepare(cfg)
        create_folds(cfg.out, k=3)
        before = cfg.out.read_bytes()
        s = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", resume=True))
        assert s.complete and s.unchanged and s.faces == 24 and s.parts_done == 0
        assert "up to date" in s.format().splitlines()[0]
        assert cfg.out.read_bytes() == before and read_folds(cfg.out).k == 3

    def test_a_rewritten_part_keeps_the_folds_when_the_samples_are_the_same(self, make_config, fixtures_dir):
        from facekit.split import create_folds, read_folds
        cfg = make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none")
        prepare(cfg)
        folds = create_folds(cfg.out, k=3)
        (cfg.out.parent / "out.h5.parts" / "part-00002-of-00004.h5").unlink()
        s = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", resume=True))
        assert s.complete and not s.unchanged and s.parts_done == 1
        kept = read_folds(cfg.out)
        assert kept is not None and kept.k == 3
        np.testing.assert_array_equal(kept.fold, folds.fold)

    def test_a_truncated_part_is_rewritten_by_resume(self, make_config, fixtures_dir):
        """Item 8's remedy: the message says --resume; it rewrites the part and keeps the folds."""
        from facekit.errors import DamagedPartError
        from facekit.split import create_folds, read_folds
        cfg = make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none")
        prepare(cfg)
        create_folds(cfg.out, k=3)
        part = cfg.out.parent / "out.h5.parts" / "part-00001-of-00004.h5"
        os.truncate(part, 2000)
        with pytest.raises(DamagedPartError, match="--resume"):
            open_facekit(cfg.out)
        s = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", resume=True))
        assert s.complete and s.parts_done == 1 and read_folds(cfg.out).k == 3
        with open_facekit(cfg.out) as f:
            assert f.n_faces == 24

    def test_other_samples_drop_the_folds(self, make_config, fixtures_dir):
        from facekit.split import create_folds, read_folds
        cfg = make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none")
        prepare(cfg)
        create_folds(cfg.out, k=3)
        s = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", resume=True,
                                frames="last:2"))
        assert s.complete and s.faces == 16 and read_folds(cfg.out) is None   # folds of 24 faces do not fit


class TestOutputInsideTheDataset:
    """Item 10: OUT, OUT.parts/ and OUT.lock inside ROOT are never taken for input."""

    def test_resume_and_force_into_root(self, make_config, fixtures_dir, tmp_path):
        root = _folder_copy(fixtures_dir, tmp_path / "data")
        opts = {"subject_regex": r"^(S\d+)_"}
        first = prepare(make_config("folder", root, out="data/out.h5", options=opts, augment="none", part_faces=4))
        for kw in ({"resume": True}, {"force": True}):
            s = prepare(make_config("folder", root, out="data/out.h5", options=opts, augment="none", part_faces=4,
                                    **kw))
            assert s.complete and s.sequences == first.sequences and s.sequences_skipped == first.sequences_skipped
            with open_facekit(root / "out.h5") as f:
                assert f.label_names == ["happy", "neutral", "surprise"]
                assert not any("out.h5" in p for p, _ in f.rejects)


class TestNamesAndLimits:
    def test_a_file_name_that_is_not_utf8_is_rejected_by_a_readable_name(self, make_config, fixtures_dir, tmp_path):
        """Item 4."""
        import shutil
        root = _folder_copy(fixtures_dir, tmp_path / "data")
        bad = os.fsdecode(bytes(root / "happy") + b"/S004_\xff_1.png")
        shutil.copy(root / "happy" / "S001_001_00000004.png", bad)
        s = prepare(make_config("folder", root, options={"subject_regex": r"^(S\d+)_"}, augment="none"))
        assert s.complete and s.faces == 11
        with open_facekit(s.out) as f:
            rejects = dict(f.rejects)
        assert rejects["happy/S004_\\xff_1.png"].startswith("file name is not valid UTF-8")

    def test_a_decompression_bomb_is_rejected_before_decoding(self, make_config, fixtures_dir, tmp_path):
        """Item 13: a 12000x12000 PNG of 144 kB is a reject, not 432 MB decoded; max_pixels
        (--max-pixels) raises the limit."""
        root = _folder_copy(fixtures_dir, tmp_path / "data")
        (root / "happy" / "S009_bomb_1.png").write_bytes(_bomb_png(12000, 12000))
        (root / "happy" / "S009_bomb_2.png").write_bytes(_png_header_only(100_000, 100_000))
        (root / "happy" / "S009_big_3.png").write_bytes(_png_header_only(8000, 7500))
        s = prepare(make_config("folder", root, options={"subject_regex": r"^(S\d+)_"}, augment="none"))
        assert s.complete and s.faces == 11
        with open_facekit(s.out) as f:
            rejects = dict(f.rejects)
        assert rejects["happy/S009_bomb_1.png"].startswith("image is too large (12000x12000, 144.0 megapixels; "
                                                           "the limit is 50 megapixels")
        assert rejects["happy/S009_bomb_2.png"].startswith("image is too large (100000x100000, 10000.0 megapixels")
        assert rejects["happy/S009_big_3.png"].startswith("image is too large (8000x7500, 60.0 megapixels")
        raised = prepare(make_config("folder", root, out="raised.h5", options={"subject_regex": r"^(S\d+)_"},
                                     augment="none", max_pixels=100_000_000))
        with open_facekit(raised.out) as f:
            rejects = dict(f.rejects)
        assert rejects["happy/S009_big_3.png"].startswith("cannot be decoded")      # decoding was tried
        assert rejects["happy/S009_bomb_1.png"].startswith("image is too large")

    def test_face_size_is_capped(self, make_config, fixtures_dir):
        with pytest.raises(ValueError, match="outside 16..1024"):
            make_config("jaffe", fixtures_dir / "jaffe", face_size=100_000)

    def test_parts_path_that_is_a_file_is_refused(self, make_config, fixtures_dir, tmp_path):
        """Item 11."""
        (tmp_path / "out.h5.parts").write_text("not a folder")
        with pytest.raises(FileError, match="out.h5.parts: exists but is not a folder"):
            prepare(make_config("jaffe", fixtures_dir / "jaffe", augment="none"))


class TestLeftovers:
    """Item 12: temporaries of killed runs (dead pid, this host) are removed by the next run;
    those of live processes are not."""

    def test_stale_temporaries_go_live_ones_stay(self, make_config, fixtures_dir, tmp_path):
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            parts = tmp_path / "out.h5.parts"
            parts.mkdir()
            host = _host()
            stale = [tmp_path / f"out.h5.tmp-{host}-{dead.pid}", tmp_path / f"out.h5.tmp-{dead.pid}",
                     parts / f"part-00007-of-00009.h5.tmp-{host}-{dead.pid}",
                     tmp_path / f"out.h5.lock.tmp-{host}-{dead.pid}"]
            kept = [tmp_path / f"out.h5.tmp-{host}-{live.pid}", parts / f"part-00000-of-00004.h5.tmp-{host}-{live.pid}",
                    parts / f"part-00000-of-00004.h5.tmp-elsewhere-{dead.pid}"]
            for p in stale + kept:
                p.write_bytes(b"half")
            s = prepare(make_config("ck+", fixtures_dir / "ck+", part_faces=6, augment="none", resume=True))
            assert s.complete
            assert [p for p in stale if p.exists()] == []
            assert all(p.exists() for p in kept)
        finally:
            live.kill()
            live.wait()


class TestUnreadable:
    """Item 2: files and folders without read permission are rejected or skipped, and the run goes
    on (run as an unprivileged user: root reads everything)."""

    @pytest.mark.parametrize("workers", ["1", "2"])
    def test_unreadable_image_label_folder(self, model_path, fixtures_dir, unprivileged, workers):
        root = _folder_copy(fixtures_dir, unprivileged.dir / "data")
        (root / "happy" / "S001_001_00000004.png").chmod(0)
        (root / "neutral").chmod(0)
        out = unprivileged.dir / "out"
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        r = unprivileged.cli("prepare", "folder", root, out / "o.h5", "--subject-regex", r"^(S\d+)_", "--augment",
                             "none", "--workers", workers, "--json", "-q")
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        assert s["faces_aligned"] == 7 and s["rejects"] == {"cannot be read (Permission denied)": 1}
        assert s["skipped"] == {"cannot be read (Permission denied)": 1}

    def test_unreadable_ckplus_sequence_folder(self, model_path, fixtures_dir, unprivileged):
        import shutil
        root = unprivileged.dir / "ck+"
        shutil.copytree(fixtures_dir / "ck+", root)
        (root / "cohn-kanade-images" / "S005" / "001").chmod(0)
        (root / "Emotion" / "S010").chmod(0)
        out = unprivileged.dir / "out"
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        r = unprivileged.cli("prepare", "ck+", root, out / "o.h5", "--augment", "none", "--json", "-q")
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        assert s["sequences"] == 5 and s["faces_aligned"] == 15
        assert s["skipped"]["cannot be read (Permission denied)"] == 2          # S005/001, Emotion/S010
        assert s["skipped"]["its emotion folder cannot be read (Permission denied)"] == 2   # S010/001, /002


class TestOddFiles:
    """Odd files in one label folder (issue 24's earlier rounds and this one): each is used or
    rejected with its reason, and the run goes on. The 20000x2 image aborted the run (the
    landmarker's enlargement of thin images asked OpenCV for 8 TB)."""

    def test_each_is_used_or_rejected(self, make_config, fixtures_dir, tmp_path):
        import cv2
        from PIL import Image
        root = _folder_copy(fixtures_dir, tmp_path / "data")
        h = root / "happy"
        face = cv2.imread(str(h / "S001_001_00000004.png"))
        rgb = np.ascontiguousarray(face[..., ::-1])
        exif = Image.Exif()
        exif[0x0112] = 6                                     # "rotate 90 degrees to show"
        Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1))).save(h / "S010_exif_1.jpg", exif=exif)
        cv2.imwrite(str(h / "S011_16bit_1.png"), face.astype(np.uint16) * 257)
        cv2.imwrite(str(h / "S012_rgba_1.png"), np.dstack([face, np.full(face.shape[:2], 255, np.uint8)]))
        Image.fromarray(rgb).convert("CMYK").save(h / "S013_cmyk_1.jpg")
        cv2.imwrite(str(h / "S014_gray_1.jpg"), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
        jpg = (h / "S010_exif_1.jpg").read_bytes()
        (h / "S015_trunc_1.jpg").write_bytes(jpg[:len(jpg) // 2])
        (h / "S016_empty_1.png").write_bytes(b"")
        (h / "S017_text_1.png").write_text("hello")
        (h / "S018_dir_1.png").mkdir()
        os.symlink("S019_loop_1.png", h / "S019_loop_1.png")
        os.symlink("nowhere.png", h / "S020_dangling_1.png")
        os.mkfifo(h / "S021_fifo_1.png")
        Image.fromarray(rgb).save(h / "S022_gif_1.gif")
        cv2.imwrite(str(h / "S023_webp_1.webp"), face)
        cv2.imwrite(str(h / "S024_bmp_1.bmp"), face)
        Image.fromarray(rgb).save(h / "S025_multi_1.tiff", save_all=True, append_images=[Image.new("RGB", (10, 10))])
        cv2.imwrite(str(h / "S026_tiny_1.png"), np.zeros((1, 1), np.uint8))
        cv2.imwrite(str(h / "S027_thin_1.png"), np.zeros((2, 20000), np.uint8))
        os.symlink(h / "S001_001_00000004.png", h / "S028_link_1.png")
        s = prepare(make_config("folder", root, options={"subject_regex": r"^(S\d+)_"}, augment="none"))
        assert s.complete
        with open_facekit(s.out) as f:
            used = set(f.subjects)
            rejects = dict(f.rejects)
        assert {"S010", "S011", "S012", "S013", "S014", "S022", "S023", "S024", "S025", "S028"} <= used   # GIF too
        expected = {
            "S015_trunc_1.jpg": "cannot be decoded", "S016_empty_1.png": "file is empty (0 bytes)",
            "S017_text_1.png": "cannot be decoded", "S018_dir_1.png": "sub-folder inside a label folder",
            "S019_loop_1.png": "cannot be read (Too many levels of symbolic links)",
            "S020_dangling_1.png": "file does not exist", "S021_fifo_1.png": "is not a regular file",
            "S026_tiny_1.png": "no face found",
            "S027_thin_1.png": "image is 20000x2: the landmarker would enlarge it to",
        }
        for name, reason in expected.items():
            assert rejects[f"happy/{name}"].startswith(reason), (name, rejects.get(f"happy/{name}"))

    def test_an_opencv_or_memory_error_on_one_image_is_a_reject(self, make_config, fixtures_dir, monkeypatch):
        import cv2
        real = _worker.PartProcessor._face
        calls = []

        def failing(self, image, item, source, index, where):
            calls.append(where)
            if len(calls) == 2:
                raise MemoryError
            if len(calls) == 3:
                raise cv2.error("OpenCV(5.1.0) alloc.cpp:73: error: (-4:Insufficient memory) Failed to allocate")
            return real(self, image, item, source, index, where)
        monkeypatch.setattr(_worker.PartProcessor, "_face", failing)
        s = prepare(make_config("jaffe", fixtures_dir / "jaffe", augment="none"))
        assert s.complete and s.faces == 9
        assert s.rejects == {"not enough memory to process this image": 1,
                             "could not be processed (OpenCV(5.1.0) alloc.cpp:73: error: (-4:Insufficient memory) "
                             "Failed to allocate)": 1}

    def test_detector_input_size(self):
        from facekit.prepare._worker import detector_pixels
        assert detector_pixels((176, 176), 192, 0.25) == 288 * 288          # enlarged to 192, border 48
        assert detector_pixels((6000, 8000), 192, 0.25) == 10000 * 12000    # no enlargement, border 2000
        assert detector_pixels((2, 20000), 192, 0.25) > 10**12


def _datasets(path) -> dict:
    """Every dataset of a facekit file (virtual ones read through their parts) and its root
    attributes but ``created``: what must not depend on how the file came about."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        out["attrs"] = {k: v for k, v in f.attrs.items() if k != "created"}
    out["attrs"]["parts"] = out["attrs"]["parts"].replace(f'"{Path(path).name}.parts/', '"OUT.parts/')
    return out


@pytest.mark.slow
class TestKillAtAnyMoment:
    """kill -9 of the whole process group at 12 moments of a JAFFE run (1 and 2 workers),
    then --resume: the result holds the same data as an uninterrupted run."""

    @pytest.mark.parametrize("workers", ["1", "2"])
    def test_resume_after_kill_matches_a_clean_run(self, model_path, jaffe_dir, tmp_path, workers):
        base = ["prepare", "jaffe", jaffe_dir, "--workers", workers, "--part-size", "16", "-q"]
        clean = tmp_path / "clean.h5"
        t0 = time.time()
        assert _cli(*base[:3], clean, *base[3:]).returncode == 0
        took = time.time() - t0
        want = _datasets(clean)
        outcomes = []
        for i, frac in enumerate(np.linspace(0.1, 1.05, 12)):
            out = tmp_path / f"k{i}.h5"
            p = subprocess.Popen([sys.executable, "-m", "cli", *map(str, base[:3]), str(out), *base[3:]],
                                 cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(frac * took)
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            finished = out.exists()
            r = _cli(*base[:3], out, *base[3:], "--resume", "--json")
            assert r.returncode == 0, (frac, r.stderr)
            got = _datasets(out)
            assert got.keys() == want.keys()
            for k in want:            # attrs included: "parts" holds each part's size and CRC-32
                if k == "attrs":
                    assert got[k] == want[k], frac
                else:
                    np.testing.assert_array_equal(got[k], want[k], err_msg=f"{k} after a kill at {frac:.2f}")
            leftovers = [q.name for q in tmp_path.glob(f"k{i}.h5*") if ".tmp-" in q.name or q.suffix == ".lock"]
            leftovers += [q.name for q in Path(f"{out}.parts").glob("*.tmp-*")]
            assert leftovers == []
            outcomes.append((round(float(frac), 2), finished, json.loads(r.stdout)["parts"]["reused"]))
            out.unlink()                              # 0.2 GB each: keep the test's disk use to two files
            shutil.rmtree(f"{out}.parts", ignore_errors=True)
        assert any(not finished and reused > 0 for _, finished, reused in outcomes)   # some kills were mid-run
