from __future__ import annotations

from pathlib import Path

import pytest

from degan.checkpoint import load_checkpoint
from degan.config import DeganConfig
from degan.train import run_cv


class TestPretrainGan:
    def test_pretrain_then_cv(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        from facekit.testing import make_synthetic_file
        other = make_synthetic_file(tmp_path / "other.h5", n_subjects=4, n_classes=4, seed=5)   # no folds needed
        cfg = tiny_cfg.replace({"stage1.pretrain": True, "stage1.epochs": 2})     # pretrain_epochs 0: as stage 1
        out = tmp_path / "run"
        m = run_cv(canvas_file, cfg, out, folds=[0], pretrain=other, progress=False)
        pre = load_checkpoint(out / "pretrain.pt")
        assert pre["stage"] == "pretrain" and pre["epoch"] == 2 and len(pre["meta"]["identity_names"]) == 4
        assert pre["meta"]["method"] == "pretrain" and pre["meta"]["fold"] == -1
        assert list(m["folds"]) == ["0"]

    def test_run_with_pretraining_resumes_exactly(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        from facekit.testing import make_synthetic_file

        from degan.train import Interrupted
        other = make_synthetic_file(tmp_path / "other.h5", n_subjects=4, n_classes=4, seed=5)
        cfg = tiny_cfg.replace(pretrain=True, pretrain_epochs=2)
        run_cv(canvas_file, cfg, tmp_path / "full", folds=[0], pretrain=other, progress=False)
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], pretrain=other, progress=False, stop_after=1)
        assert load_checkpoint(tmp_path / "cut" / "pretrain.pt")["epoch"] == 2           # pre-training done,
        assert load_checkpoint(tmp_path / "cut" / "fold_00" / "checkpoint.pt")["epoch"] == 1   # the fold cut
        run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], pretrain=other, resume=True, progress=False)
        a, b = (load_checkpoint(tmp_path / d / "fold_00" / "checkpoint.pt")["models"] for d in ("full", "cut"))
        for net in a:
            for k in a[net]:
                assert a[net][k].equal(b[net][k]), f"{net}.{k}"

    def test_pretrain_channels_must_match(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        import h5py
        import numpy as np
        from facekit.store import FaceRecord, PartWriter, assemble
        from degan.errors import RunDirError
        part = tmp_path / "c.h5.parts" / "part-00000.h5"
        with PartWriter(part, sample_shape=(20, 20, 3), canvas_shape=(20, 20, 3)) as w:
            for s in range(2):
                img = np.zeros((20, 20, 3), np.uint8)
                w.add_face(FaceRecord(source=f"x{s}", subject=f"S{s}", sequence=f"S{s}/0", label=0, frame=0,
                                      image=img, landmarks=np.zeros((478, 2), np.float32), matrix=np.eye(2, 3),
                                      samples=img[None], sample_landmarks=np.zeros((1, 68, 2), np.float32),
                                      patch=np.array([-1]), angle=np.array([0.0]), flip=np.array([0])))
        assemble(tmp_path / "c.h5", [part], dataset="c", label_names=["a"], config={},
                 attrs={"augment": "none", "face_box": [0, 0, 20], "patch_size": 16})
        with pytest.raises(RunDirError, match="channel"):
            run_cv(canvas_file, tiny_cfg.replace(pretrain=True, pretrain_epochs=1), tmp_path / "run", folds=[0],
                   pretrain=tmp_path / "c.h5", progress=False)
        assert h5py.is_hdf5(tmp_path / "c.h5") and not (tmp_path / "run").exists()   # refused before writing
