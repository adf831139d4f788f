from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from degan.config import DeganConfig
from degan.data import make_split, read_file_info
from degan.predict import predict, read_predictions, score_fold, write_predictions
from degan.presets import get_preset
from degan.train import run_cv


class TestPredict:
    @staticmethod
    def _left_right(x: torch.Tensor) -> torch.Tensor:
        """Logits (left-half mean, right-half mean, 0): a mirror swaps the first two."""
        h = x.shape[-1] // 2
        a, b = x[..., :h].mean((1, 2, 3)), x[..., h:].mean((1, 2, 3))
        return torch.stack([a, b, torch.zeros_like(a)], 1) * 20

    @pytest.mark.parametrize("file", ["canvas_file", "paper_file"])
    def test_mirror_views_average_a_face_and_its_mirror(self, file: str, request: pytest.FixtureRequest) -> None:
        info = read_file_info(request.getfixturevalue(file))
        cfg = get_preset("tiny").replace(image_size=32)
        centre = predict(self._left_right, info, make_split(info, 0, cfg), cfg, torch.device("cpu"))
        mirror_cfg = cfg.replace(test_views="mirror")
        mirror = predict(self._left_right, info, make_split(info, 0, mirror_cfg), mirror_cfg, torch.device("cpu"))
        np.testing.assert_array_equal(mirror["face"], centre["face"])            # one prediction per face
        assert np.abs(centre["prob"][:, 0] - centre["prob"][:, 1]).max() > 0.05
        np.testing.assert_allclose(mirror["prob"][:, 0], mirror["prob"][:, 1], atol=1e-4)

    def test_score_fold_is_predict_and_its_metrics(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        cfg = get_preset("tiny").replace(image_size=32)
        split = make_split(info, 1, cfg)
        pred, m = score_fold(self._left_right, info, split, cfg, torch.device("cpu"))
        assert m["n"] == len(pred["face"]) == 12
        assert m["accuracy"] == pytest.approx(100 * float(np.mean(pred["y_true"] == pred["y_pred"])))


class TestPredictionsCsv:
    def test_one_row_per_test_face(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        import json
        out = tmp_path / "run"
        trained = run_cv(canvas_file, tiny_cfg, out, folds=[1], progress=False)
        rows = read_predictions(out / "fold_01" / "predictions.csv")
        fold = json.loads((out / "fold_01" / "metrics.json").read_text())
        assert len(rows) == fold["n_test_faces"]
        assert 100 * sum(int(r["correct"]) for r in rows) / len(rows) == pytest.approx(trained["folds"]["1"])
        info = read_file_info(canvas_file)
        test_faces = set(info.face[info.fold == 1].tolist())
        assert {int(r["face"]) for r in rows} == test_faces                      # every test face, once
        names = info.label_names
        for r in rows[:5]:
            probs = [float(r[f"p_{n}"]) for n in names]
            assert sum(probs) == pytest.approx(1, abs=1e-4)
            assert r["pred"] == names[int(np.argmax(probs))] and r["pred_fused"] == r["pred"]
            assert {"pred_local1", "pred_local4"} <= r.keys() and r["source"] and r["subject"]

    def test_written_atomically_from_predictions(self, canvas_file: Path, tmp_path: Path) -> None:
        info = read_file_info(canvas_file)
        faces = np.unique(info.face[info.fold == 0])[:2]
        pred = {"face": faces, "y_true": np.array([0, 1]), "y_pred": np.array([0, 0]),
                "prob": np.array([[0.6, 0.3, 0.1], [0.5, 0.25, 0.25]], np.float32)}
        path = write_predictions(tmp_path / "p.csv", pred, info)
        rows = read_predictions(path)
        assert [r["correct"] for r in rows] == ["1", "0"] and rows[0]["p_class0"] == "0.600000"
        assert not any(k.startswith("pred_") for k in rows[0]) and [p.name for p in tmp_path.iterdir()] == ["p.csv"]

    def test_baseline_predictions_have_no_head_columns(self, canvas_file: Path, tmp_path: Path,
                                                        tiny_cfg: DeganConfig) -> None:
        run_cv(canvas_file, tiny_cfg.replace(method="baseline"), tmp_path / "b", folds=[0], progress=False)
        rows = read_predictions(tmp_path / "b" / "fold_00" / "predictions.csv")
        assert rows and not any(k.startswith("pred_") for k in rows[0])

    def test_formula_like_text_is_quoted_numbers_are_not(self, tmp_path: Path) -> None:
        import csv

        from .conftest import make_file
        names = ["=HYPERLINK(1)", "+x", "@y"]
        info = read_file_info(make_file(tmp_path / "f.h5", label_names=names))
        faces = np.unique(info.face[info.fold == 0])[:2]
        pred = {"face": faces, "y_true": np.array([0, 1]), "y_pred": np.array([2, 1]),
                "prob": np.array([[0.1, 0.2, 0.7], [0.2, 0.5, 0.3]], np.float32)}
        path = write_predictions(tmp_path / "p.csv", pred, info)
        with open(path, newline="") as fh:
            raw = list(csv.reader(fh))
        assert raw[0][6:] == ["p_=HYPERLINK(1)", "p_+x", "p_@y"]
        assert raw[1][3:6] == ["'=HYPERLINK(1)", "'@y", "0"] and raw[2][3:6] == ["'+x", "'+x", "1"]
        assert raw[1][0] == str(faces[0]) and raw[1][6] == "0.100000"
        assert not any(c.startswith(("=", "+", "-", "@")) for row in raw for c in row)
        rows = read_predictions(path)
        assert [r["label"] for r in rows] == ["=HYPERLINK(1)", "+x"] and rows[0]["pred"] == "@y"
