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


@pytest.fixture(scope="module")
def rotatable_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A canvas file with room to rotate by 15 degrees (facekit.augment.required_margin), folds k=3."""
    from .conftest import make_file
    return make_file(tmp_path_factory.mktemp("rot") / "faces.h5", face_size=40, margin=6, patch_size=32)


def _stored_copy(canvas_file: Path, path: Path) -> Path:
    """The faces of ``canvas_file`` with their 110 copies stored as `facekit prepare --augment paper` stores them."""
    from facekit.augment import AugmentConfig, augment_face
    from facekit.store import FaceRecord, PartWriter, assemble, open_facekit
    with open_facekit(canvas_file) as fk:
        canvases, sources = fk.images[()], [str(s) for s in fk.column("faces/source")]
        face, label, subject = fk.column("samples/face"), fk.column("samples/label"), fk.column("samples/subject")
        box, patch, names, subjects = fk.face_box, fk.patch_size, fk.label_names, fk.subjects
    part = path.parent / (path.name + ".parts") / "part-00000.h5"
    with PartWriter(part, sample_shape=(patch, patch), canvas_shape=canvases.shape[1:]) as w:
        for i in range(len(canvases))[::-1]:                    # another face order than the canvas file's
            aug = augment_face(canvases[i], box, AugmentConfig(patch_size=patch))
            w.add_face(FaceRecord(source=sources[int(face[i])], subject=subjects[int(subject[i])],
                                  sequence=sources[int(face[i])], label=int(label[i]), frame=0, image=canvases[i],
                                  landmarks=np.zeros((478, 2), np.float32), matrix=np.eye(2, 3),
                                  samples=aug.images, sample_landmarks=aug.landmarks, patch=aug.patch,
                                  angle=aug.angle, flip=aug.flip))
    assemble(path, [part], dataset="synthetic", label_names=names, config={},
             attrs={"augment": "paper", "face_box": list(box), "patch_size": patch})
    return path


class TestPaperViewsScript:
    def test_renders_equal_the_stored_copies(self, rotatable_file: Path, tmp_path: Path) -> None:
        stored = _stored_copy(rotatable_file, tmp_path / "stored.h5")
        script = ROOT / "bench" / "paper_views.py"
        for extra in ([], ["--stored", str(stored)]):
            res = subprocess.run([sys.executable, str(script), str(rotatable_file), "--faces", "5", *extra],
                                 capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, res.stderr[-3000:]
            r = json.loads(res.stdout)
            assert r["faces"] == 5 and r["views_per_face"] == 110 and r["patch_size"] == 32
            assert r["unrotated_max_abs_diff"] < 1e-2 and r["max_abs_diff"] <= 0.51 and r["mean_abs_diff"] < 0.3
            assert r["render_views_per_s"] > 0 and r["augment_face_views_per_s"] > 0
        assert r["augment_face_vs_stored_max_abs_diff"] == 0

    def test_refuses_a_file_of_stored_patches(self, paper_file: Path) -> None:
        res = subprocess.run([sys.executable, str(ROOT / "bench" / "paper_views.py"), str(paper_file)],
                             capture_output=True, text=True)
        assert res.returncode != 0 and "--augment none" in res.stderr


class TestGpuPaperScript:
    """bench/gpu_paper.py on a CPU: a tiny file, small networks (recorded as deviations), tiny budgets."""

    SMALL = ["--set", "arch.image_size=16", "--set", "arch.width=0.125", "--set", "feat_dim=16", "--set",
             "noise_dim=4", "--set", "batch_size=600", "--device", "cpu"]

    def _run(self, data: Path, out: Path, *args: str) -> dict:
        res = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_paper.py"), str(data), "--out", str(out),
                              "--work", str(out.parent / "work"), *self.SMALL, *args],
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads((out / "gpu_paper.json").read_text())

    def test_records_every_epoch_and_the_grids(self, canvas_file: Path, tmp_path: Path) -> None:
        r = self._run(canvas_file, tmp_path / "a", "--set", "stage1.epochs=2", "--budget-s", "3600")
        assert r["preset"] == "paper" and r["stopped"] == "epochs" and r["partial_epoch"] is None
        assert (r["n_train_faces"], r["views_per_sample"], r["items_per_epoch"]) == (24, 110, 2640)
        assert r["steps_per_epoch"] == 4 and r["batch_size"] == 600                 # floor(2640 / 600)
        rows = {d["field"]: d for d in r["deviations"]}
        assert rows["stage1.pretrain"]["value"] is False and rows["arch.image_size"]["value"] == 16
        assert "data.augment" not in rows and "stage1.recon_weight" not in rows  # the paper's losses alone
        assert [e["epoch"] for e in r["epochs"]] == [1, 2]
        for e in r["epochs"]:
            assert 0 <= e["d_acc"] <= 1 and 0 <= e["d_acc_ema"] <= 1
            assert e["g_id"] > 0 and e["g_expr"] > 0 and e["img_per_s"] > 0 and e["images"] == 4 * 600
            assert (tmp_path / "a" / e["grid"]).is_file()
        assert (tmp_path / "a" / "synthesis.png").is_file() and r["synthesis_after"] == "epoch 2"
        assert r["images_trained"] == 2 * 2400 and r["img_per_s"] > 0
        assert (tmp_path / "work" / "fold_00" / "checkpoint.pt").is_file()
        assert not list((tmp_path / "a").glob("*.pt"))                            # checkpoints stay out of --out

    def test_a_spent_budget_stops_within_the_epoch(self, canvas_file: Path, tmp_path: Path) -> None:
        r = self._run(canvas_file, tmp_path / "b", "--budget-s", "0")
        assert r["stopped"] == "budget" and r["epochs"] == []
        assert r["partial_epoch"]["epoch"] == 1 and r["partial_epoch"]["steps"] == 1     # stopped after one step
        assert (tmp_path / "b" / "synthesis.png").is_file() and r["synthesis_after"] == "a partial epoch"

    def test_refusals_are_one_line(self, no_folds_file: Path, tmp_path: Path) -> None:
        res = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_paper.py"), str(no_folds_file), "--out",
                              str(tmp_path / "c"), "--device", "cpu"], capture_output=True, text=True)
        assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith("error: ")
        assert "facekit folds" in res.stderr and "Traceback" not in res.stderr

    def test_a_non_finite_loss_is_a_result(self, canvas_file: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        import importlib.util

        from degan.train import GanStep
        spec = importlib.util.spec_from_file_location("gpu_paper", ROOT / "bench" / "gpu_paper.py")
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        real = GanStep.__call__
        monkeypatch.setattr(GanStep, "__call__", lambda self, *a: {**real(self, *a), "g_id": float("nan")})
        code = mod.main([str(canvas_file), "--out", str(tmp_path / "n"), "--work", str(tmp_path / "w"),
                         *self.SMALL])
        r = json.loads((tmp_path / "n" / "gpu_paper.json").read_text())
        assert code == 1 and r["stopped"].startswith("non-finite loss") and "g_id=nan" in r["stopped"]
        assert (tmp_path / "n" / "synthesis.png").is_file()


def _fake_run(run: Path, folds: dict[int, list[tuple[str, str, str]]], k: int) -> Path:
    """A run directory with hand-written predictions: fold -> [(label, pred, pred_image), ...]."""
    face = 0
    for fold, rows in folds.items():
        d = run / f"fold_{fold:02d}"
        d.mkdir(parents=True)
        lines = ["face,label,pred,pred_image"]
        for label, pred, image in rows:
            lines.append(f"{face},{label},{pred},{image}")
            face += 1
        (d / "predictions.csv").write_text("\n".join(lines) + "\n")
    (run / "metrics.json").write_text(json.dumps({"n_folds": len(folds), "total_fold_seconds": 1.0}))
    (run / "config.json").write_text(json.dumps({"k": k}))
    return run


class TestSeedsSummaryScript:
    SCRIPT = ROOT / "bench" / "seeds_summary.py"

    def _runs(self, tmp_path: Path) -> list[str]:
        a, b = ("x", "x", "x"), ("x", "y", "x")          # right / wrong (image model right)
        w = ("x", "y", "y")                               # both wrong
        b2 = _fake_run(tmp_path / "b2", {0: [w, a, a, a]}, k=2)
        (b2 / "metrics.json").write_text(json.dumps({"n_folds": 2}))     # says 2, one predictions.csv
        return [
            f"A:1={_fake_run(tmp_path / 'a1', {0: [a, a, a, b], 1: [a, a]}, k=2)}",
            f"B:1={_fake_run(tmp_path / 'b1', {0: [w, w, a, a], 1: [a, w]}, k=2)}",
            f"A:2={_fake_run(tmp_path / 'a2', {0: [a, a, a, a], 1: [a, a]}, k=2)}",
            f"B:2={b2}",                                                       # incomplete
        ]

    def test_accuracies_mcnemar_and_description(self, tmp_path: Path) -> None:
        walls = tmp_path / "walltimes.txt"
        walls.write_text("a1 rc=1 wall=100 load_before=1 2 3 load_after=1 2 3 resumed=0\n"
                         "a1 rc=0 wall=50 load_before=0.5 1 1 load_after=2 2 2 resumed=1\n")
        res = json.loads(subprocess.run(
            [sys.executable, str(self.SCRIPT), *self._runs(tmp_path), "--walltimes", str(walls),
             "--dataset", "toy", "--protocol", "by hand", "--name", "A=method a", "--seeds-planned", "1", "2", "3"],
            capture_output=True, text=True, check=True).stdout)
        assert (res["dataset"], res["protocol"]) == ("toy", "by hand")
        assert res["seeds_planned"] == [1, 2, 3] and res["seeds_complete"] == [1]
        assert res["methods_named"] == {"A": "method a", "B": "B"}
        a = res["methods"]["A"]
        assert a["seeds"]["1"]["folds"] == [75.0, 100.0] and a["seeds"]["1"]["pooled"] == pytest.approx(83.33)
        assert a["seeds"]["2"]["folds"] == [100.0, 100.0]
        # only seed 1 is complete (B's seed 2 scored one fold of two): the aggregates cover seed 1
        assert a["seeds_summed"] == [1] and a["n_folds"] == 2 and a["seeds"]["2"]["complete"] is False
        assert a["mean_of_seeds"] == pytest.approx(87.5) and a["std_over_seeds"] is None
        assert res["methods"]["A (image model alone)"]["seeds"]["1"]["folds"] == [100.0, 100.0]
        s1 = a["seeds"]["1"]
        assert (s1["wall_seconds"], s1["sittings"], s1["rc"], s1["resumed"]) == (150, 2, 0, True)
        pair = res["pairs"]["A vs B"]["per_seed"]
        # seed 1: A right, B wrong on faces 0, 1, 5; B right, A wrong on face 3
        assert pair["1"] == {"faces": 6, "only_first": 3, "only_second": 1, "mcnemar_exact_p": 0.625}
        assert pair["2"] == {"faces": 4, "only_first": 1, "only_second": 0, "mcnemar_exact_p": 1.0}
        # the summed test covers the complete seed 1 only, not seed 2's face
        assert (res["pairs"]["A vs B"]["summed_only_first"], res["pairs"]["A vs B"]["summed_only_second"]) == (3, 1)

    def test_markdown_table(self, tmp_path: Path) -> None:
        out = tmp_path / "s.json"
        text = subprocess.run([sys.executable, str(self.SCRIPT), *self._runs(tmp_path), "--markdown",
                               "--out", str(out)], capture_output=True, text=True, check=True).stdout
        rows = text.splitlines()
        assert rows[0].startswith("| method | seeds |") and len(rows) == 4
        assert rows[2] == "| A | 1 | 87.50 ± 12.50 |  | 100.00 ± 0.00 |"
        res = json.loads(out.read_text())
        assert res["seeds_planned"] == [1]                            # only seed 1 is complete

    def test_every_seed_summed_while_none_is_complete(self, tmp_path: Path) -> None:
        res = json.loads(subprocess.run(
            [sys.executable, str(self.SCRIPT), *self._runs(tmp_path)[2:]], capture_output=True, text=True,
            check=True).stdout)
        assert res["seeds_complete"] == [] and res["methods"]["B"]["seeds_summed"] == [2]
        assert res["methods"]["A"]["std_over_seeds"] is None and res["methods"]["A"]["n_folds"] == 2

    def test_complete_run(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.syspath_prepend(str(ROOT / "bench"))
        from seeds_summary import read_run, run_complete
        a = ("x", "x", "x")
        run = _fake_run(tmp_path / "r", {0: [a], 1: [a]}, k=2)
        assert run_complete(read_run(run)[1])
        (run / "metrics.json").write_text(json.dumps({"n_folds": 1}))      # not aggregated over both folds
        assert not run_complete(read_run(run)[1])
        (run / "metrics.json").unlink()
        assert not run_complete(read_run(run)[1])
        (run / "config.json").unlink()                                    # k unknown
        assert not run_complete({"folds_scored": 2, "n_folds": 2})
        assert not run_complete(read_run(run)[1])

    def test_run_without_predictions_refused(self, tmp_path: Path) -> None:
        (tmp_path / "empty").mkdir()
        bad = subprocess.run([sys.executable, str(self.SCRIPT), f"A:1={tmp_path / 'empty'}"],
                             capture_output=True, text=True)
        assert bad.returncode != 0 and "no fold_XX/predictions.csv" in bad.stderr
