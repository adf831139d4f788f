"""The geometric expert (degan.geometry) and its fusion into predictions, training and re-evaluation."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from facekit.detect import IBUG68_FLIP, MESH_TO_IBUG68

from degan.config import ConfigError, DeganConfig, resume_conflicts, stage1_conflicts
from degan.data import make_split, read_file_info
from degan.evaluate import evaluate_run
from degan.geometry import (GeometryExpert, face_points68, fit_geometry, fuse_proba, geometry_proba,
                            landmark_features, mirror_points68)
from degan.predict import predict, read_predictions
from degan.presets import get_preset
from degan.train import run_cv

from .conftest import make_file

MOUTH = MESH_TO_IBUG68[48:68]


def _encode_labels_in_landmarks(path: Path, shift: float = 3.0, seed: int = 0) -> Path:
    """Rewrite ``faces/landmarks``: one fixed face shape plus a little noise, with the 68-point
    mouth moved down by ``shift`` px per class index (so the shape tells the class)."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "r+") as f:
        box = json.loads(f.attrs["face_box"]) if isinstance(f.attrs["face_box"], str) else list(f.attrs["face_box"])
        bx, by, bs = box
        labels = f["faces/label"][()]
        base = rng.uniform([bx + 0.2 * bs, by + 0.2 * bs], [bx + 0.8 * bs, by + 0.6 * bs], (478, 2))
        pts = base[None] + rng.normal(0, 0.3, (len(labels), 478, 2))
        pts[:, MOUTH, 1] += shift * labels[:, None]
        f["faces/landmarks"][...] = pts.astype(np.float32)
    return path


@pytest.fixture(scope="module")
def shaped_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """canvas file whose landmarks encode the class (k=3 subject-disjoint folds)."""
    return _encode_labels_in_landmarks(make_file(tmp_path_factory.mktemp("shaped") / "faces.h5"))


@pytest.fixture(scope="module")
def shaped_paper_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """the same with stored augmented copies (20 samples per face)."""
    return _encode_labels_in_landmarks(make_file(tmp_path_factory.mktemp("shaped_p") / "faces.h5", augment="paper"))


class TestLandmarkFeatures:
    def test_centred_and_in_face_box_units(self) -> None:
        box = (10, 20, 100)
        pts = np.zeros((2, 68, 2), np.float32)
        pts[0] = (60, 70)                           # the face box centre
        pts[1] = (110, 120)                         # its bottom-right corner
        feat = landmark_features(pts, box)
        assert feat.shape == (2, 136) and feat.dtype == np.float64
        np.testing.assert_allclose(feat[0], 0)
        np.testing.assert_allclose(feat[1], 0.5)

    def test_mirror_is_an_involution_and_reindexes(self) -> None:
        box = (4, 4, 36)
        pts = np.random.default_rng(0).uniform(4, 40, (3, 68, 2)).astype(np.float32)
        twice = mirror_points68(mirror_points68(pts, box), box)
        np.testing.assert_allclose(twice, pts, atol=1e-5)
        once = mirror_points68(pts, box)
        np.testing.assert_allclose(once[:, 0, 0], 2 * 22 - pts[:, 16, 0], atol=1e-5)   # jaw ends swap sides
        np.testing.assert_allclose(once[:, :, 1], pts[:, IBUG68_FLIP, 1])               # heights unchanged

    def test_face_points_read_any_order(self, shaped_file: Path) -> None:
        info = read_file_info(shaped_file)
        with h5py.File(shaped_file) as f:
            mesh = f["faces/landmarks"][()]
        got = face_points68(info, [5, 1, 5, 0])
        np.testing.assert_array_equal(got[0], mesh[5][MESH_TO_IBUG68])
        np.testing.assert_array_equal(got[1], mesh[1][MESH_TO_IBUG68])
        np.testing.assert_array_equal(got[2], got[0])
        assert got.shape == (4, 68, 2) and face_points68(info, []).shape == (0, 68, 2)


class TestGeometryExpert:
    def test_matches_scikit_learn(self) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        rng = np.random.default_rng(1)
        x, y = rng.normal(size=(60, 5)), rng.integers(0, 3, 60)
        pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000)).fit(x, y)
        sc, lr = pipe[0], pipe[1]
        expert = GeometryExpert(sc.mean_, sc.scale_, lr.coef_, lr.intercept_)
        np.testing.assert_allclose(expert.predict_proba(x), pipe.predict_proba(x), atol=1e-10)

    def test_state_round_trip(self) -> None:
        rng = np.random.default_rng(2)
        e = GeometryExpert(rng.normal(size=4), rng.uniform(1, 2, 4), rng.normal(size=(3, 4)), rng.normal(size=3))
        back = GeometryExpert.from_state(json.loads(json.dumps(e.to_state())))
        x = rng.normal(size=(7, 4))
        np.testing.assert_array_equal(back.predict_proba(x), e.predict_proba(x))
        np.testing.assert_allclose(back.predict_proba(x).sum(1), 1)

    def test_fuse(self) -> None:
        a, b = np.array([[0.8, 0.2]]), np.array([[0.2, 0.8]])
        np.testing.assert_allclose(fuse_proba(a, b, 0.25), [[0.65, 0.35]], rtol=1e-6)
        np.testing.assert_allclose(fuse_proba(a, b, 0.0), a, rtol=1e-6)
        assert fuse_proba(a, b, 0.5).dtype == np.float32


class TestFitGeometry:
    @pytest.mark.parametrize("file", ["shaped_file", "shaped_paper_file"])
    def test_learns_the_shape_from_training_faces_only(self, file: str, request: pytest.FixtureRequest,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
        import degan.geometry as geo
        info = read_file_info(request.getfixturevalue(file))
        cfg = get_preset("tiny")
        split = make_split(info, 0, cfg)
        read: list[np.ndarray] = []
        real = geo.face_points68

        def spy(info_: object, faces: object) -> np.ndarray:
            read.append(np.asarray(faces))
            return real(info_, faces)  # type: ignore[arg-type]
        monkeypatch.setattr(geo, "face_points68", spy)
        expert = fit_geometry(info, split, 0.1)
        test_faces = np.unique(info.face[split.test])
        assert not np.isin(np.concatenate(read), test_faces).any()               # test faces never read
        assert len(read[0]) == len(np.unique(info.face[split.train]))            # each training face once
        p = geometry_proba(expert, info, test_faces)
        labels = np.array([info.label[info.face == f][0] for f in test_faces])
        assert (p.argmax(1) == labels).all() and p.shape == (len(test_faces), info.n_classes)
        pm = geometry_proba(expert, info, test_faces, mirrored=True)           # the shape is not symmetric ...
        assert not np.allclose(pm, p)
        np.testing.assert_allclose(pm.sum(1), 1)

    def test_validation_faces_never_read(self, shaped_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import degan.geometry as geo
        info = read_file_info(shaped_file)
        split = make_split(info, 0, get_preset("tiny").replace({"data.val_fraction": 0.5}))
        assert len(split.val)
        read: list[np.ndarray] = []
        real = geo.face_points68
        monkeypatch.setattr(geo, "face_points68", lambda i, faces: read.append(np.asarray(faces)) or real(i, faces))
        fit_geometry(info, split, 0.1)
        assert sorted(np.concatenate(read).tolist()) == sorted(np.unique(info.face[split.train]).tolist())
        assert not np.isin(np.concatenate(read), info.face[split.val]).any()     # fitted on what remains

    def test_class_missing_from_training_gets_no_probability(self, shaped_file: Path) -> None:
        info = read_file_info(shaped_file)
        split = make_split(info, 0, get_preset("tiny"))
        split.train = split.train[info.label[split.train] != 2]     # two classes left: sklearn's binary form
        expert = fit_geometry(info, split, 0.1)
        faces = np.unique(info.face[split.test])
        p = geometry_proba(expert, info, faces)
        assert p[:, 2].max() < 1e-6 and np.allclose(p.sum(1), 1)
        labels = np.array([info.label[info.face == f][0] for f in faces])
        seen = labels != 2
        assert seen.any() and (p[seen].argmax(1) == labels[seen]).all()


class TestPredictWithGeometry:
    def test_fused_probability_and_both_parts(self, shaped_file: Path) -> None:
        info = read_file_info(shaped_file)
        cfg = get_preset("tiny").replace(geometry_weight=0.5)
        split = make_split(info, 1, cfg)
        expert = fit_geometry(info, split, 0.1)

        def constant(x: torch.Tensor) -> torch.Tensor:          # the image model always says class 0
            return torch.tensor([[1.0, 0.0, 0.0]]).repeat(x.shape[0], 1)
        dev = torch.device("cpu")
        plain = predict(constant, info, split, cfg.replace(geometry_weight=0.0), dev, geometry=expert)
        fused = predict(constant, info, split, cfg, dev, geometry=expert)
        p_geo = geometry_proba(expert, info, fused["face"])
        np.testing.assert_allclose(fused["prob"], 0.5 * plain["prob"] + 0.5 * p_geo, atol=1e-6)
        assert "image_pred" not in plain and (fused["image_pred"] == 0).all()
        np.testing.assert_array_equal(fused["geometry_pred"], p_geo.argmax(1))
        np.testing.assert_array_equal(fused["y_pred"], fused["prob"].argmax(1))
        assert (fused["y_pred"] == fused["y_true"]).mean() > (plain["y_pred"] == plain["y_true"]).mean()


class TestTrainingAndEvaluation:
    def test_fold_fits_stores_and_reports_the_expert(self, shaped_file: Path, tmp_path: Path,
                                                     tiny_cfg: DeganConfig) -> None:
        from degan.checkpoint import load_checkpoint
        cfg = tiny_cfg.replace(method="baseline", geometry_weight=0.5)
        out = tmp_path / "run"
        res = run_cv(shaped_file, cfg, out, folds=[0], progress=False)
        fold = json.loads((out / "fold_00" / "metrics.json").read_text())
        assert fold["head_accuracy"]["geometry"] == 100.0 and "image" in fold["head_accuracy"]
        assert set(res["head_accuracy_mean"]) == {"image", "geometry"}
        state = load_checkpoint(out / "fold_00" / "checkpoint.pt", "cpu")
        expert = GeometryExpert.from_state(state["geometry"])
        info = read_file_info(shaped_file)
        split = make_split(info, 0, cfg)
        np.testing.assert_allclose(expert.coef, fit_geometry(info, split, cfg.eval.geometry_c).coef)
        rows = read_predictions(out / "fold_00" / "predictions.csv")
        assert {"pred_image", "pred_geometry"} <= rows[0].keys()
        assert all(r["pred_geometry"] == r["label"] for r in rows)
        again = evaluate_run(out)                                  # uses the stored expert
        assert again["folds"] == res["folds"]

    def test_eval_adds_the_expert_to_a_run_without_it(self, shaped_file: Path, tmp_path: Path,
                                                      tiny_cfg: DeganConfig) -> None:
        from click.testing import CliRunner

        from facekit_cli.degan import eval_main
        out = tmp_path / "run"
        plain = run_cv(shaped_file, tiny_cfg, out, folds=[0, 1], progress=False)
        r = CliRunner().invoke(eval_main, [str(out), "--geometry-weight", "0.5"])
        assert r.exit_code == 0, r.output
        geo = json.loads((out / "evals" / "geo0.5" / "metrics.json").read_text())
        assert geo["head_accuracy_mean"]["geometry"] == 100.0
        assert geo["head_accuracy_mean"]["image"] == pytest.approx(plain["mean"])
        assert (out / "evals" / "geo0.5" / "confusion.png").is_file()
        assert (out / "evals" / "geo0.5" / "fold_01" / "predictions.csv").is_file()
        assert json.loads((out / "metrics.json").read_text())["mean"] == plain["mean"]     # the run's own: kept
        both = evaluate_run(out, test_views="mirror", geometry_weight=0.5)
        assert both["test_views"] == "mirror" and (out / "evals" / "mirror_geo0.5" / "metrics.json").is_file()
        bad = CliRunner().invoke(eval_main, [str(out), "--geometry-weight", "1.5"])
        assert bad.exit_code != 0 and "1.5" in bad.output

    def test_compare_runs_reads_a_reevaluation(self, shaped_file: Path, tmp_path: Path,
                                               tiny_cfg: DeganConfig) -> None:
        import subprocess
        import sys
        out = tmp_path / "run"
        plain = run_cv(shaped_file, tiny_cfg.replace(method="baseline"), out, folds=[0, 1], progress=False)
        geo = evaluate_run(out, geometry_weight=0.5)
        script = Path(__file__).resolve().parents[2] / "bench" / "compare_runs.py"
        res = json.loads(subprocess.run([sys.executable, str(script), f"plain={out}", f"geo={out}@geo0.5"],
                                        capture_output=True, text=True, check=True).stdout)
        assert res["runs"]["plain"]["mean"] == pytest.approx(plain["mean"], abs=0.01)
        assert res["runs"]["geo"]["mean"] == pytest.approx(geo["mean"], abs=0.01)
        missing = subprocess.run([sys.executable, str(script), f"x={out}@mirror"], capture_output=True, text=True)
        assert missing.returncode != 0 and "no re-evaluation 'mirror'" in missing.stderr


class TestConfig:
    def test_validation(self) -> None:
        with pytest.raises(ConfigError, match="geometry_weight"):
            get_preset("tiny").replace(geometry_weight=1.5)
        with pytest.raises(ConfigError, match="geometry_c"):
            get_preset("tiny").replace(geometry_c=0.0)
        assert get_preset("paper").eval.geometry_weight == 0.0 and get_preset("cpu").eval.geometry_weight == 0.5

    def test_not_a_stage1_field(self) -> None:
        cfg = get_preset("tiny")
        assert stage1_conflicts(cfg, cfg.replace(geometry_weight=0.5, geometry_c=1.0)) == ()
        assert resume_conflicts(cfg, cfg.replace(geometry_weight=0.5)).refused == ("eval.geometry_weight",)
