from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from degan.checkpoint import load_checkpoint, save_checkpoint
from degan.config import ConfigError, DeganConfig
from degan.data import cache as cache_mod
from degan.errors import CacheMemoryError, CheckpointError, DeviceError, FoldError, NoFoldsError, RunDirError
from degan.evaluate import evaluate_run
from degan.train import Interrupted, check_pretrain, cv, run_cv

from .test_fold import states_equal

#: the fields of the tiny preset as the flat config.json of earlier versions recorded them
FLAT_TINY_BASELINE = {
    "amp": "auto", "augment": "auto", "baseline_arch": "encoder", "batch_size": 16, "beta1": 0.5, "beta2": 0.999,
    "cache": "auto", "channels_last": False, "compile": False, "crop_jitter": True, "d_acc_momentum": 0.9,
    "d_strong_threshold": 0.9, "dropout": 0.0, "encoder_lr_scale": 0.0, "epochs_baseline": 2, "epochs_gan": 1,
    "epochs_local": 1, "feat_dim": 32, "flip": True, "fuse": "hidden", "fuse_detach": False, "g_steps": 2,
    "grid_identities": 3, "identity_code": "random", "image_size": 16, "init_std": 0.02, "label_smoothing": 0.0,
    "local_hidden": 16, "local_width": 0.25, "log_every": 1, "lr": 0.001, "lr_gan": 0.0, "lr_schedule": "constant",
    "model": "baseline", "noise_dim": 8, "num_workers": 0, "patch_size": 0, "preset": "tiny", "pretrain_epochs": 0,
    "recon_fraction": 0.5, "recon_weight": 0.0, "rotate_deg": 15.0, "scale_jitter": 0.0, "seed": 0,
    "stage2_weights": [0.7, 0.6, 0.4, 0.3, 1.0], "synth_fraction": 0.0, "test_views": "centre", "weight_decay": 0.0,
    "width": 0.125, "expr_weight": 0.0, "geometry_weight": 0.0, "geometry_c": 0.1}


class TestRunCv:
    def test_one_epoch_cv_writes_everything(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        m = run_cv(canvas_file, tiny_cfg, out, progress=False)
        assert set(m["folds"]) == {"0", "1", "2"} and np.isfinite(m["mean"]) and "std" in m
        assert len(m["per_class_recall"]) == 3 and np.array(m["confusion"]).sum() == 36
        assert m["method"] == "degan" and m["preset"] == "tiny"
        rec = json.loads((out / "config.json").read_text())
        assert rec["config"] == tiny_cfg.to_dict() and rec["folds"] == [0, 1, 2]
        for name in ("metrics.json", "confusion.png"):
            assert (out / name).is_file()
        for f in range(3):
            d = out / f"fold_{f:02d}"
            for name in ("checkpoint.pt", "metrics.json", "history.json", "curves.png", "confusion.png",
                         "synthesis.png", "predictions.csv"):
                assert (d / name).is_file(), name
            fm = json.loads((d / "metrics.json").read_text())
            assert set(fm["head_accuracy"]) == {"local1", "local2", "local3", "local4", "fused"}

    def test_baseline_on_paper_file(self, paper_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        m = run_cv(paper_file, tiny_cfg.replace(method="baseline"), tmp_path / "b", folds=[2], progress=False)
        assert list(m["folds"]) == ["2"]
        assert not (tmp_path / "b" / "fold_02" / "synthesis.png").exists()

    def test_plain_cnn_baseline(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace({"baseline.network": "cnn3"}, method="baseline")
        m = run_cv(canvas_file, cfg, tmp_path / "c", folds=[0], progress=False)
        state = load_checkpoint(tmp_path / "c" / "fold_00" / "checkpoint.pt")
        assert any(k.startswith("features.") for k in state["models"]["baseline"])     # the plain CNN's weights
        again = evaluate_run(tmp_path / "c", write=False)                             # rebuilt from the checkpoint
        assert again["folds"] == m["folds"]

    def test_resume_skips_finished_folds(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(method="baseline")
        out = tmp_path / "run"
        run_cv(canvas_file, cfg, out, folds=[0], progress=False)
        stamp = (out / "fold_00" / "checkpoint.pt").stat().st_mtime_ns
        m = run_cv(canvas_file, cfg, out, folds=[0, 1], resume=True, progress=False)
        assert (out / "fold_00" / "checkpoint.pt").stat().st_mtime_ns == stamp
        assert set(m["folds"]) == {"0", "1"}
        assert json.loads((out / "config.json").read_text())["folds"] == [0, 1]

    def test_run_progress_counts_every_training_image(self, canvas_file: Path, tmp_path: Path,
                                                      tiny_cfg: DeganConfig, monkeypatch: pytest.MonkeyPatch) -> None:
        bars: list[cv.RunProgress] = []

        class Recording(cv.RunProgress):
            def __init__(self, *a: object, **kw: object) -> None:
                super().__init__(*a, **kw)  # type: ignore[arg-type]
                bars.append(self)
        monkeypatch.setattr(cv, "RunProgress", Recording)
        cfg = tiny_cfg.replace({"stage1.epochs": 2, "train.batch_size": 8})
        run_cv(canvas_file, cfg, tmp_path / "run", folds=[0, 1], progress=True)
        (bar,) = bars
        assert bar.enabled and bar.total == bar.done == 2 * (2 + 1) * 24     # 24 training faces, 3 epochs
        bars.clear()
        run_cv(canvas_file, cfg.replace(method="baseline"), tmp_path / "par", progress=True, jobs=2,
               threads_per_job=1)
        assert bars[0].total == bars[0].done == 3 * 1 * 24                   # reported by the worker processes


class TestResumeSettings:
    def test_other_settings_refused_with_both_values(self, canvas_file: Path, tmp_path: Path,
                                                     tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        run_cv(canvas_file, tiny_cfg.replace(method="baseline"), out, folds=[0], progress=False)
        with pytest.raises(RunDirError, match=r"another configuration \(differs in: baseline.lr \(0.001 -> 0.5\)"):
            run_cv(canvas_file, tiny_cfg.replace({"baseline.lr": 0.5}, method="baseline"), out, folds=[0],
                   resume=True, progress=False)
        with pytest.raises(RunDirError, match="eval.test_views"):        # re-evaluation is degan-eval's
            run_cv(canvas_file, tiny_cfg.replace({"eval.test_views": "all"}, method="baseline"), out, folds=[0],
                   resume=True, progress=False)

    def test_unread_sections_do_not_block_resume(self, canvas_file: Path, tmp_path: Path,
                                                 tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        base = tiny_cfg.replace(method="baseline")
        run_cv(canvas_file, base, out, folds=[0], progress=False)
        m = run_cv(canvas_file, base.replace(local_width=0.5, recon_weight=3.0), out, folds=[0], resume=True,
                   progress=False)            # stage-2 / stage-1 settings: unused by the baseline
        assert list(m["folds"]) == ["0"]
        with pytest.raises(RunDirError, match="arch.image_size"):
            run_cv(canvas_file, base.replace(image_size=32), out, folds=[0], resume=True, progress=False)

    def test_runtime_may_differ_and_is_said(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                            capsys: pytest.CaptureFixture[str]) -> None:
        cfg = tiny_cfg.replace({"baseline.epochs": 2}, method="baseline")
        out = tmp_path / "run"
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, out, folds=[0], progress=False, stop_after=1)
        capsys.readouterr()
        run_cv(canvas_file, cfg.replace(cache="off", log_every=5), out, folds=[0], resume=True, progress=False,
               fold_lines=True)
        err = capsys.readouterr().err
        assert "resume: runtime settings differ from the run's: runtime.cache (auto -> off), " \
               "runtime.log_every (1 -> 5)" in err
        assert json.loads((out / "config.json").read_text())["config"]["runtime"]["cache"] == "off"

    def test_other_thread_count_is_said(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                        capsys: pytest.CaptureFixture[str]) -> None:
        cfg = tiny_cfg.replace({"baseline.epochs": 2}, method="baseline")
        out = tmp_path / "run"
        torch.set_num_threads(2)
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, out, folds=[0], progress=False, stop_after=1)
        capsys.readouterr()
        torch.set_num_threads(1)
        run_cv(canvas_file, cfg, out, folds=[0], resume=True, progress=False, fold_lines=True)
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("resume:")]
        assert lines == ["resume: threads per process 2 -> 1 (results may differ from an uninterrupted run's)"]
        rec = json.loads((out / "config.json").read_text())
        assert rec["threads"] == 1 and load_checkpoint(out / "fold_00" / "checkpoint.pt")["meta"]["threads"] == 1

    def test_flat_config_of_earlier_versions_resumes(self, canvas_file: Path, tmp_path: Path,
                                                     tiny_cfg: DeganConfig) -> None:
        """A run recorded with the flat configuration (and before ``mixup`` and ``local_depth``
        existed) resumes; changing what it recorded is refused."""
        cfg = tiny_cfg.replace({"baseline.epochs": 2}, method="baseline")
        assert DeganConfig.from_dict(FLAT_TINY_BASELINE) == cfg
        out = tmp_path / "run"
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, out, folds=[0], progress=False, stop_after=1)
        ck = out / "fold_00" / "checkpoint.pt"
        state = load_checkpoint(ck)
        state["config"] = dict(FLAT_TINY_BASELINE)
        state["meta"]["model"] = state["meta"].pop("method")
        save_checkpoint(ck, state)
        rec = json.loads((out / "config.json").read_text())
        rec["config"] = dict(FLAT_TINY_BASELINE)
        (out / "config.json").write_text(json.dumps(rec))
        with pytest.raises(RunDirError, match=r"differs in: baseline.mixup \(0 -> 0.3\)"):
            run_cv(canvas_file, cfg.replace({"baseline.mixup": 0.3}), out, folds=[0], resume=True, progress=False)
        m = run_cv(canvas_file, cfg, out, folds=[0], resume=True, progress=False)
        assert list(m["folds"]) == ["0"] and load_checkpoint(ck)["stage"] == "done"
        assert evaluate_run(out, write=False)["folds"] == m["folds"]

    def test_existing_run_dir_needs_resume(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        out.mkdir()
        (out / "keep.txt").write_text("precious")
        with pytest.raises(RunDirError, match="--resume"):
            run_cv(canvas_file, tiny_cfg, out, progress=False)
        with pytest.raises(RunDirError, match="nothing to resume"):
            run_cv(canvas_file, tiny_cfg, out, resume=True, progress=False)
        assert (out / "keep.txt").read_text() == "precious" and len(list(out.iterdir())) == 1


class TestBadInput:
    """Everything refused is refused before the run directory exists."""

    def test_no_folds(self, no_folds_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        with pytest.raises(NoFoldsError, match="facekit folds"):
            run_cv(no_folds_file, tiny_cfg, tmp_path / "run", progress=False)
        assert not (tmp_path / "run").exists()

    def test_fold_out_of_range(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        with pytest.raises(FoldError, match="0..2"):
            run_cv(canvas_file, tiny_cfg, tmp_path / "run", folds=[7], progress=False)
        assert not (tmp_path / "run").exists()

    @pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
    def test_missing_device(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        with pytest.raises(DeviceError, match="--device cuda: CUDA is not available on this machine"):
            run_cv(canvas_file, tiny_cfg, tmp_path / "run", device="cuda", progress=False)
        assert not (tmp_path / "run").exists()

    def test_unwritable_run_dir(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        with pytest.raises(RunDirError, match="is not a directory"):
            run_cv(canvas_file, tiny_cfg, blocker / "run", progress=False)
        if sys.platform.startswith("linux"):
            with pytest.raises(RunDirError, match="not writable"):
                run_cv(canvas_file, tiny_cfg, Path("/proc/degan-run"), progress=False)

    def test_cache_that_cannot_fit(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(cache_mod, "available_memory", lambda: 1 << 20)
        cache_mod.clear_cache()
        with pytest.raises(CacheMemoryError, match="cache=off"):
            run_cv(canvas_file, tiny_cfg.replace(cache="on"), tmp_path / "run", progress=False)
        assert not (tmp_path / "run").exists()

    def test_corrupt_checkpoint(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(method="baseline")
        out = tmp_path / "run"
        run_cv(canvas_file, cfg, out, folds=[0], progress=False)
        ck = out / "fold_00" / "checkpoint.pt"
        ck.write_bytes(ck.read_bytes()[:200])
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            run_cv(canvas_file, cfg, out, folds=[0], resume=True, progress=False)
        assert ck.stat().st_size == 200           # left for the user to inspect, not overwritten


class TestCheckPretrain:
    def test_refusals(self, tiny_cfg: DeganConfig) -> None:
        paper = tiny_cfg.replace(pretrain=True)
        with pytest.raises(ConfigError, match="give --pretrain FILE, or --no-pretrain"):
            check_pretrain(paper, None)
        with pytest.raises(ConfigError, match="stage1.pretrain is off"):
            check_pretrain(tiny_cfg, "bu4dfe.h5")
        with pytest.raises(ConfigError, match="the baseline has none"):
            check_pretrain(paper.replace(method="baseline"), "bu4dfe.h5")
        with pytest.raises(ConfigError, match="0 pre-training epochs"):
            check_pretrain(paper.replace({"stage1.epochs": 0}), "bu4dfe.h5")

    def test_accepted(self, tiny_cfg: DeganConfig) -> None:
        paper = tiny_cfg.replace(pretrain=True)
        check_pretrain(paper, "bu4dfe.h5")
        check_pretrain(paper, None, from_stage1="runs/x")       # stage 1 comes from a run that was checked
        check_pretrain(tiny_cfg, None)
        check_pretrain(paper.replace(method="baseline"), None)  # the baseline reads no stage-1 field

    def test_refused_before_writing(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        with pytest.raises(ConfigError, match="--pretrain"):
            run_cv(canvas_file, tiny_cfg.replace(pretrain=True), tmp_path / "r", folds=[0], progress=False)
        assert not (tmp_path / "r").exists()


class TestRunRecords:
    def test_deviations_and_validation(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        from degan.deviations import deviations
        cfg = tiny_cfg.replace({"data.val_fraction": 0.5}, method="baseline")
        m = run_cv(canvas_file, cfg, tmp_path / "r", folds=[0, 1], progress=False)
        rec = json.loads((tmp_path / "r" / "config.json").read_text())
        expected = [d.to_dict() for d in deviations(cfg)]
        assert rec["deviations"] == expected == m["deviations"]
        assert {d["field"] for d in expected} >= {"data.val_fraction", "arch.image_size", "data.augment"}
        assert not {"stage1.pretrain", "runtime.log_every", "train.seed"} & {d["field"] for d in expected}
        folds = [json.loads((tmp_path / "r" / f"fold_0{f}" / "metrics.json").read_text()) for f in (0, 1)]
        assert m["validation_mean"] == pytest.approx(np.mean([f["validation"]["accuracy"] for f in folds]))
        assert all(len(f["validation"]["subjects"]) == 2 for f in folds)


class TestParallelFolds:
    """``jobs`` > 1: folds in their own processes give the sequential run's results."""

    def test_equals_sequential_at_the_same_thread_count(self, canvas_file: Path, tmp_path: Path,
                                                        tiny_cfg: DeganConfig) -> None:
        torch.set_num_threads(1)
        seq = run_cv(canvas_file, tiny_cfg, tmp_path / "seq", progress=False)
        par = run_cv(canvas_file, tiny_cfg, tmp_path / "par", progress=False, jobs=2, threads_per_job=1)
        assert par["folds"] == seq["folds"] and par["confusion"] == seq["confusion"]
        assert list(par["fold_seconds"]) == ["0", "1", "2"]
        for f in range(3):
            a = load_checkpoint(tmp_path / "seq" / f"fold_{f:02d}" / "checkpoint.pt")
            b = load_checkpoint(tmp_path / "par" / f"fold_{f:02d}" / "checkpoint.pt")
            states_equal(a["models"], b["models"])
            pa = (tmp_path / "seq" / f"fold_{f:02d}" / "predictions.csv").read_text()
            assert pa == (tmp_path / "par" / f"fold_{f:02d}" / "predictions.csv").read_text()
        assert json.loads((tmp_path / "par" / "metrics.json").read_text())["n_folds"] == 3

    def test_interrupted_then_resumed_equals_uninterrupted(self, canvas_file: Path, tmp_path: Path,
                                                           tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace({"baseline.epochs": 2}, method="baseline")
        full = run_cv(canvas_file, cfg, tmp_path / "full", folds=[0, 1], progress=False, jobs=2, threads_per_job=1)
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0, 1], progress=False, stop_after=1, jobs=2,
                   threads_per_job=1)
        assert not (tmp_path / "cut" / "metrics.json").exists()    # no fold finished
        # the first fold to stop ends the run: the other is terminated wherever it is, before or
        # after its epoch-1 checkpoint (written atomically: there is no partial file)
        cks = [tmp_path / "cut" / f"fold_{f:02d}" / "checkpoint.pt" for f in (0, 1)]
        epochs = [load_checkpoint(ck)["epoch"] if ck.exists() else 0 for ck in cks]
        assert 1 in epochs and set(epochs) <= {0, 1}
        res = run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0, 1], resume=True, progress=False, jobs=2,
                     threads_per_job=1)
        assert res["folds"] == full["folds"]
        for f in (0, 1):
            states_equal(load_checkpoint(tmp_path / "full" / f"fold_{f:02d}" / "checkpoint.pt")["models"],
                         load_checkpoint(tmp_path / "cut" / f"fold_{f:02d}" / "checkpoint.pt")["models"])

    def test_worker_passes_the_job_count(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
        seen: dict[str, object] = {}

        class Done:
            metrics = {"accuracy": 1.0}

        def fake_train_fold(*a: object, **k: object) -> Done:
            seen.update(k, share=cache_mod.cache_share())
            return Done()

        monkeypatch.setattr(cache_mod, "_JOBS", [1])
        monkeypatch.setattr(cv, "train_fold", fake_train_fold)
        cv._fold_job(str(canvas_file), tiny_cfg, 0, str(tmp_path / "f"), False, None, None, 1, "cpu",
                     False, None, 2, 1, bar_position=1)
        assert seen["share"] == 2 and seen["bar_position"] == 2   # the fold's cache budget is halved; row 2

    def test_failing_fold_raises_its_error(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(method="baseline")
        out = tmp_path / "run"
        run_cv(canvas_file, cfg, out, folds=[1], progress=False)
        (out / "fold_01" / "checkpoint.pt").write_bytes(b"not a checkpoint")
        with pytest.raises(CheckpointError, match="fold_01"):
            run_cv(canvas_file, cfg, out, folds=[0, 1], resume=True, progress=False, jobs=2, threads_per_job=1)
        assert (out / "fold_01" / "checkpoint.pt").read_bytes() == b"not a checkpoint"

    def test_time_left_from_mean_fold_time_and_folds_at_once(self, canvas_file: Path, tmp_path: Path,
                                                            tiny_cfg: DeganConfig,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
        lines: list[tuple[int, float, float]] = []
        monkeypatch.setattr(cv, "_report_fold",
                            lambda fold, m, n_done, n_folds, eta: lines.append((n_done, m["seconds"], eta)))
        cfg = tiny_cfg.replace(method="baseline")
        run_cv(canvas_file, cfg, tmp_path / "seq", progress=True)
        (_, s0, e0), (_, s1, e1), (_, _, e2) = lines
        assert e0 == pytest.approx(2 * s0) and e1 == pytest.approx((s0 + s1) / 2) and e2 == 0
        lines.clear()
        run_cv(canvas_file, cfg, tmp_path / "par", progress=True, jobs=2, threads_per_job=1)
        (_, s0, e0), (_, s1, e1), (_, _, e2) = lines
        assert e0 == pytest.approx(s0)                      # 2 folds left, 2 at a time
        assert e1 == pytest.approx((s0 + s1) / 2) and e2 == 0

    def test_fold_lines_independent_of_progress_bars(self, canvas_file: Path, tmp_path: Path,
                                                    tiny_cfg: DeganConfig, monkeypatch: pytest.MonkeyPatch) -> None:
        folds: list[int] = []
        monkeypatch.setattr(cv, "_report_fold", lambda fold, *_: folds.append(fold))
        cfg = tiny_cfg.replace(method="baseline")
        run_cv(canvas_file, cfg, tmp_path / "quiet", folds=[0], progress=False)         # library default: silent
        run_cv(canvas_file, cfg, tmp_path / "bars", folds=[0], progress=True, fold_lines=False)
        assert folds == []
        run_cv(canvas_file, cfg, tmp_path / "lines", folds=[0, 1], progress=False, fold_lines=True)
        assert folds == [0, 1]

    def test_refused_under_torchrun_and_bad_counts(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        with pytest.raises(ConfigError, match=">= 1"):
            run_cv(canvas_file, tiny_cfg, tmp_path / "a", progress=False, jobs=0)
        with pytest.raises(ConfigError, match=">= 1"):
            run_cv(canvas_file, tiny_cfg, tmp_path / "a", progress=False, jobs=2, threads_per_job=0)
        monkeypatch.setattr(cv.dist_, "setup", lambda device=None: cv.dist_.DistInfo(0, 2, 0))
        with pytest.raises(ConfigError, match="torchrun"):
            run_cv(canvas_file, tiny_cfg, tmp_path / "a", progress=False, jobs=2)
        assert not (tmp_path / "a").exists()


class TestDataBinding:
    """config.json and every checkpoint record the data's fingerprint; resume, --from-stage1 and the
    reuse of pretrain.pt refuse other data (before anything is written)."""

    def test_recorded_in_config_and_checkpoints(self, canvas_file: Path, tmp_path: Path,
                                                tiny_cfg: DeganConfig) -> None:
        from degan.data.fingerprint import data_fingerprint
        torch.set_num_threads(2)
        out = tmp_path / "run"
        run_cv(canvas_file, tiny_cfg.replace({"stage1.pretrain": True}, pretrain_epochs=1), out, folds=[0], pretrain=canvas_file,
               progress=False)
        fp = data_fingerprint(canvas_file).to_dict()
        rec = json.loads((out / "config.json").read_text())
        assert rec["fingerprint"] == fp and rec["pretrain_fingerprint"] == fp
        assert (rec["threads"], rec["jobs"], rec["device"]) == (2, 1, "cpu")
        for ck in (out / "fold_00" / "checkpoint.pt", out / "pretrain.pt"):
            meta = load_checkpoint(ck)["meta"]
            assert meta["fingerprint"] == fp and meta["threads"] == 2 and meta["device"] == "cpu"

    def test_resume_with_other_data_refused(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        from ..conftest import add_folds, copy_file
        cfg = tiny_cfg.replace({"baseline.epochs": 2}, method="baseline")
        out = tmp_path / "run"
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, out, folds=[0], progress=False, stop_after=1)
        refolded = add_folds(copy_file(canvas_file, tmp_path / "d" / "refolded.h5"), 3, shift=1)
        before = (out / "config.json").read_bytes()
        with pytest.raises(RunDirError, match=rf"^{out}: --resume: .*refolded.h5 is not the data it was trained on "
                                              r"\(.*faces.h5\): folds differ \(subject->fold sha \w{8} recorded"):
            run_cv(refolded, cfg, out, folds=[0], resume=True, progress=False)
        rec = json.loads(before)                        # config.json agreeing, the checkpoint still refuses
        rec["fingerprint"] = json.loads(json.dumps(rec["fingerprint"]).replace(str(canvas_file.resolve()), "x"))
        from degan.data.fingerprint import data_fingerprint
        rec["fingerprint"]["folds"] = data_fingerprint(refolded).folds
        (out / "config.json").write_text(json.dumps(rec))
        with pytest.raises(CheckpointError, match=r"fold_00/checkpoint.pt: .* folds differ"):
            run_cv(refolded, cfg, out, folds=[0], resume=True, progress=False)
        assert load_checkpoint(out / "fold_00" / "checkpoint.pt")["epoch"] == 1
        copy = copy_file(canvas_file, tmp_path / "e" / "copy.h5")          # a copy is the same data
        (out / "config.json").write_bytes(before)
        assert list(run_cv(copy, cfg, out, folds=[0], resume=True, progress=False)["folds"]) == ["0"]

    def test_pretrain_checkpoint_of_another_file_refused(self, canvas_file: Path, tmp_path: Path,
                                                        tiny_cfg: DeganConfig) -> None:
        from ..conftest import make_file
        cfg = tiny_cfg.replace({"stage1.pretrain": True}, pretrain_epochs=1)
        out = tmp_path / "run"
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, out, folds=[0], pretrain=canvas_file, progress=False, stop_after=2)
        other = make_file(tmp_path / "other.h5", label_names=["x", "y", "z"])
        with pytest.raises(RunDirError, match=r"--resume: --pretrain .*other.h5 is not the data it was pre-trained "
                                              r"on \(.*faces.h5\): file content differs .* label names differ"):
            run_cv(canvas_file, cfg, out, folds=[0], pretrain=other, resume=True, progress=False)
        rec = json.loads((out / "config.json").read_text())
        del rec["pretrain_fingerprint"]                 # the checkpoint's own record is checked as well
        (out / "config.json").write_text(json.dumps(rec))
        with pytest.raises(CheckpointError, match=r"pretrain.pt: .*other.h5 is not the data it was pre-trained on"):
            run_cv(canvas_file, cfg, out, folds=[0], pretrain=other, resume=True, progress=False)
        with pytest.raises(RunDirError, match=r"--resume: the run was pre-trained on .*faces.h5; give --pretrain"):
            run_cv(canvas_file, cfg, out, folds=[0], resume=True, progress=False)

    def test_from_stage1_of_other_data_refused(self, canvas_file: Path, tmp_path: Path,
                                               tiny_cfg: DeganConfig) -> None:
        from ..conftest import add_folds, copy_file
        run_cv(canvas_file, tiny_cfg, tmp_path / "s1", folds=[1], progress=False)
        refolded = add_folds(copy_file(canvas_file, tmp_path / "d" / "refolded.h5"), 3, shift=2)
        with pytest.raises(CheckpointError, match=r"s1/fold_01/checkpoint.pt: .*refolded.h5 is not the data it was "
                                                  r"trained on .*folds differ"):
            run_cv(refolded, tiny_cfg, tmp_path / "s2", folds=[1], from_stage1=tmp_path / "s1", progress=False)
        assert not (tmp_path / "s2").exists()

    def test_run_from_before_fingerprints_resumes_with_a_warning(self, canvas_file: Path, tmp_path: Path,
                                                                 tiny_cfg: DeganConfig) -> None:
        from degan.errors import DataNotCheckedWarning
        cfg = tiny_cfg.replace({"baseline.epochs": 2}, method="baseline")
        out = tmp_path / "run"
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, out, folds=[0], progress=False, stop_after=1)
        rec = json.loads((out / "config.json").read_text())
        for key in ("fingerprint", "pretrain_fingerprint", "threads", "jobs"):
            del rec[key]
        (out / "config.json").write_text(json.dumps(rec))
        ck = out / "fold_00" / "checkpoint.pt"
        state = load_checkpoint(ck)
        for key in ("fingerprint", "threads", "device"):
            del state["meta"][key]
        save_checkpoint(ck, state)
        with pytest.warns(DataNotCheckedWarning, match="records no data fingerprint"):
            m = run_cv(canvas_file, cfg, out, folds=[0], resume=True, progress=False)
        assert list(m["folds"]) == ["0"] and "fingerprint" in json.loads((out / "config.json").read_text())


class TestOutputsSurviveAKill:
    """A finished fold whose outputs are missing (a kill between its final checkpoint and its
    outputs, or a file deleted) gets them back from its checkpoint on --resume."""

    def test_each_missing_output_is_written_again(self, canvas_file: Path, tmp_path: Path,
                                                  tiny_cfg: DeganConfig, capsys: pytest.CaptureFixture[str]) -> None:
        from degan.train.fold import FOLD_OUTPUTS
        out = tmp_path / "run"
        run_cv(canvas_file, tiny_cfg, out, folds=[1], progress=False)
        d = out / "fold_01"
        original = {n: (d / n).read_bytes() for n in FOLD_OUTPUTS}
        ck = (d / "checkpoint.pt").read_bytes()
        for name in FOLD_OUTPUTS:
            (d / name).unlink()
            capsys.readouterr()
            run_cv(canvas_file, tiny_cfg, out, folds=[1], resume=True, progress=False, fold_lines=True)
            assert (d / name).read_bytes() == original[name], name
            assert f"fold 1: wrote the missing {name} from its checkpoint" in capsys.readouterr().err
        assert (d / "checkpoint.pt").read_bytes() == ck                     # the fold was not trained again
        for name in FOLD_OUTPUTS:
            (d / name).unlink()
        run_cv(canvas_file, tiny_cfg, out, folds=[1], resume=True, progress=False)
        assert {n: (d / n).read_bytes() for n in FOLD_OUTPUTS} == original

    def test_a_real_kill_after_the_final_checkpoint(self, canvas_file: Path, tmp_path: Path) -> None:
        """The process is killed (SIGKILL) between the fold's final checkpoint and its outputs;
        --resume writes them, the same bytes as an uninterrupted run's."""
        import signal
        import subprocess
        if not hasattr(signal, "SIGKILL"):
            pytest.skip("no SIGKILL here")
        args = [str(canvas_file), "--fold", "0", "--preset", "tiny", "--epochs", "1", "--threads", "2", "-q"]
        script = ("import os, signal, sys\n"
                  "from degan.train import FoldTrainer\n"
                  "FoldTrainer.after_final_checkpoint = lambda path: os.kill(os.getpid(), signal.SIGKILL)\n"
                  "from facekit_cli.degan import train_main\n"
                  "train_main(sys.argv[1:])\n")
        killed = subprocess.run([sys.executable, "-c", script, *args, "-o", str(tmp_path / "cut")],
                                capture_output=True, text=True, timeout=600)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        d = tmp_path / "cut" / "fold_00"
        assert load_checkpoint(d / "checkpoint.pt")["stage"] == "done"
        assert not any((d / n).exists() for n in ("predictions.csv", "metrics.json", "synthesis.png"))
        resumed = subprocess.run([sys.executable, "-m", "facekit_cli.degan", "train", *args, "-o", str(tmp_path / "cut"),
                                  "--resume"], capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr
        assert "fold 0: wrote the missing metrics.json, history.json, curves.png, confusion.png, predictions.csv, " \
               "synthesis.png from its checkpoint" in resumed.stderr
        full = subprocess.run([sys.executable, "-m", "facekit_cli.degan", "train", *args, "-o", str(tmp_path / "full")],
                              capture_output=True, text=True, timeout=600)
        assert full.returncode == 0, full.stderr
        for name in ("predictions.csv", "metrics.json", "history.json"):
            a, b = (tmp_path / "full" / "fold_00" / name).read_text(), (d / name).read_text()
            if name != "predictions.csv":            # wall times differ between the two runs
                a, b = (_no_times(json.loads(t)) for t in (a, b))
            assert a == b, name
        assert (d / "curves.png").is_file() and (d / "synthesis.png").is_file() and (d / "confusion.png").is_file()
        assert json.loads((tmp_path / "cut" / "metrics.json").read_text())["folds"] == \
            json.loads((tmp_path / "full" / "metrics.json").read_text())["folds"]


def _no_times(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _no_times(v) for k, v in obj.items() if k not in ("seconds", "img_per_s")}
    if isinstance(obj, list):
        return [_no_times(v) for v in obj]
    return obj


class TestLabelText:
    def test_labels_with_mathtext_and_formula_characters(self, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        """Label names with $, {, \\ and _ render in every figure; those starting with = are quoted in the CSV."""
        from degan.predict import read_predictions

        from ..conftest import make_file
        names = ["$a{$", "b_{c}\\d", "=HYPERLINK(1)"]
        data = make_file(tmp_path / "odd.h5", label_names=names)
        out = tmp_path / "run"
        m = run_cv(data, tiny_cfg, out, folds=[0], progress=False)
        assert m["label_names"] == names
        for name in ("confusion.png", "fold_00/confusion.png", "fold_00/curves.png", "fold_00/synthesis.png"):
            assert (out / name).stat().st_size > 0, name
        rows = read_predictions(out / "fold_00" / "predictions.csv")
        assert {r["label"] for r in rows} == set(names)
        assert "'=HYPERLINK(1)" in (out / "fold_00" / "predictions.csv").read_text()
