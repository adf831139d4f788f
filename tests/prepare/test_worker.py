import multiprocessing as mp
import subprocess
import sys

import numpy as np
import pytest

from facekit.errors import LayoutError
from facekit.prepare import _worker, prepare, run


class TestProgress:
    def test_two_worker_run_reports_every_frame(self, make_config, fixtures_dir, capsys):
        cfg = make_config("ck+", fixtures_dir / "ck+", workers=2, augment="none", progress=True)
        s = prepare(cfg)
        err = capsys.readouterr().err
        assert s.frames == 24 and "24/24" in err


class TestPartProcessor:
    def test_part_contents_match_the_record_columns(self, make_config, fixtures_dir, tmp_path):
        from facekit.prepare.plan import plan_items, plan_parts
        from facekit.datasets import get_dataset
        cfg = make_config("jaffe", fixtures_dir / "jaffe", augment="none")
        ad = get_dataset("jaffe")
        items, _ = plan_items(ad.scan(cfg.root), ad.default_frames)
        part = plan_parts(items)[0]
        proc = _worker.PartProcessor(cfg, {"fingerprint": "f"})
        try:
            ticks = []
            r = proc.process(part, tmp_path / part.filename, progress=ticks.append)
        finally:
            proc.close()
        assert sum(ticks) == r.frames == part.n_frames and r.faces == r.frames
        assert r.contents["n_faces"] == r.faces
        np.testing.assert_array_equal(r.contents["faces"]["frame"], np.zeros(r.faces, np.int32))


class TestWorkerProcesses:
    def test_workers_close_their_landmarkers(self, model_path, fixtures_dir, tmp_path):
        # in a fresh interpreter, so the pool forks from a process that never ran MediaPipe
        # and the patched close() is what the workers run
        script = f"""
import os, sys
from pathlib import Path
import facekit.prepare._worker as W
orig = W.PartProcessor.close
def close(self):
    (Path({str(tmp_path)!r}) / f"closed-{{os.getpid()}}").write_text("x")
    orig(self)
W.PartProcessor.close = close
from facekit.prepare import PrepareConfig, prepare
s = prepare(PrepareConfig(dataset="ck+", root=Path({str(fixtures_dir / "ck+")!r}), out=Path({str(tmp_path)!r}) / "o.h5",
            workers=2, augment="none", progress=False, model={str(model_path)!r}))
print(s.workers)
"""
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["2"]
        assert len(list(tmp_path.glob("closed-*"))) == 2
        assert out.stderr.strip() == ""                                   # nothing printed at exit

    def test_pool_started_before_the_scan_is_terminated_when_the_scan_fails(self, make_config, fixtures_dir):
        """The workers start (and load their landmarkers) while the dataset is scanned; a layout
        error must not leave them behind."""
        with pytest.raises(LayoutError):
            prepare(make_config("ck+", fixtures_dir / "jaffe", workers=2))
        assert mp.active_children() == []

    def test_no_workers_are_left_when_nothing_is_left_to_do(self, make_config, fixtures_dir, monkeypatch):
        """A resume that reuses every part starts no pool; a shard with no parts terminates the
        pool it started before the scan."""
        started = []

        class Counting(run._Pool):
            def __init__(self, *a, **kw):
                started.append(1)
                super().__init__(*a, **kw)

        monkeypatch.setattr(run, "_Pool", Counting)
        prepare(make_config("jaffe", fixtures_dir / "jaffe", augment="none", part_faces=4))
        s = prepare(make_config("jaffe", fixtures_dir / "jaffe", augment="none", part_faces=4, resume=True,
                                workers=2))
        assert s.complete and s.parts_done == 0 and s.parts_reused == s.parts_total == 3
        assert started == []
        s = prepare(make_config("jaffe", fixtures_dir / "jaffe", out="shard.h5", augment="none", part_faces=4,
                                shard=(3, 4), workers=2))
        assert not s.complete and s.parts_done == 0 and s.parts_total == 3
        assert started == [1] and mp.active_children() == []


class TestPose:
    def test_pose_of_a_face_and_without_a_matrix(self):
        from facekit.detect import Face, pose_matrix
        m = np.eye(4, dtype=np.float32)
        m[:3, :3] = pose_matrix(10.0, -20.0, 5.0)
        pts = np.zeros((478, 3), np.float32)
        np.testing.assert_allclose(_worker._pose(Face(pts, matrix=m)), [10.0, -20.0, 5.0], atol=1e-4)
        assert _worker._pose(Face(pts)) is None                            # landmarker not asked for pose

    def test_a_matrix_that_is_not_a_rotation_gives_nan(self):
        from facekit.detect import Face
        pts = np.zeros((478, 3), np.float32)
        mirror = np.diag([-1.0, 1.0, 1.0, 1.0]).astype(np.float32)
        for m in (mirror, np.full((4, 4), np.nan, np.float32)):
            pose = _worker._pose(Face(pts, matrix=m))
            assert pose.shape == (3,) and pose.dtype == np.float32 and np.isnan(pose).all()
