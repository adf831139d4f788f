from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from click.testing import CliRunner

from cli.degan import eval_main, synthesize_main, train_main


class TestCli:
    def test_train_eval_synthesize(self, canvas_file: Path, tmp_path: Path) -> None:
        r = CliRunner()
        out = tmp_path / "run"
        res = r.invoke(train_main, [str(canvas_file), "--fold", "2", "--preset", "tiny", "--epochs", "1",
                                    "--seed", "3", "--out", str(out), "--no-progress"])
        assert res.exit_code == 0, res.output
        assert "degan (tiny)" in res.output and "per fold: 2:" in res.output
        assert "fold 2: " in res.output and "(1/1 folds done)" in res.output    # --no-progress keeps this line
        assert "img/s" not in res.output                                         # but shows no bars
        cfg = json.loads((out / "config.json").read_text())["config"]
        assert cfg["seed"] == 3 and cfg["epochs_gan"] == 1 and cfg["epochs_local"] == 1
        res = r.invoke(eval_main, [str(out), "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["n_folds"] == 1
        img = tmp_path / "face.png"
        cv2.imwrite(str(img), np.full((40, 40), 128, np.uint8))
        res = r.invoke(synthesize_main, [str(out), str(img), "--identity", "1", "-o", str(tmp_path / "s.png"),
                                         "--aligned"])
        assert res.exit_code == 0, res.output
        assert cv2.imread(str(tmp_path / "s.png")).shape[:2] == (16, 16)
        res = r.invoke(synthesize_main, [str(out), str(img), "--identity", "99", "-o", str(tmp_path / "t.png"),
                                         "--aligned"])
        assert res.exit_code == 1 and "out of range" in res.output

    def test_train_folds_in_parallel_jobs(self, canvas_file: Path, tmp_path: Path) -> None:
        out = tmp_path / "run"
        res = CliRunner().invoke(train_main, [str(canvas_file), "--cv", "--model", "baseline", "--preset", "tiny",
                                              "--jobs", "2", "--threads", "1", "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert "up to 2 folds at a time" in res.output
        for f in range(3):                               # one line per finished fold, in any order
            assert f"fold {f}: " in res.output
        assert "(1/3 folds done, about " in res.output and "min left)" in res.output      # with an ETA
        assert "(3/3 folds done)" in res.output and "per fold: 0:" in res.output
        assert json.loads((out / "metrics.json").read_text())["n_folds"] == 3
        # one fold to train: it runs in this process, which honours --threads too
        res = CliRunner().invoke(train_main, [str(canvas_file), "--fold", "1", "--model", "baseline", "--preset",
                                              "tiny", "--jobs", "2", "--threads", "1", "--out", str(tmp_path / "one"),
                                              "--no-progress"])
        assert res.exit_code == 0, res.output
        assert torch.get_num_threads() == 1
        res = CliRunner().invoke(train_main, [str(canvas_file), "--jobs", "0", "--out", str(tmp_path / "x")])
        assert res.exit_code == 2 and "--jobs" in res.output

    def test_errors_are_one_line(self, canvas_file: Path, no_folds_file: Path, tmp_path: Path) -> None:
        r = CliRunner()
        res = r.invoke(train_main, [str(no_folds_file), "--cv", "--preset", "tiny", "--out", str(tmp_path / "a")])
        assert res.exit_code == 1 and "facekit folds" in res.output and "Traceback" not in res.output
        res = r.invoke(train_main, [str(canvas_file), "--fold", "5", "--preset", "tiny", "--out", str(tmp_path / "b")])
        assert res.exit_code == 1 and "out of range" in res.output
        other = tmp_path / "x.h5"
        other.write_bytes(b"not hdf5")
        res = r.invoke(train_main, [str(other), "--cv", "--preset", "tiny", "--out", str(tmp_path / "c")])
        assert res.exit_code == 1 and "not an HDF5 file" in res.output
        res = r.invoke(train_main, [str(canvas_file), "--cv", "--preset", "nope"])
        assert res.exit_code == 1 and "unknown preset" in res.output
        res = r.invoke(train_main, [str(canvas_file), "--resume", "--preset", "tiny"])
        assert res.exit_code != 0 and "--out" in res.output
        res = r.invoke(eval_main, [str(tmp_path)])
        assert res.exit_code == 1 and "config.json" in res.output

    def test_print_config(self, canvas_file: Path) -> None:
        res = CliRunner().invoke(train_main, [str(canvas_file), "--preset", "cpu", "--set", "lr=0.5",
                                              "--print-config"])
        assert res.exit_code == 0 and json.loads(res.output)["lr"] == 0.5
