from __future__ import annotations

import numpy as np
import pytest

from degan.metrics import aggregate_folds, classification_metrics, head_accuracies, prediction_metrics, summarize_run
from degan.presets import get_preset


class TestClassificationMetrics:
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


class TestHeadAccuracies:
    def test_heads_and_experts(self) -> None:
        pred = {"y_true": np.array([0, 1, 1, 2]), "y_pred": np.array([0, 1, 0, 2]),
                "head_pred": np.array([[0, 1, 1, 2]] * 4 + [[0, 1, 0, 2]]),
                "image_pred": np.array([0, 0, 0, 0]), "geometry_pred": np.array([0, 1, 1, 2])}
        acc = head_accuracies(pred)
        assert acc == {"local1": 100.0, "local2": 100.0, "local3": 100.0, "local4": 100.0, "fused": 75.0,
                       "image": 25.0, "geometry": 100.0}
        assert head_accuracies({"y_true": pred["y_true"], "y_pred": pred["y_pred"]}) is None
        m = prediction_metrics(pred, 3, ["a", "b", "c"])
        assert m["accuracy"] == 75.0 and m["head_accuracy"] == acc


class TestSummarizeRun:
    def test_run_level_metrics(self) -> None:
        f0 = {**classification_metrics(np.array([0, 1]), np.array([0, 1]), 2), "seconds": 3.0,
              "head_accuracy": {"image": 50.0}}
        f1 = {**classification_metrics(np.array([0, 1]), np.array([0, 0]), 2), "seconds": 5.0,
              "head_accuracy": {"image": 100.0}}
        agg = summarize_run({0: f0, 1: f1}, ["x", "y"], get_preset("tiny").replace(method="baseline"), extra=1)
        assert (agg["method"], agg["preset"], agg["test_views"], agg["extra"]) == ("baseline", "tiny", "centre", 1)
        assert agg["fold_seconds"] == {"0": 3.0, "1": 5.0} and agg["total_fold_seconds"] == 8.0
        assert agg["head_accuracy_mean"] == {"image": pytest.approx(75.0)} and agg["mean"] == pytest.approx(75.0)
