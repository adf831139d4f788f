"""The scripts in bench/ (run as a user runs them)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from degan.config import DeganConfig
from degan.predict import read_predictions
from degan.train import run_cv

ROOT = Path(__file__).resolve().parents[2]


class TestCompareRuns:
    def test_paired_comparison_and_ensemble(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(method="baseline")
        a = run_cv(canvas_file, cfg, tmp_path / "a", folds=[0, 1], progress=False)
        b = run_cv(canvas_file, cfg.replace(seed=1), tmp_path / "b", folds=[0, 1], progress=False)
        script = ROOT / "bench" / "compare_runs.py"
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

    def test_reevaluations_by_name_new_and_earlier_layout(self, canvas_file: Path, tmp_path: Path,
                                                          tiny_cfg: DeganConfig) -> None:
        import shutil

        from degan.evaluate import evaluate_run
        run = tmp_path / "run"
        run_cv(canvas_file, tiny_cfg.replace(method="baseline"), run, folds=[0, 1], progress=False)
        mirror = evaluate_run(run, test_views="mirror")
        script = ROOT / "bench" / "compare_runs.py"
        res = json.loads(subprocess.run([sys.executable, str(script), f"m={run}@mirror"], capture_output=True,
                                        text=True, check=True).stdout)
        assert res["runs"]["m"]["mean"] == pytest.approx(mirror["mean"], abs=0.01)
        for f in ("fold_00", "fold_01"):           # as earlier versions wrote a re-evaluation
            shutil.copy(run / "evals" / "mirror" / f / "predictions.csv", run / f / "predictions_old.csv")
        old = json.loads(subprocess.run([sys.executable, str(script), f"o={run}@old"], capture_output=True,
                                        text=True, check=True).stdout)
        assert old["runs"]["o"] == res["runs"]["m"]

    def test_run_without_predictions(self, tmp_path: Path) -> None:
        script = ROOT / "bench" / "compare_runs.py"
        r = subprocess.run([sys.executable, str(script), f"a={tmp_path}"], capture_output=True, text=True)
        assert r.returncode != 0 and "degan-eval" in r.stderr


class TestStage1HeadScript:
    def test_scores_the_head_and_feeds_compare_runs(self, canvas_file: Path, tmp_path: Path,
                                                    tiny_cfg: DeganConfig) -> None:
        bench = ROOT / "bench"
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
        run_cv(canvas_file, tiny_cfg, tmp_path / "r", folds=[0], progress=False)
        script = ROOT / "bench" / "stage1_head.py"
        r = subprocess.run([sys.executable, str(script), str(tmp_path / "r")], capture_output=True, text=True)
        assert r.returncode != 0 and "expr_weight=0" in r.stderr


class TestThroughputScript:
    def test_quick_cpu(self, tmp_path: Path) -> None:
        out = tmp_path / "t.json"
        res = subprocess.run([sys.executable, str(ROOT / "bench" / "degan_throughput.py"), "--quick", "--threads",
                              "2", "--out", str(out)], capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stderr[-3000:]
        report = json.loads(out.read_text())
        assert report["device"] == "cpu" and {r["preset"] for r in report["results"]} == {"paper", "cpu"}
        assert report["device_name"]                    # the CPU model (bench/_machine.py)
        for r in report["results"]:
            assert r["status"] == "ok", r
            for k in ("stage1_img_per_s", "stage2_img_per_s", "baseline_img_per_s"):
                assert r[k] > 0

    def test_quick_cpu_processes(self, tmp_path: Path) -> None:
        """--processes 2: two spawned 1-thread processes measure at once; images/s summed and per process."""
        out = tmp_path / "t.json"
        res = subprocess.run([sys.executable, str(ROOT / "bench" / "degan_throughput.py"), "--quick", "--presets",
                              "cpu", "--threads", "2", "--processes", "2", "--out", str(out)],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        one, two = json.loads(out.read_text())["results"]
        assert (one["processes"], one["threads_per_process"]) == (1, 2)
        assert (two["processes"], two["threads_per_process"], two["status"]) == (2, 1, "ok")
        for k in ("stage1", "stage2", "baseline"):
            per = two[f"{k}_img_per_s_per_process"]
            assert len(per) == 2 and all(v > 0 for v in per)
            assert abs(two[f"{k}_img_per_s"] - sum(per)) < 1e-9
            assert abs(two["speedup_over_one_process"][k] - two[f"{k}_img_per_s"] / one[f"{k}_img_per_s"]) < 1e-9
