from __future__ import annotations

import json
from pathlib import Path

import pytest

from degan.config import DeganConfig
from degan.errors import RunDirError
from degan.evaluate import evaluate_run, reevaluation_suffix
from degan.predict import read_predictions
from degan.presets import get_preset
from degan.train import run_cv


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

    def test_other_views_get_their_own_files(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        run_cv(canvas_file, tiny_cfg, out, folds=[1], progress=False)
        rows = read_predictions(out / "fold_01" / "predictions.csv")
        evaluate_run(out, test_views="mirror")
        mirror = read_predictions(out / "fold_01" / "predictions_mirror.csv")
        assert [r["face"] for r in mirror] == [r["face"] for r in rows]
        assert read_predictions(out / "fold_01" / "predictions.csv") == rows       # the run's own: unchanged

    def test_results_into_another_directory(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        run_cv(canvas_file, tiny_cfg.replace(method="baseline"), out, folds=[0, 1], progress=False)
        before = sorted(p.relative_to(out) for p in out.rglob("*"))
        res = evaluate_run(out, test_views="mirror", out=tmp_path / "re")
        assert sorted(p.relative_to(out) for p in out.rglob("*")) == before          # the run is untouched
        assert (tmp_path / "re" / "metrics_mirror.json").is_file() and (tmp_path / "re" / "confusion_mirror.png").is_file()
        rows = read_predictions(tmp_path / "re" / "fold_01" / "predictions_mirror.csv")
        assert len(rows) == res["per_fold"]["1"]["n"]

    def test_not_a_run(self, tmp_path: Path) -> None:
        with pytest.raises(RunDirError, match="config.json"):
            evaluate_run(tmp_path)

    def test_suffix(self) -> None:
        run = get_preset("tiny")
        assert reevaluation_suffix(run, run) == ""
        assert reevaluation_suffix(run.replace(test_views="mirror", geometry_weight=0.5), run) == "_mirror_geo0.5"
