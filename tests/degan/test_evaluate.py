from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from degan.config import DeganConfig
from degan.errors import RunDirError
from degan.config import get_preset
from degan.data import make_split, read_file_info
from degan.evaluate import aggregate_folds, classification_metrics, evaluate_run, predict, read_predictions
from degan.train import run_cv


class TestMetrics:
    def test_classification_metrics(self) -> None:
        m = classification_metrics(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 3, ["a", "b", "c"])
        assert m["accuracy"] == pytest.approx(60.0)
        assert m["per_class_recall"] == {"a": 50.0, "b": 100.0, "c": 0.0}
        assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]

    def test_aggregate(self) -> None:
        f0 = classification_metrics(np.array([0, 1]), np.array([0, 1]), 2)
        f1 = classification_metrics(np.array([0, 1]), np.array([0, 0]), 2)
        agg = aggregate_folds({0: f0, 1: f1}, ["x", "y"])
        assert agg["mean"] == pytest.approx(75.0) and agg["std"] == pytest.approx(25.0)
        assert agg["confusion"] == [[2, 0], [1, 1]] and agg["per_class_recall"] == {"x": 100.0, "y": 50.0}
        assert agg["folds"] == {"0": 100.0, "1": 50.0}


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


class TestEvaluateRun:
    def test_reevaluation_reproduces_training_metrics(self, canvas_file: Path, tmp_path: Path,
                                                      tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        trained = run_cv(canvas_file, tiny_cfg, out, folds=[0, 2], progress=False)
        written = json.loads((out / "metrics.json").read_text())
        again = evaluate_run(out)
        assert again["folds"] == trained["folds"] and again["confusion"] == trained["confusion"]
        rewritten = json.loads((out / "metrics.json").read_text())
        for key, value in written.items():              # nothing training wrote is lost or changed
            assert rewritten[key] == value, key
        assert set(written["head_accuracy_mean"]) == {"local1", "local2", "local3", "local4", "fused"}
        views = evaluate_run(out, test_views="all")
        assert views["test_views"] == "all" and (out / "metrics_all.json").is_file()
        assert json.loads((out / "metrics.json").read_text())["mean"] == trained["mean"]

    def test_predictions_csv(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
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
        evaluate_run(out, test_views="mirror")
        mirror = read_predictions(out / "fold_01" / "predictions_mirror.csv")
        assert [r["face"] for r in mirror] == [r["face"] for r in rows]
        assert read_predictions(out / "fold_01" / "predictions.csv") == rows       # the run's own: unchanged

    def test_baseline_predictions_have_no_head_columns(self, canvas_file: Path, tmp_path: Path,
                                                        tiny_cfg: DeganConfig) -> None:
        run_cv(canvas_file, tiny_cfg.replace(model="baseline"), tmp_path / "b", folds=[0], progress=False)
        rows = read_predictions(tmp_path / "b" / "fold_00" / "predictions.csv")
        assert rows and not any(k.startswith("pred_") for k in rows[0])

    def test_not_a_run(self, tmp_path: Path) -> None:
        with pytest.raises(RunDirError, match="config.json"):
            evaluate_run(tmp_path)


class TestCompareRuns:
    def test_paired_comparison_and_ensemble(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        import subprocess
        import sys
        cfg = tiny_cfg.replace(model="baseline")
        a = run_cv(canvas_file, cfg, tmp_path / "a", folds=[0, 1], progress=False)
        b = run_cv(canvas_file, cfg.replace(seed=1), tmp_path / "b", folds=[0, 1], progress=False)
        script = Path(__file__).resolve().parents[2] / "bench" / "compare_runs.py"
        out = subprocess.run([sys.executable, str(script), f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}",
                              "--ensemble", "ab=a,b"], capture_output=True, text=True, check=True).stdout
        res = json.loads(out)
        assert res["runs"]["a"]["mean"] == pytest.approx(a["mean"], abs=0.01)
        assert res["runs"]["b"]["folds"] == [pytest.approx(b["folds"][k], abs=0.01) for k in ("0", "1")]
        pair = res["pairs"]["a vs b"]
        n = sum(json.loads((tmp_path / "a" / f"fold_0{f}" / "metrics.json").read_text())["n_test_faces"]
                for f in (0, 1))
        assert pair["both_right"] + pair["only_first"] + pair["only_second"] <= n
        assert pair["mean_fold_difference"] == pytest.approx(a["mean"] - b["mean"], abs=0.02)
        assert 0 <= pair["mcnemar_exact_p"] <= 1 and {"a vs ab", "b vs ab"} <= res["pairs"].keys()
        # runs on different data: the same face with another label is refused
        csv_b = tmp_path / "b" / "fold_00" / "predictions.csv"
        lines = csv_b.read_text().splitlines()
        cols = lines[1].split(",")
        label_col = lines[0].split(",").index("label")
        cols[label_col] = "not-a-label"
        csv_b.write_text("\n".join([lines[0], ",".join(cols), *lines[2:]]) + "\n")
        bad = subprocess.run([sys.executable, str(script), f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}"],
                             capture_output=True, text=True)
        assert bad.returncode != 0 and "another label" in bad.stderr

    def test_run_without_predictions(self, tmp_path: Path) -> None:
        import subprocess
        import sys
        script = Path(__file__).resolve().parents[2] / "bench" / "compare_runs.py"
        r = subprocess.run([sys.executable, str(script), f"a={tmp_path}"], capture_output=True, text=True)
        assert r.returncode != 0 and "degan-eval" in r.stderr


class TestStage1HeadScript:
    def test_scores_the_head_and_feeds_compare_runs(self, canvas_file: Path, tmp_path: Path,
                                                    tiny_cfg: DeganConfig) -> None:
        import subprocess
        import sys
        bench = Path(__file__).resolve().parents[2] / "bench"
        run_cv(canvas_file, tiny_cfg.replace(expr_weight=1.0), tmp_path / "r", folds=[0, 1], progress=False)
        out = subprocess.run([sys.executable, str(bench / "stage1_head.py"), str(tmp_path / "r"), "--out",
                              str(tmp_path / "h")], capture_output=True, text=True, check=True).stdout
        res = json.loads(out)
        assert sorted(res["folds"]) == ["0", "1"]
        for f, acc in res["folds"].items():
            rows = read_predictions(tmp_path / "h" / f"fold_0{f}" / "predictions.csv")
            n_test = json.loads((tmp_path / "r" / f"fold_0{f}" / "metrics.json").read_text())["n_test_faces"]
            assert len(rows) == n_test
            assert acc == pytest.approx(100 * np.mean([int(r["correct"]) for r in rows]))
        cmp = subprocess.run([sys.executable, str(bench / "compare_runs.py"), f"stage2={tmp_path / 'r'}",
                              f"head={tmp_path / 'h'}"], capture_output=True, text=True, check=True).stdout
        assert json.loads(cmp)["runs"]["head"]["mean"] == pytest.approx(res["mean"], abs=0.01)

    def test_run_without_the_head_refused(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        import subprocess
        import sys
        run_cv(canvas_file, tiny_cfg, tmp_path / "r", folds=[0], progress=False)
        script = Path(__file__).resolve().parents[2] / "bench" / "stage1_head.py"
        r = subprocess.run([sys.executable, str(script), str(tmp_path / "r")], capture_output=True, text=True)
        assert r.returncode != 0 and "expr_weight=0" in r.stderr


class TestWriteJson:
    def test_atomic_and_readable(self, tmp_path: Path) -> None:
        from degan._jsonio import write_json
        p = write_json(tmp_path / "m.json", {"a": [1, 2]})
        assert json.loads(p.read_text()) == {"a": [1, 2]} and [f.name for f in tmp_path.iterdir()] == ["m.json"]

    def test_failure_keeps_the_old_file(self, tmp_path: Path) -> None:
        from degan._jsonio import write_json
        p = write_json(tmp_path / "m.json", {"ok": 1})
        with pytest.raises(TypeError):
            write_json(p, {"bad": object()})               # not JSON-serialisable
        assert json.loads(p.read_text()) == {"ok": 1} and [f.name for f in tmp_path.iterdir()] == ["m.json"]
