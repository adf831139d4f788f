"""degan-train, degan-eval, degan-synthesize (facekit_cli.degan) as a user meets them."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from facekit_cli import degan as cli
from facekit_cli.degan import eval_main, synthesize_main, train_main

TINY = ["--preset", "tiny", "--epochs", "1"]
ROOT = Path(__file__).resolve().parents[2]


def run(command, *args: object) -> Result:  # type: ignore[no-untyped-def]
    return CliRunner().invoke(command, [str(a) for a in args])


def one_error_line(res: Result, code: int, *needles: str) -> str:
    """The result exited with ``code`` and one ``error: ...`` line on stderr holding ``needles``."""
    assert res.exit_code == code, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in res.output, res.output
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def trained(canvas_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    res = run(train_main, canvas_file, "--fold", 2, *TINY, "--seed", 3, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    return out


class TestTrainCommand:
    def test_trains_and_summarises(self, trained: Path) -> None:
        cfg = json.loads((trained / "config.json").read_text())["config"]
        assert cfg["train"]["seed"] == 3 and cfg["stage1"]["epochs"] == 1 and cfg["method"] == "degan"
        assert json.loads((trained / "metrics.json").read_text())["folds"].keys() == {"2"}

    def test_quiet_keeps_fold_lines_and_no_progress_is_an_alias(self, canvas_file: Path, tmp_path: Path) -> None:
        for flag in ("-q", "--no-progress"):
            res = run(train_main, canvas_file, "--fold", 1, *TINY, "--method", "baseline", "-o", tmp_path / flag,
                      flag)
            assert res.exit_code == 0, res.output
            assert "baseline (tiny): " in res.stdout and "% on fold 1" in res.stdout and "±" not in res.stdout
            assert "fold 1: " in res.stderr and "(1/1 folds done)" in res.stderr
            assert "img/s" not in res.output and "run:" not in res.stderr             # no bars

    def test_progress_shows_the_whole_run(self, canvas_file: Path, tmp_path: Path) -> None:
        res = run(train_main, canvas_file, "--cv", *TINY, "--method", "baseline", "-o", tmp_path / "r")
        assert res.exit_code == 0, res.output
        assert "run:" in res.stderr and "/48 " in res.stderr           # 3 folds x 16 images (batch 16, 24 faces)
        assert "(1/3 folds done, about " in res.stderr and "min left)" in res.stderr

    def test_json_summary(self, canvas_file: Path, tmp_path: Path) -> None:
        res = run(train_main, canvas_file, "--fold", 0, *TINY, "--method", "baseline", "-o", tmp_path / "r", "-q",
                  "--json")
        assert res.exit_code == 0, res.output
        m = json.loads(res.stdout)
        assert m["method"] == "baseline" and m["n_folds"] == 1

    def test_folds_in_parallel_jobs(self, canvas_file: Path, tmp_path: Path) -> None:
        res = run(train_main, canvas_file, "--cv", "--method", "baseline", *TINY, "--jobs", 2, "--threads", 1,
                  "-o", tmp_path / "run")
        assert res.exit_code == 0, res.output
        assert "up to 2 folds at a time" in res.stderr
        for f in range(3):                               # one line per finished fold, in any order
            assert f"fold {f}: " in res.stderr
        assert "(3/3 folds done)" in res.stderr and "per fold: 0:" in res.stdout
        # one fold to train: it runs in this process, which honours --threads too
        res = run(train_main, canvas_file, "--fold", 1, "--method", "baseline", *TINY, "--jobs", 2, "--threads", 1,
                  "-o", tmp_path / "one", "-q")
        assert res.exit_code == 0, res.output
        assert torch.get_num_threads() == 1

    def test_default_preset_follows_the_device(self, canvas_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        res = run(train_main, canvas_file, "--print-config")
        assert res.exit_code == 0, res.output
        if not torch.cuda.is_available():
            assert json.loads(res.stdout)["preset"] == "cpu"
            assert "preset cpu: the default without a CUDA device (device cpu); --preset paper" in res.stderr
        from degan import distributed
        monkeypatch.setattr(distributed, "setup",
                            lambda device=None: distributed.DistInfo(device=torch.device("cuda")))
        res = run(train_main, canvas_file, "--print-config")
        assert json.loads(res.stdout)["preset"] == "paper" and "preset paper: the default on a CUDA device" \
            in res.stderr
        res = run(train_main, canvas_file, "--print-config", "--preset", "tiny")
        assert json.loads(res.stdout)["preset"] == "tiny" and "preset" not in res.stderr

    def test_print_config_by_section(self, canvas_file: Path) -> None:
        res = run(train_main, canvas_file, "--preset", "cpu", "--set", "stage2.lr=0.5", "--set", "expr_weight=2",
                  "--method", "baseline", "--epochs", "3,4", "--print-config")
        cfg = json.loads(res.stdout)
        assert cfg["stage2"]["lr"] == 0.5 and cfg["stage1"]["expr_weight"] == 2 and cfg["method"] == "baseline"
        assert (cfg["stage1"]["epochs"], cfg["stage2"]["epochs"], cfg["baseline"]["epochs"]) == (3, 4, 3)

    def test_resume_takes_the_runs_settings(self, canvas_file: Path, tmp_path: Path) -> None:
        out = tmp_path / "run"
        assert run(train_main, canvas_file, "--fold", 0, *TINY, "--method", "baseline", "-o", out, "-q").exit_code == 0
        res = run(train_main, canvas_file, "--fold", 0, "--fold", 1, "--resume", "-o", out, "-q",
                  "--set", "cache=off")
        assert res.exit_code == 0, res.output
        assert f"settings: the run's own ({out / 'config.json'}, preset tiny)" in res.stderr
        assert "resume: runtime settings differ from the run's: runtime.cache (auto -> off)" in res.stderr
        assert "per fold: 0: " in res.stdout and ", 1: " in res.stdout
        res = run(train_main, canvas_file, "--cv", "--resume", "-o", out, "--set", "baseline.lr=0.5")
        one_error_line(res, 2, str(out), "another configuration", "baseline.lr (0.001 -> 0.5)")

    def test_method_is_not_model(self, canvas_file: Path) -> None:
        res = run(train_main, canvas_file, "--model", "baseline", "--print-config")
        assert res.exit_code == 2 and "--model" in res.output


class TestTrainRefusals:
    """Refused or bad input: exit 2, one ``error: PATH: reason`` line, nothing written."""

    def test_data_and_folds(self, canvas_file: Path, no_folds_file: Path, tmp_path: Path) -> None:
        one_error_line(run(train_main, no_folds_file, "--cv", *TINY, "-o", tmp_path / "a"), 2,
                       str(no_folds_file), "facekit folds")
        res = run(train_main, canvas_file, "--fold", 7, *TINY, "-o", tmp_path / "b")
        one_error_line(res, 2, str(canvas_file), "fold 7 is out of range")
        other = tmp_path / "x.h5"
        other.write_bytes(b"not hdf5")
        one_error_line(run(train_main, other, "--cv", *TINY, "-o", tmp_path / "c"), 2, str(other),
                       "not an HDF5 file")
        assert not any((tmp_path / d).exists() for d in "abc") and "run directory" not in res.output

    def test_options(self, canvas_file: Path, tmp_path: Path) -> None:
        one_error_line(run(train_main, canvas_file, "--cv", "--preset", "nope"), 2, "unknown preset")
        one_error_line(run(train_main, canvas_file, "--resume", *TINY), 2, "--resume", "-o/--out")
        one_error_line(run(train_main, canvas_file, "--cv", "--fold", 1, *TINY), 2, "--cv, --fold")
        one_error_line(run(train_main, canvas_file, *TINY, "--set", "lr=1"), 2, "stage1.lr, stage2.lr, baseline.lr")
        one_error_line(run(train_main, canvas_file, *TINY, "--set", "epochs_gan=2"), 2, "stage1.epochs")
        one_error_line(run(train_main, canvas_file, "--preset", "tiny", "--epochs", "1,2,3"), 2, "--epochs 1,2,3")
        one_error_line(run(train_main, canvas_file, *TINY, "--pretrain", canvas_file, "--from-stage1", tmp_path),
                       2, "--pretrain, --from-stage1")
        res = run(train_main, canvas_file, "--jobs", 0, "-o", tmp_path / "x")
        assert res.exit_code == 2 and "--jobs" in res.output
        assert not (tmp_path / "x").exists()

    def test_pre_training(self, canvas_file: Path, tmp_path: Path) -> None:
        """The paper preset pre-trains stage 1: without --pretrain FILE it is refused unless --no-pretrain."""
        paper = ["--preset", "paper", "--fold", 0, "--device", "cpu"]
        one_error_line(run(train_main, canvas_file, *paper, "-o", tmp_path / "a"), 2,
                       "--pretrain: the paper settings pre-train stage 1", "--no-pretrain")
        one_error_line(run(train_main, canvas_file, *paper, "--pretrain", canvas_file, "--no-pretrain",
                           "-o", tmp_path / "b"), 2, "--pretrain, --no-pretrain")
        one_error_line(run(train_main, canvas_file, *TINY, "--method", "baseline", "--pretrain", canvas_file,
                           "-o", tmp_path / "c"), 2, "--pretrain", "the baseline has none")
        one_error_line(run(train_main, canvas_file, *TINY, "--epochs", "0,1", "--pretrain", canvas_file,
                           "-o", tmp_path / "d"), 2, "0 pre-training epochs")
        assert not any((tmp_path / d).exists() for d in "abcd")
        res = run(train_main, canvas_file, "--preset", "paper", "--no-pretrain", "--print-config")
        assert res.exit_code == 0 and json.loads(res.stdout)["stage1"]["pretrain"] is False
        res = run(train_main, canvas_file, *TINY, "--pretrain", canvas_file, "--print-config")
        assert json.loads(res.stdout)["stage1"]["pretrain"] is True          # --pretrain is never ignored
        res = run(train_main, canvas_file, "--preset", "paper", "--method", "baseline", "--print-config")
        assert res.exit_code == 0                                          # the baseline has no stage 1

    def test_no_pretrain_is_recorded_as_a_deviation(self, canvas_file: Path, tmp_path: Path) -> None:
        out = tmp_path / "r"
        res = run(train_main, canvas_file, "--preset", "paper", "--no-pretrain", "--fold", 0, "-o", out, "-q",
                  "--set", "image_size=16", "--set", "arch.width=0.125", "--set", "feat_dim=16",
                  "--set", "noise_dim=4", "--set", "local_width=0.25", "--set", "local_hidden=8",
                  "--set", "stage1.epochs=1", "--set", "stage2.epochs=1", "--set", "batch_size=600")
        assert res.exit_code == 0, res.output
        for name in ("config.json", "metrics.json"):
            rows = {r["field"]: r for r in json.loads((out / name).read_text())["deviations"]}
            assert rows["stage1.pretrain"]["paper"] is True and rows["stage1.pretrain"]["value"] is False
            assert "without the paper's pre-training" in rows["stage1.pretrain"]["meaning"]
            assert "data.augment" not in rows and rows["arch.image_size"]["value"] == 16

    @pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
    def test_missing_device(self, canvas_file: Path, tmp_path: Path) -> None:
        line = one_error_line(run(train_main, canvas_file, "--cv", *TINY, "--device", "cuda", "-o", tmp_path / "r"),
                              2)
        assert line == "error: --device cuda: CUDA is not available on this machine"
        assert not (tmp_path / "r").exists()

    def test_output_directory(self, canvas_file: Path, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        one_error_line(run(train_main, canvas_file, "--cv", *TINY, "-o", blocker / "run"), 2,
                       f"{blocker / 'run'}: cannot be created: {blocker} is not a directory")
        if sys.platform.startswith("linux"):                             # a read-only file system
            one_error_line(run(train_main, canvas_file, "--cv", *TINY, "-o", "/proc/degan-run"), 2,
                           "/proc/degan-run: cannot be created: /proc is not writable")
        full = tmp_path / "full"
        full.mkdir()
        (full / "keep").write_text("x")
        one_error_line(run(train_main, canvas_file, "--cv", *TINY, "-o", full), 2, "not empty", "--resume")


class TestTrainFailures:
    def test_non_finite_loss_exits_1(self, canvas_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from degan.train import steps
        real = steps.discriminator_loss

        def nan_loss(*a, **kw):  # type: ignore[no-untyped-def]
            total, terms = real(*a, **kw)
            terms["d_fake"] = float("nan")
            return total * float("nan"), terms
        monkeypatch.setattr(steps, "discriminator_loss", nan_loss)
        one_error_line(run(train_main, canvas_file, "--fold", 0, *TINY, "-o", tmp_path / "r", "-q"), 1,
                       "non-finite loss in gan at epoch 1")

    def test_ctrl_c_exits_130_with_the_resume_hint(self, canvas_file: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        import degan.train

        def interrupted(*a: object, **kw: object) -> None:
            raise KeyboardInterrupt
        monkeypatch.setattr(degan.train, "run_cv", interrupted)
        line = one_error_line(run(train_main, canvas_file, "--cv", *TINY, "-o", tmp_path / "r"), 130,
                              f"{tmp_path / 'r'}: interrupted", "--resume")
        assert f"-o {tmp_path / 'r'} --resume" in line


class TestEvalCommand:
    def test_json_and_summary(self, trained: Path) -> None:
        res = run(eval_main, trained, "--json", "-q")
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["n_folds"] == 1
        res = run(eval_main, trained, "-q")
        assert res.exit_code == 0 and res.stdout.startswith("degan (tiny): ")

    def test_out_directory(self, trained: Path, tmp_path: Path) -> None:
        res = run(eval_main, trained, "--test-views", "mirror", "-o", tmp_path / "re", "-q")
        assert res.exit_code == 0, res.output
        assert (tmp_path / "re" / "metrics.json").is_file() and (tmp_path / "re" / "eval.json").is_file()
        assert not (trained / "evals" / "mirror").exists() and not (trained / "metrics_mirror.json").exists()
        if sys.platform.startswith("linux"):
            one_error_line(run(eval_main, trained, "-o", "/proc/degan-eval"), 2, "/proc is not writable")

    def test_refusals(self, tmp_path: Path, trained: Path) -> None:
        one_error_line(run(eval_main, tmp_path), 2, str(tmp_path), "config.json")
        if not torch.cuda.is_available():
            line = one_error_line(run(eval_main, trained, "--device", "cuda"), 2)
            assert line == "error: --device cuda: CUDA is not available on this machine"
        bad = run(eval_main, trained, "--geometry-weight", "1.5")
        assert bad.exit_code == 2 and "1.5" in bad.output


class TestSynthesizeCommand:
    def test_out_and_errors(self, trained: Path, tmp_path: Path) -> None:
        img = tmp_path / "face.png"
        cv2.imwrite(str(img), np.full((40, 40), 128, np.uint8))
        res = run(synthesize_main, trained, img, "--identity", 1, "-o", tmp_path / "s.png", "--aligned", "--raw")
        assert res.exit_code == 0, res.output
        assert cv2.imread(str(tmp_path / "s.png")).shape[:2] == (16, 16)
        res = run(synthesize_main, trained, img, "--identity", 1, "--identity", 0, "-o", tmp_path / "w.png",
                  "--aligned", "--raw", "--with-input")
        assert res.exit_code == 0 and cv2.imread(str(tmp_path / "w.png")).shape[:2] == (16, 48)
        res = run(synthesize_main, trained, img, "--identity", 1, "-o", tmp_path / "f.png", "--aligned")
        h, w = cv2.imread(str(tmp_path / "f.png")).shape[:2]
        assert res.exit_code == 0 and h > 96 and w > 2 * 96        # the labelled figure: input + identity
        res = run(synthesize_main, trained, img, "--identity", 1, "--out", tmp_path / "t.png", "--aligned")
        assert res.exit_code == 0 and (tmp_path / "t.png").is_file()
        one_error_line(run(synthesize_main, trained, img, "--identity", 99, "-o", tmp_path / "u.png", "--aligned"),
                       2, "out of range")
        if sys.platform.startswith("linux"):
            one_error_line(run(synthesize_main, trained, img, "--identity", 1, "-o", "/proc/x/s.png", "--aligned"),
                           2, "/proc is not writable")
        assert not (tmp_path / "u.png").exists()


class TestEntryPoints:
    def test_console_scripts_point_into_facekit_cli(self) -> None:
        from importlib.metadata import entry_points
        scripts = {e.name: e.value for e in entry_points(group="console_scripts")
                   if e.name in ("facekit", "degan-train", "degan-eval", "degan-synthesize")}
        assert scripts == {"facekit": "facekit_cli.facekit:main", "degan-train": "facekit_cli.degan:train_main",
                           "degan-eval": "facekit_cli.degan:eval_main",
                           "degan-synthesize": "facekit_cli.degan:synthesize_main"}
        assert cli.train_main is train_main

    @pytest.mark.parametrize("args", [["facekit_cli", "--help"], ["facekit_cli.degan", "train", "--help"]])
    def test_python_m(self, args: list[str], tmp_path: Path) -> None:
        res = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0 and res.stdout.startswith("Usage: python -m facekit_cli"), res.stderr


def tree(d: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``d`` with its size and modification time (to show nothing was written)."""
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def pretrained(canvas_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DE-GAN run of fold 0 pre-trained (one epoch) on the canvas file itself."""
    out = tmp_path_factory.mktemp("cli-pre") / "run"
    res = run(train_main, canvas_file, "--fold", 0, *TINY, "--pretrain", canvas_file, "--set", "pretrain_epochs=1",
              "-o", out, "-q")
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def face_png(tmp_path: Path) -> Path:
    img = tmp_path / "face.png"
    cv2.imwrite(str(img), np.full((40, 40), 128, np.uint8))
    return img


class TestUnsafeCheckpoints:
    """A checkpoint carrying a ``__reduce__`` payload (it would create a marker file) is refused by
    every command that loads one: exit 2, one line naming it, the marker never made, nothing written."""

    @staticmethod
    def poison(ck: Path, marker: Path) -> Path:
        from degan.checkpoint import load_checkpoint

        from .test_checkpoint import unsafe_checkpoint
        return unsafe_checkpoint(ck, marker, base=load_checkpoint(ck))

    @staticmethod
    def refused(res: Result, ck: Path, marker: Path) -> None:
        one_error_line(res, 2, f"{ck}: refused: holds a Python object degan never stores (io.open)")
        assert not marker.exists()

    def test_eval(self, trained: Path, tmp_path: Path) -> None:
        shutil.copytree(trained, tmp_path / "run")
        ck = self.poison(tmp_path / "run" / "fold_02" / "checkpoint.pt", tmp_path / "marker")
        before = tree(tmp_path / "run")
        self.refused(run(eval_main, tmp_path / "run", "-q"), ck, tmp_path / "marker")
        assert tree(tmp_path / "run") == before

    def test_synthesize(self, trained: Path, tmp_path: Path, face_png: Path) -> None:
        shutil.copytree(trained, tmp_path / "run")
        ck = self.poison(tmp_path / "run" / "fold_02" / "checkpoint.pt", tmp_path / "marker")
        res = run(synthesize_main, tmp_path / "run", face_png, "--identity", 1, "-o", tmp_path / "s.png", "--aligned")
        self.refused(res, ck, tmp_path / "marker")
        assert not (tmp_path / "s.png").exists()

    def test_from_stage1(self, canvas_file: Path, trained: Path, tmp_path: Path) -> None:
        shutil.copytree(trained, tmp_path / "run")
        ck = self.poison(tmp_path / "run" / "fold_02" / "checkpoint.pt", tmp_path / "marker")
        res = run(train_main, canvas_file, "--fold", 2, *TINY, "--seed", 3, "--from-stage1", tmp_path / "run",
                  "-o", tmp_path / "new", "-q")
        self.refused(res, ck, tmp_path / "marker")
        assert not (tmp_path / "new").exists()

    def test_resume(self, canvas_file: Path, trained: Path, tmp_path: Path) -> None:
        shutil.copytree(trained, tmp_path / "run")
        ck = self.poison(tmp_path / "run" / "fold_02" / "checkpoint.pt", tmp_path / "marker")
        before = tree(tmp_path / "run")
        self.refused(run(train_main, canvas_file, "--fold", 2, "-o", tmp_path / "run", "--resume", "-q"), ck,
                     tmp_path / "marker")
        assert tree(tmp_path / "run") == before

    def test_pretrain_reuse(self, canvas_file: Path, pretrained: Path, tmp_path: Path) -> None:
        shutil.copytree(pretrained, tmp_path / "run")
        ck = self.poison(tmp_path / "run" / "pretrain.pt", tmp_path / "marker")
        before = tree(tmp_path / "run")
        res = run(train_main, canvas_file, "--fold", 0, "--pretrain", canvas_file, "-o", tmp_path / "run", "--resume",
                  "-q")
        self.refused(res, ck, tmp_path / "marker")
        assert tree(tmp_path / "run") == before


class TestDataBinding:
    """Every use of a run's checkpoints with other data is refused in one line naming both files."""

    @pytest.fixture
    def refolded(self, canvas_file: Path, tmp_path: Path) -> Path:
        """The canvas file with its folds made again (another subject -> fold map, same k)."""
        from .conftest import add_folds, copy_file
        return add_folds(copy_file(canvas_file, tmp_path / "data" / "refolded.h5"), 3, shift=1)

    def test_resume_with_refolded_data(self, canvas_file: Path, trained: Path, refolded: Path,
                                       tmp_path: Path) -> None:
        shutil.copytree(trained, tmp_path / "run")
        before = tree(tmp_path / "run")
        line = one_error_line(run(train_main, refolded, "--fold", 2, "-o", tmp_path / "run", "--resume", "-q"), 2)
        assert line.startswith(f"error: {tmp_path / 'run'}: --resume: {refolded.resolve()} is not the data it was "
                               f"trained on ({canvas_file.resolve()}): folds differ (subject->fold sha ")
        assert tree(tmp_path / "run") == before

    def test_from_stage1_with_refolded_data(self, trained: Path, refolded: Path, tmp_path: Path) -> None:
        res = run(train_main, refolded, "--fold", 2, *TINY, "--seed", 3, "--from-stage1", trained,
                  "-o", tmp_path / "new", "-q")
        one_error_line(res, 2, f"{trained / 'fold_02' / 'checkpoint.pt'}: {refolded.resolve()} is not the data it "
                               "was trained on", "folds differ")
        assert not (tmp_path / "new").exists()

    def test_pretrain_reuse_with_another_file(self, canvas_file: Path, pretrained: Path, refolded: Path,
                                              tmp_path: Path) -> None:
        from .conftest import make_file
        other = make_file(tmp_path / "other.h5", label_names=["x", "y", "z"])
        shutil.copytree(pretrained, tmp_path / "run")
        before = tree(tmp_path / "run")
        res = run(train_main, canvas_file, "--fold", 0, "--pretrain", other, "-o", tmp_path / "run", "--resume", "-q")
        one_error_line(res, 2, f"--resume: --pretrain {other.resolve()} is not the data it was pre-trained on "
                               f"({canvas_file.resolve()})", "label names differ")
        assert tree(tmp_path / "run") == before

    def test_eval_with_other_data(self, trained: Path, canvas_file: Path, refolded: Path, tmp_path: Path) -> None:
        from .conftest import copy_file, make_file
        fewer = make_file(tmp_path / "fewer.h5", n_classes=2)
        shutil.copytree(trained, tmp_path / "run")
        before = tree(tmp_path / "run")
        one_error_line(run(eval_main, tmp_path / "run", "--data", refolded, "-q"), 2,
                       f"{tmp_path / 'run'}: {refolded.resolve()} is not the data it was trained on", "folds differ")
        one_error_line(run(eval_main, tmp_path / "run", "--data", fewer, "-q"), 2, "label names differ")
        assert tree(tmp_path / "run") == before
        copy = copy_file(canvas_file, tmp_path / "copy" / "same.h5")
        res = run(eval_main, tmp_path / "run", "--data", copy, "--name", "on-a-copy", "-q", "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["folds"] == json.loads((trained / "metrics.json").read_text())["folds"]
        assert (tmp_path / "run" / "evals" / "on-a-copy" / "metrics.json").is_file()

    def test_run_without_fingerprint_warns_in_one_line(self, canvas_file: Path, trained: Path,
                                                       tmp_path: Path) -> None:
        from degan.checkpoint import load_checkpoint, save_checkpoint
        shutil.copytree(trained, tmp_path / "run", ignore=shutil.ignore_patterns("evals"))
        cfg_path = tmp_path / "run" / "config.json"
        record = json.loads(cfg_path.read_text())
        del record["fingerprint"]
        cfg_path.write_text(json.dumps(record))
        ck = tmp_path / "run" / "fold_02" / "checkpoint.pt"
        state = load_checkpoint(ck)
        del state["meta"]["fingerprint"]
        save_checkpoint(ck, state)
        res = run(eval_main, tmp_path / "run", "-q")
        assert res.exit_code == 0, res.output
        warn = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: ")]
        assert warn == [f"warning: {cfg_path}: records no data fingerprint (written before degan recorded one): "
                        f"{canvas_file.resolve()} is not checked against the data the run was trained on"]
        res = run(train_main, canvas_file, "--fold", 2, "-o", tmp_path / "run", "--resume", "-q")
        assert res.exit_code == 0, res.output
        assert [ln for ln in res.stderr.splitlines() if ln.startswith("warning: ")] == [
            warn[0] + "; it is recorded from now on"]
        assert json.loads(cfg_path.read_text())["fingerprint"]["path"] == str(canvas_file.resolve())


class TestSmallRefusals:
    def test_non_finite_setting(self, canvas_file: Path, tmp_path: Path) -> None:
        for item in ("stage1.lr=nan", "geometry_weight=inf", "stage2.weights=1,1,nan,1,1"):
            line = one_error_line(run(train_main, canvas_file, *TINY, "--set", item, "-o", tmp_path / "r"), 2,
                                  "must be a finite number")
            assert item.split("=")[0].split(".")[-1] in line
        bad = run(eval_main, tmp_path, "--geometry-weight", "nan")
        assert bad.exit_code == 2 and "Traceback" not in bad.output
        assert not (tmp_path / "r").exists()

    def test_checkpoint_with_a_wrongly_shaped_tensor(self, canvas_file: Path, trained: Path, tmp_path: Path,
                                                     face_png: Path) -> None:
        from degan.checkpoint import load_checkpoint, save_checkpoint
        shutil.copytree(trained, tmp_path / "run", ignore=shutil.ignore_patterns("evals"))
        ck = tmp_path / "run" / "fold_02" / "checkpoint.pt"
        state = load_checkpoint(ck)
        key = next(k for k in state["models"]["G"] if k.endswith("weight"))
        shape = tuple(state["models"]["G"][key].shape)
        state["models"]["G"][key] = torch.zeros(shape[0] + 1, *shape[1:])
        save_checkpoint(ck, state)
        before = tree(tmp_path / "run")
        expected = f"{ck}: tensor G.{key} has shape ({shape[0] + 1}, "
        one_error_line(run(eval_main, tmp_path / "run", "-q"), 2, expected)
        one_error_line(run(synthesize_main, tmp_path / "run", face_png, "--identity", 1, "-o", tmp_path / "s.png",
                           "--aligned"), 2, expected)
        one_error_line(run(train_main, canvas_file, "--fold", 2, "-o", tmp_path / "run", "--resume", "-q"), 2,
                       expected)
        one_error_line(run(train_main, canvas_file, "--fold", 2, *TINY, "--seed", 3, "--from-stage1",
                           tmp_path / "run", "-o", tmp_path / "new", "-q"), 2, expected)
        assert tree(tmp_path / "run") == before and not (tmp_path / "s.png").exists()
        assert not (tmp_path / "new").exists()
