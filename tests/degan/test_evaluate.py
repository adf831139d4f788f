from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from degan.config import DeganConfig
from degan.errors import RunDirError
from degan.evaluate import aggregate_folds, classification_metrics, evaluate_run
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


class TestEvaluateRun:
    def test_reevaluation_reproduces_training_metrics(self, canvas_file: Path, tmp_path: Path,
                                                      tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        trained = run_cv(canvas_file, tiny_cfg, out, folds=[0, 2], progress=False)
        again = evaluate_run(out)
        assert again["folds"] == trained["folds"] and again["confusion"] == trained["confusion"]
        views = evaluate_run(out, test_views="all")
        assert views["test_views"] == "all" and (out / "metrics_all.json").is_file()
        assert json.loads((out / "metrics.json").read_text())["mean"] == trained["mean"]

    def test_not_a_run(self, tmp_path: Path) -> None:
        with pytest.raises(RunDirError, match="config.json"):
            evaluate_run(tmp_path)
