from __future__ import annotations

from pathlib import Path

import pytest
import torch

from degan.checkpoint import load_checkpoint
from degan.config import DeganConfig
from degan.models import DeganNets, build_degan
from degan.train import run_cv
from degan.train._pretrain import _load_pretrained


States = dict[str, dict[str, torch.Tensor]]


def _pretrain_across(cfg: DeganConfig, pre_labels: list[str],
                     labels: list[str]) -> tuple[DeganNets, DeganNets, States]:
    """A source model on ``pre_labels`` (4 identities) loaded into a fresh target on ``labels``
    (5 identities, init std 0.5); also the target's G and D states before loading."""
    src = build_degan(cfg, 1, len(pre_labels), 4)
    pre = {"models": {"G": src.G.state_dict(), "D": src.D.state_dict()}, "meta": {"label_names": pre_labels}}
    dst = build_degan(cfg.replace(init_std=0.5), 1, len(labels), 5)
    fresh = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in (("G", dst.G), ("D", dst.D))}
    _load_pretrained(dst, pre, cfg, labels)
    return src, dst, fresh


class TestPretraining:
    def test_identity_parts_reinitialised(self, tiny_cfg: DeganConfig) -> None:
        src = build_degan(tiny_cfg, 1, 4, 9)                  # another data set: 4 classes, 9 identities
        pre = {"models": {"G": src.G.state_dict(), "D": src.D.state_dict()}}
        dst = build_degan(tiny_cfg.replace(init_std=0.5), 1, 3, 5)
        _load_pretrained(dst, pre, tiny_cfg)
        torch.testing.assert_close(dst.G.encoder.state_dict(), src.G.encoder.state_dict())
        torch.testing.assert_close(dst.D.trunk.state_dict(), src.D.trunk.state_dict())
        fd, nz = tiny_cfg.feat_dim, tiny_cfg.noise_dim
        w_dst, w_src = dst.G.decoder.fc.weight, src.G.decoder.fc.weight
        torch.testing.assert_close(w_dst[:, :fd], w_src[:, :fd])
        torch.testing.assert_close(w_dst[:, -nz:], w_src[:, -nz:])
        assert w_dst.shape[1] == fd + 5 + nz
        assert dst.D.head_id.weight.shape == (5, fd) and dst.D.head_expr.weight.shape == (4, fd)
        assert float(dst.D.head_expr.weight.detach().std()) > 0.1      # other label set: kept its fresh init

    def test_expression_head_matched_by_label_name(self, tiny_cfg: DeganConfig) -> None:
        # JAFFE-like pre-training labels vs CK+-like target labels: same count, other order/classes
        pre_labels = ["anger", "disgust", "fear", "happy", "neutral", "sadness", "surprise"]
        labels = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
        src, dst, fresh_states = _pretrain_across(tiny_cfg, pre_labels, labels)
        fresh = fresh_states["D"]["head_expr.weight"]
        w, b = dst.D.head_expr.weight.detach(), dst.D.head_expr.bias.detach()
        ws, bs = src.D.head_expr.weight.detach(), src.D.head_expr.bias.detach()
        for i, name in enumerate(labels):
            if name in pre_labels:
                j = pre_labels.index(name)
                torch.testing.assert_close(w[i], ws[j])
                torch.testing.assert_close(b[i], bs[j])
        torch.testing.assert_close(w[1], fresh[1])            # contempt: not in JAFFE, fresh init
        torch.testing.assert_close(w[-1], ws[-1])             # the "fake" output
        assert not torch.equal(w[2], ws[2])                   # disgust is row 1 in JAFFE, row 2 here

    def test_generator_expression_head_matched_by_label_name(self, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(expr_weight=1.0)
        pre_labels = ["anger", "disgust", "happy"]
        labels = ["disgust", "contempt", "anger", "happy"]
        src, dst, fresh_states = _pretrain_across(cfg, pre_labels, labels)
        fresh = fresh_states["G"]["expr_head.weight"]
        w, ws = dst.G.expr_head.weight.detach(), src.G.expr_head.weight.detach()
        torch.testing.assert_close(w[0], ws[1])               # disgust
        torch.testing.assert_close(w[2], ws[0])               # anger
        torch.testing.assert_close(w[3], ws[2])               # happy: the last row is a class, not "fake"
        torch.testing.assert_close(w[1], fresh[1])            # contempt: fresh init
        torch.testing.assert_close(dst.G.expr_head.bias.detach()[3], src.G.expr_head.bias.detach()[2])

    def test_pretrain_then_cv(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        from facekit.testing import make_synthetic_file
        other = make_synthetic_file(tmp_path / "other.h5", n_subjects=4, n_classes=4, seed=5)   # no folds needed
        cfg = tiny_cfg.replace(pretrain_epochs=1)
        out = tmp_path / "run"
        m = run_cv(canvas_file, cfg, out, folds=[0], pretrain=other, progress=False)
        pre = load_checkpoint(out / "pretrain.pt")
        assert pre["stage"] == "pretrain" and pre["epoch"] == 1 and len(pre["meta"]["identity_names"]) == 4
        assert list(m["folds"]) == ["0"]

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
            run_cv(canvas_file, tiny_cfg.replace(pretrain_epochs=1), tmp_path / "run", folds=[0],
                   pretrain=tmp_path / "c.h5", progress=False)
        assert h5py.is_hdf5(tmp_path / "c.h5")
