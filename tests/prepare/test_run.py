import os
import signal
import subprocess
import sys
import time

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
