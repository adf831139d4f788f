from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from degan.config import ConfigError, DeganConfig
from degan.errors import CheckpointError, DataNotCheckedWarning, RunDirError
from degan.evaluate import evaluate_run, reevaluation_dir, reevaluation_name
from degan.predict import read_predictions
from degan.presets import get_preset
from degan.train import run_cv

from .conftest import add_folds, copy_file, make_file


def tree(d: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``d`` with its size and modification time."""
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def run(canvas_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DE-GAN run of folds 0 and 2."""
    out = tmp_path_factory.mktemp("eval") / "run"
    run_cv(canvas_file, get_preset("tiny"), out, folds=[0, 2], progress=False)
    return out


class TestEvaluateRun:
    def test_reevaluation_reproduces_training_and_leaves_the_run_alone(self, run: Path) -> None:
        trained = json.loads((run / "metrics.json").read_text())
        before = tree(run)
        again = evaluate_run(run)
        assert again["folds"] == trained["folds"] and again["confusion"] == trained["confusion"]
        own = run / "evals" / "own"
        assert {p for p in tree(run) if not p.startswith("evals/")} == set(before)
        assert {k: v for k, v in tree(run).items() if not k.startswith("evals/")} == before    # untouched
        assert json.loads((own / "metrics.json").read_text())["folds"] == trained["folds"]
        for f in (0, 2):
            assert (own / f"fold_{f:02d}" / "predictions.csv").read_bytes() == \
                (run / f"fold_{f:02d}" / "predictions.csv").read_bytes()
        record = json.loads((own / "eval.json").read_text())
        assert record["name"] == "own" and record["folds"] == [0, 2] and record["options"]["test_views"] == "centre"
        assert record["fingerprint"]["samples"] == 36 and "threads" in record and record["device"] == "cpu"
        assert (own / "confusion.png").is_file()

    def test_other_views_get_their_own_directory(self, run: Path) -> None:
        rows = read_predictions(run / "fold_00" / "predictions.csv")
        res = evaluate_run(run, test_views="mirror")
        assert res["test_views"] == "mirror"
        mirror = read_predictions(run / "evals" / "mirror" / "fold_00" / "predictions.csv")
        assert [r["face"] for r in mirror] == [r["face"] for r in rows]
        assert read_predictions(run / "fold_00" / "predictions.csv") == rows       # the run's own: unchanged
        named = evaluate_run(run, test_views="mirror", name="check-1")
        assert named["folds"] == res["folds"] and (run / "evals" / "check-1" / "metrics.json").is_file()

    def test_results_into_another_directory(self, run: Path, tmp_path: Path) -> None:
        before = tree(run)
        res = evaluate_run(run, test_views="all", out=tmp_path / "re")
        assert tree(run) == before
        assert (tmp_path / "re" / "metrics.json").is_file() and (tmp_path / "re" / "confusion.png").is_file()
        assert len(read_predictions(tmp_path / "re" / "fold_02" / "predictions.csv")) == res["per_fold"]["2"]["n"]
        evaluate_run(run, test_views="all", out=tmp_path / "re")          # the same options again: replaced

    def test_a_copy_of_the_data_is_the_data(self, run: Path, canvas_file: Path, tmp_path: Path) -> None:
        copy = copy_file(canvas_file, tmp_path / "elsewhere" / "renamed.h5")
        res = evaluate_run(run, data=copy, name="copy")
        assert res["folds"] == json.loads((run / "metrics.json").read_text())["folds"]
        assert json.loads((run / "evals" / "copy" / "eval.json").read_text())["data"] == str(copy.resolve())

    def test_other_data_refused_naming_both_and_nothing_written(self, run: Path, canvas_file: Path,
                                                               tmp_path: Path) -> None:
        refolded = add_folds(copy_file(canvas_file, tmp_path / "refolded.h5"), 2)
        fewer = make_file(tmp_path / "fewer.h5", n_classes=2)
        before = tree(run)
        with pytest.raises(RunDirError) as exc:
            evaluate_run(run, data=refolded, name="x")
        msg = str(exc.value)
        assert msg.startswith(f"{run}: {refolded.resolve()} is not the data it was trained on "
                              f"({canvas_file.resolve()}): folds differ (subject->fold sha "), msg
        assert "file content" not in msg and "\n" not in msg
        with pytest.raises(RunDirError, match=r"file content differs \(sha \w{8} recorded, \w{8} now\); label names "
                                              r"differ \(class0,class1,class2 recorded, class0,class1 now\)"):
            evaluate_run(run, data=fewer, name="y")
        assert tree(run) == before

    def test_checkpoint_of_other_data_refused(self, run: Path, canvas_file: Path, tmp_path: Path) -> None:
        from degan.checkpoint import load_checkpoint, save_checkpoint
        copy = tmp_path / "run"
        shutil.copytree(run, copy)
        ck = copy / "fold_02" / "checkpoint.pt"
        state = load_checkpoint(ck)
        state["meta"]["fingerprint"]["folds"] = "0" * 64
        save_checkpoint(ck, state)
        with pytest.raises(CheckpointError, match=r"fold_02/checkpoint.pt: .* folds differ \(subject->fold sha "
                                                  r"00000000 recorded"):
            evaluate_run(copy, name="z")
        assert not (copy / "evals" / "z").exists()

    def test_run_without_fingerprint_is_evaluated_with_a_warning(self, run: Path, tmp_path: Path) -> None:
        copy = tmp_path / "run"
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns("evals"))
        record = json.loads((copy / "config.json").read_text())
        del record["fingerprint"]
        (copy / "config.json").write_text(json.dumps(record))
        with pytest.warns(DataNotCheckedWarning, match="records no data fingerprint"):
            res = evaluate_run(copy)
        assert res["folds"] == json.loads((run / "metrics.json").read_text())["folds"]

    def test_destination_refusals(self, run: Path, tmp_path: Path) -> None:
        with pytest.raises(RunDirError, match="is a run directory"):
            evaluate_run(run, out=run)
        with pytest.raises(RunDirError, match="is a run directory"):
            evaluate_run(run, out=run / "fold_00" / "..")
        with pytest.raises(RunDirError, match="is a run directory or inside one"):
            evaluate_run(run, out=run / "fold_00")
        before = tree(run)
        evaluate_run(run, test_views="mirror", out=run / "evals" / "by-hand")         # under evals/: fine
        assert {k for k in tree(run) if k not in before} <= {k for k in tree(run) if k.startswith("evals/by-hand/")}
        evaluate_run(run, name="taken")
        with pytest.raises(RunDirError, match="holds a re-evaluation with other options"):
            evaluate_run(run, name="taken", test_views="mirror")
        (tmp_path / "busy").mkdir()
        (tmp_path / "busy" / "notes.txt").write_text("mine")
        with pytest.raises(RunDirError, match="not a re-evaluation directory"):
            evaluate_run(run, out=tmp_path / "busy")
        for bad in ("../up", ".hidden", "a/b", ""):
            with pytest.raises(ConfigError, match="--name"):
                evaluate_run(run, name=bad) if bad else reevaluation_dir(run, bad)

    def test_not_a_run(self, tmp_path: Path) -> None:
        with pytest.raises(RunDirError, match="config.json"):
            evaluate_run(tmp_path)

    def test_name(self, tmp_path: Path) -> None:
        run_cfg: DeganConfig = get_preset("tiny")
        assert reevaluation_name(run_cfg, run_cfg) == "own"
        assert reevaluation_name(run_cfg.replace(test_views="mirror", geometry_weight=0.5), run_cfg) == "mirror_geo0.5"
        assert reevaluation_name(run_cfg.replace(test_views="all"), run_cfg) == "all"
        assert reevaluation_dir(tmp_path, "geo0.5") == tmp_path / "evals" / "geo0.5"
