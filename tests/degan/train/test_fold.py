from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from degan.checkpoint import load_checkpoint
from degan.config import DeganConfig
from degan.data import make_split, read_file_info
from degan.errors import CheckpointError, NonFiniteLossError
from degan.evaluate import evaluate_run
from degan.train import FoldTrainer, Interrupted, epoch_images, run_cv, steps, steps_per_epoch, train_fold


def states_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].keys() == b[k].keys()
        for name in a[k]:
            torch.testing.assert_close(a[k][name], b[k][name], rtol=0, atol=0, msg=f"{k}.{name}")


def _ckpt(run: Path, fold: int = 0) -> dict:
    return load_checkpoint(run / f"fold_{fold:02d}" / "checkpoint.pt")


class TestFoldTrainer:
    def test_a_method_per_stage(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        info = read_file_info(canvas_file)
        cfg = tiny_cfg.replace({"stage1.epochs": 2})
        trainer = FoldTrainer(cfg, info, make_split(info, 1, cfg), tmp_path / "f", progress=False)
        trainer.train_gan()
        assert (trainer.stage, trainer.epoch) == ("gan", 2)
        assert load_checkpoint(tmp_path / "f" / "checkpoint.pt")["stage"] == "gan"
        trainer.train_local()
        assert [h["stage"] for h in trainer.history] == ["gan", "gan", "local"]
        pred, metrics = trainer.evaluate()
        assert len(pred["face"]) == metrics["n_test_faces"] == 12 and metrics["fold"] == 1
        assert set(metrics["head_accuracy"]) == {"local1", "local2", "local3", "local4", "fused"}
        result = trainer.finish()
        assert result.fold == 1 and load_checkpoint(tmp_path / "f" / "checkpoint.pt")["stage"] == "done"

    def test_meta_records_method_and_geometry(self, canvas_file: Path, tmp_path: Path,
                                              tiny_cfg: DeganConfig) -> None:
        info = read_file_info(canvas_file)
        cfg = tiny_cfg.replace({"method": "baseline", "data.patch_size": 30})
        meta = FoldTrainer(cfg, info, make_split(info, 0, cfg), tmp_path, progress=False).meta()
        assert meta["method"] == "baseline" and meta["face_box"] == [4, 4, 36] and meta["patch_size"] == 30
        assert meta["fold"] == 0 and meta["n_identities"] == 4 and meta["label_names"] == info.label_names

    def test_regenerates_a_finished_folds_outputs(self, canvas_file: Path, tmp_path: Path,
                                                  tiny_cfg: DeganConfig) -> None:
        info = read_file_info(canvas_file)
        train_fold(tiny_cfg, info, 2, tmp_path / "f", progress=False)
        before = {p.name: p.read_bytes() for p in (tmp_path / "f").iterdir() if p.suffix in (".csv", ".json")}
        weights = load_checkpoint(tmp_path / "f" / "checkpoint.pt")["models"]
        for name in ("predictions.csv", "metrics.json", "synthesis.png", "curves.png"):
            (tmp_path / "f" / name).unlink()
        trainer = FoldTrainer.for_fold(tiny_cfg, info, 2, tmp_path / "f", resume=True, progress=False)
        assert trainer.stage == "done"
        trainer.finish()
        for name, data in before.items():
            if name != "metrics.json":
                assert (tmp_path / "f" / name).read_bytes() == data, name
        again = json.loads((tmp_path / "f" / "metrics.json").read_text())
        assert again["accuracy"] == json.loads(before["metrics.json"])["accuracy"]
        assert (tmp_path / "f" / "synthesis.png").is_file() and (tmp_path / "f" / "curves.png").is_file()
        states_equal(weights, load_checkpoint(tmp_path / "f" / "checkpoint.pt")["models"])

    def test_checkpoint_of_other_fold(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace({"baseline.epochs": 2}, method="baseline")
        info = read_file_info(canvas_file)
        with pytest.raises(Interrupted):
            train_fold(cfg, info, 0, tmp_path / "f", progress=False, stop_after=1)
        with pytest.raises(CheckpointError, match="fold 0, not 1"):
            train_fold(cfg, info, 1, tmp_path / "f", resume=True, progress=False)
        with pytest.raises(CheckpointError, match=r"differs in: baseline.lr \(0.001 -> 0.5\)"):
            train_fold(cfg.replace({"baseline.lr": 0.5}), info, 0, tmp_path / "f", resume=True, progress=False)

    def test_nan_loss_stops_and_keeps_checkpoint(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        cfg = tiny_cfg.replace({"stage1.epochs": 3})
        out = tmp_path / "run"
        real = steps.discriminator_loss
        calls = {"n": 0}

        def flaky(*args, **kw):  # type: ignore[no-untyped-def]
            total, terms = real(*args, **kw)
            calls["n"] += 1
            if calls["n"] > 1:                       # epoch 2 (one step per epoch here)
                terms["d_fake"] = float("nan")
                total = total * float("nan")
            return total, terms
        monkeypatch.setattr(steps, "discriminator_loss", flaky)
        with pytest.raises(NonFiniteLossError, match=r"gan at epoch 2, step 1 .*last good checkpoint") as ei:
            run_cv(canvas_file, cfg, out, folds=[0], progress=False)
        assert ei.value.step == 0 and ei.value.epoch == 1
        ck = _ckpt(out)
        assert ck["stage"] == "gan" and ck["epoch"] == 1
        assert all(torch.isfinite(v).all() for v in ck["models"]["G"].values() if v.is_floating_point())

    def test_training_forwards_are_compiled(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
        seen: list[tuple[str, object]] = []

        def fake_compile(model: torch.nn.Module, **kw: object) -> torch.nn.Module:
            seen.append((type(model).__name__, kw.get("dynamic")))
            return model
        monkeypatch.setattr(torch, "compile", fake_compile)
        run_cv(canvas_file, tiny_cfg.replace(compile=True), tmp_path / "d", folds=[0], progress=False)
        run_cv(canvas_file, tiny_cfg.replace(compile=True, method="baseline"), tmp_path / "b", folds=[0],
               progress=False)
        assert seen == [("Generator", False), ("Discriminator", False), ("LocalFusion", False),
                        ("BaselineCNN", False)]

    def test_images_per_epoch(self) -> None:
        assert epoch_images(24, 16) == 16 and epoch_images(24, 64) == 24 and epoch_images(32, 16) == 32
        assert epoch_images(25, 8, world_size=2) == 24


class TestPaperEpochs:
    """``data.augment="paper"``: one epoch = every training face x its 110 views, in
    floor(faces x 110 / batch) steps (the last incomplete batch dropped)."""

    def test_steps_per_epoch(self) -> None:
        assert steps_per_epoch(885 * 110, 150) == 649               # CK+48 fold 0 under the paper preset
        assert steps_per_epoch(24 * 110, 150) == 17 and steps_per_epoch(300, 150) == 2
        assert steps_per_epoch(100, 150) == 1 and steps_per_epoch(150, 150) == 1 and steps_per_epoch(0, 150) == 0
        assert steps_per_epoch(2640, 150, world_size=2) == 17       # 1320 per process, batches of 75
        for n, b in ((24, 16), (24, 64), (32, 16), (2640, 150)):
            assert epoch_images(n, b) == min(n, steps_per_epoch(n, b) * b)

    def test_an_epoch_is_every_face_times_110_views(self, canvas_file: Path, tmp_path: Path,
                                                    tiny_cfg: DeganConfig) -> None:
        info = read_file_info(canvas_file)
        cfg = tiny_cfg.replace({"data.augment": "paper", "train.batch_size": 150, "stage2.epochs": 1})
        split = make_split(info, 0, cfg)
        faces = len(np.unique(info.face[split.train]))
        assert faces == 24 and split.n_train_items == faces * 110
        batches: list[int] = []
        trainer = FoldTrainer(cfg, info, split, tmp_path / "f", progress=False, on_images=batches.append)
        seen: list[tuple[int, int]] = []
        real_input = trainer._input

        def spy(batch, tf, gen):  # type: ignore[no-untyped-def]
            seen.extend(zip(batch["index"].tolist(), batch["view"].tolist()))
            return real_input(batch, tf, gen)
        trainer._input = spy  # type: ignore[method-assign]
        trainer.train_gan()
        assert batches == [150] * (faces * 110 // 150) == [150] * 17            # floor(2640 / 150) steps
        assert len(seen) == len(set(seen)) == 17 * 150                          # no (face, view) twice
        assert {i for i, _ in seen} == set(split.train.tolist()) and {v for _, v in seen} == set(range(110))
        seen.clear()
        trainer.train_local()
        assert len(seen) == 17 * 150 and trainer.history[-1]["stage"] == "local"

    def test_baseline_on_paper_views(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        info = read_file_info(canvas_file)
        cfg = tiny_cfg.replace({"data.augment": "paper", "train.batch_size": 150}, method="baseline")
        batches: list[int] = []
        FoldTrainer(cfg, info, make_split(info, 2, cfg), tmp_path / "b", progress=False,
                    on_images=batches.append).train_baseline()
        assert batches == [150] * 17


class TestHistory:
    def test_no_test_accuracy_and_validation_when_asked(self, canvas_file: Path, tmp_path: Path,
                                                       tiny_cfg: DeganConfig) -> None:
        info = read_file_info(canvas_file)
        res = train_fold(tiny_cfg.replace(method="baseline"), info, 0, tmp_path / "a", progress=False)
        assert all("test_acc" not in h and "val_acc" not in h for h in res.history)
        assert "validation" not in res.metrics
        cfg = tiny_cfg.replace({"data.val_fraction": 0.5, "stage2.epochs": 2})
        res = train_fold(cfg, info, 0, tmp_path / "v", progress=False)
        local = [h for h in res.history if h["stage"] == "local"]
        assert len(local) == 2 and all(0 <= h["val_acc"] <= 100 and "test_acc" not in h for h in local)
        assert all("val_acc" not in h for h in res.history if h["stage"] == "gan")
        v = res.metrics["validation"]
        split = make_split(info, 0, cfg)
        assert v["subjects"] == split.val_subjects and len(v["subjects"]) == 2
        assert v["n_faces"] == len(split.val) == 12 and v["accuracy"] == pytest.approx(local[-1]["val_acc"])
        assert res.metrics["n_train"] == len(split.train) == 12                 # the validation subjects' faces
        saved = json.loads((tmp_path / "v" / "history.json").read_text())      # are not trained on
        assert [h.get("val_acc") for h in saved] == [h.get("val_acc") for h in res.history]
        assert (tmp_path / "v" / "curves.png").is_file()


class TestStage1Options:
    def test_reconstruction_in_history(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(recon_weight=5.0, recon_fraction=0.5)
        run_cv(canvas_file, cfg, tmp_path / "r", folds=[0], progress=False)
        hist = json.loads((tmp_path / "r" / "fold_00" / "history.json").read_text())
        gan = [h for h in hist if h["stage"] == "gan"]
        assert gan and all(np.isfinite(h["g_recon"]) for h in gan)

    def test_expression_head_in_history_and_checkpoint(self, canvas_file: Path, tmp_path: Path,
                                                       tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(expr_weight=1.0, g_steps=2, d_strong_threshold=0.0)   # also the extra G steps
        run_cv(canvas_file, cfg, tmp_path / "r", folds=[0], progress=False)
        hist = json.loads((tmp_path / "r" / "fold_00" / "history.json").read_text())
        gan = [h for h in hist if h["stage"] == "gan"]
        assert gan and all(np.isfinite(h["g_cls"]) for h in gan) and all(h["g_steps"] == 2 for h in gan)
        assert "expr_head.weight" in _ckpt(tmp_path / "r")["models"]["G"]


class TestStage2:
    def test_encoder_unchanged_by_stage2(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace({"stage1.epochs": 1, "stage2.epochs": 2})
        out = tmp_path / "run"
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, out, folds=[0], progress=False, stop_after=1)     # stage 1 done
        after_gan = _ckpt(out)
        assert after_gan["stage"] == "gan"
        run_cv(canvas_file, cfg, out, folds=[0], resume=True, progress=False)
        done = _ckpt(out)
        assert done["stage"] == "done"
        enc_before = {k: v for k, v in after_gan["models"]["G"].items() if k.startswith("encoder.")}
        enc_after = {k: v for k, v in done["models"]["G"].items() if k.startswith("encoder.")}
        states_equal({"e": enc_before}, {"e": enc_after})       # weights and BN statistics
        local_before, local_after = after_gan["models"]["local"], done["models"]["local"]
        assert any(not torch.equal(local_before[k], local_after[k]) for k in local_before)

    def test_encoder_fine_tuning_and_resume_exact(self, canvas_file: Path, tmp_path: Path,
                                                  tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace({"stage1.epochs": 1, "stage2.epochs": 2, "data.val_fraction": 0.5},
                               encoder_lr_scale=0.5)
        run_cv(canvas_file, cfg.replace(encoder_lr_scale=0.0), tmp_path / "frozen", folds=[0], progress=False)
        run_cv(canvas_file, cfg, tmp_path / "full", folds=[0], progress=False, from_stage1=tmp_path / "frozen")
        with pytest.raises(CheckpointError, match="encoder_lr_scale"):     # its G_en is no longer stage 1's
            run_cv(canvas_file, cfg, tmp_path / "again", folds=[0], progress=False, from_stage1=tmp_path / "full")
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], progress=False, stop_after=2)   # in stage 2
        run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], resume=True, progress=False)
        full, frozen, cut = (_ckpt(tmp_path / d) for d in ("full", "frozen", "cut"))
        states_equal(full["models"], cut["models"])
        enc = [k for k in full["models"]["G"] if k.startswith("encoder.")]
        changed = [k for k in enc if not torch.equal(full["models"]["G"][k], frozen["models"]["G"][k])]
        assert any(k.endswith("weight") for k in changed)
        assert any(k.endswith("running_mean") for k in changed)            # BN statistics trained too
        dec = [k for k in full["models"]["G"] if k.startswith("decoder.")]
        states_equal({"d": {k: full["models"]["G"][k] for k in dec}},
                     {"d": {k: frozen["models"]["G"][k] for k in dec}})    # G_de untouched
        # the per-epoch validation scores G_en in eval mode (batch statistics would move its BN
        # statistics): the last epoch's validation accuracy is the final model's
        last = [h for h in full["history"] if h["stage"] == "local"][-1]
        assert last["val_acc"] == pytest.approx(full["metrics"]["validation"]["accuracy"])
        # the saved, fine-tuned encoder is what degan-eval scores: re-evaluation reproduces the run
        again = evaluate_run(tmp_path / "full")
        assert again["folds"] == json.loads((tmp_path / "full" / "metrics.json").read_text())["folds"]

    def test_synthesised_images_with_fine_tuning(self, canvas_file: Path, tmp_path: Path,
                                                 tiny_cfg: DeganConfig) -> None:
        run_cv(canvas_file, tiny_cfg, tmp_path / "frozen", folds=[0], progress=False)
        tuned = tiny_cfg.replace(encoder_lr_scale=0.5, synth_fraction=0.5)
        run_cv(canvas_file, tuned, tmp_path / "syn", folds=[0], progress=False, from_stage1=tmp_path / "frozen")
        a, b = _ckpt(tmp_path / "frozen"), _ckpt(tmp_path / "syn")
        assert b["stage"] == "done"
        assert any(not torch.equal(a["models"]["G"][k], b["models"]["G"][k]) for k in a["models"]["G"]
                   if k.startswith("encoder.") and k.endswith("weight"))

    def test_synthesised_images_leave_g_unchanged(self, canvas_file: Path, tmp_path: Path,
                                                  tiny_cfg: DeganConfig) -> None:
        run_cv(canvas_file, tiny_cfg, tmp_path / "full", folds=[0], progress=False)
        run_cv(canvas_file, tiny_cfg.replace(synth_fraction=0.5), tmp_path / "syn", folds=[0], progress=False,
               from_stage1=tmp_path / "full")
        full, syn = _ckpt(tmp_path / "full"), _ckpt(tmp_path / "syn")
        states_equal({k: full["models"][k] for k in ("G", "D")}, {k: syn["models"][k] for k in ("G", "D")})
        assert any(not torch.equal(full["models"]["local"][k], syn["models"]["local"][k])
                   for k in full["models"]["local"])

    @pytest.mark.parametrize("method", ["baseline", "degan"])
    def test_mixup_used_and_resumes_exactly(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                            method: str) -> None:
        cfg = tiny_cfg.replace({"stage2.epochs": 2, "baseline.epochs": 2, "stage2.mixup": 0.4,
                                "baseline.mixup": 0.4}, method=method)
        run_cv(canvas_file, cfg, tmp_path / "full", folds=[0], progress=False)
        run_cv(canvas_file, cfg.replace({"stage2.mixup": 0.0, "baseline.mixup": 0.0}), tmp_path / "plain", folds=[0],
               progress=False)
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], progress=False,
                   stop_after=2 if method == "degan" else 1)        # inside stage 2 / the baseline
        run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], resume=True, progress=False)
        a, b, c = (_ckpt(tmp_path / d) for d in ("full", "cut", "plain"))
        states_equal(a["models"], b["models"])
        key = "baseline" if method == "baseline" else "local"
        assert any(not torch.equal(a["models"][key][n], c["models"][key][n]) for n in a["models"][key])


class TestFromStage1:
    def test_equals_full_run_and_changes_only_stage2(self, canvas_file: Path, tmp_path: Path,
                                                     tiny_cfg: DeganConfig) -> None:
        run_cv(canvas_file, tiny_cfg, tmp_path / "full", folds=[0], progress=False)
        full = _ckpt(tmp_path / "full")
        # same settings: exactly the full run (stage 1 reused, stage 2 retrained identically)
        run_cv(canvas_file, tiny_cfg, tmp_path / "same", folds=[0], progress=False, from_stage1=tmp_path / "full")
        same = _ckpt(tmp_path / "same")
        states_equal(full["models"], same["models"])
        assert same["metrics"]["accuracy"] == full["metrics"]["accuracy"]
        assert [h["stage"] for h in same["history"]] == [h["stage"] for h in full["history"]]
        # another stage 2 (and another stage-2 learning rate): G and D stay the source run's
        cfg2 = tiny_cfg.replace({"stage2.epochs": 2, "stage2.dropout": 0.2, "stage2.lr": 0.01}, local_hidden=24)
        run_cv(canvas_file, cfg2, tmp_path / "s2", folds=[0], progress=False, from_stage1=tmp_path / "full")
        s2 = _ckpt(tmp_path / "s2")
        states_equal({k: full["models"][k] for k in ("G", "D")}, {k: s2["models"][k] for k in ("G", "D")})
        assert s2["models"]["local"]["fused.1.weight"].shape[1] == tiny_cfg.arch.feat_dim + 4 * 24
        assert [h["stage"] for h in s2["history"]].count("local") == 2
        assert json.loads((tmp_path / "s2" / "config.json").read_text())["from_stage1"].endswith("full")

    def test_refuses_other_stage1_or_unfinished(self, canvas_file: Path, tmp_path: Path,
                                                tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace({"stage1.epochs": 2})
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], progress=False, stop_after=1)
        with pytest.raises(CheckpointError, match="not finished"):
            run_cv(canvas_file, cfg, tmp_path / "a", folds=[0], progress=False, from_stage1=tmp_path / "cut")
        run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], resume=True, progress=False)
        with pytest.raises(CheckpointError, match=r"arch.width \(0.125 -> 0.25\)"):
            run_cv(canvas_file, cfg.replace(width=0.25), tmp_path / "b", folds=[0], progress=False,
                   from_stage1=tmp_path / "cut")
        with pytest.raises(CheckpointError, match="stage1.lr"):
            run_cv(canvas_file, cfg.replace({"stage1.lr": 0.5}), tmp_path / "b", folds=[0], progress=False,
                   from_stage1=tmp_path / "cut")
        from degan.errors import RunDirError
        with pytest.raises(RunDirError, match="fold 1"):
            run_cv(canvas_file, cfg, tmp_path / "c", folds=[1], progress=False, from_stage1=tmp_path / "cut")
        with pytest.raises(RunDirError, match="--method degan"):
            run_cv(canvas_file, cfg.replace(method="baseline"), tmp_path / "d", folds=[0], progress=False,
                   from_stage1=tmp_path / "cut")
        for name in "abcd":
            assert not (tmp_path / name).exists()       # nothing written


class TestResume:
    @pytest.mark.parametrize("stop", [1, 3])          # inside stage 1; inside stage 2
    def test_resume_equals_uninterrupted(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                         stop: int) -> None:
        cfg = tiny_cfg.replace({"stage1.epochs": 2, "stage2.epochs": 2})
        run_cv(canvas_file, cfg, tmp_path / "full", folds=[1], progress=False)
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, tmp_path / "cut", folds=[1], progress=False, stop_after=stop)
        run_cv(canvas_file, cfg, tmp_path / "cut", folds=[1], resume=True, progress=False)
        a, b = _ckpt(tmp_path / "full", 1), _ckpt(tmp_path / "cut", 1)
        states_equal(a["models"], b["models"])
        assert a["metrics"]["accuracy"] == b["metrics"]["accuracy"]
        full = (tmp_path / "full" / "fold_01" / "predictions.csv").read_text()
        assert full == (tmp_path / "cut" / "fold_01" / "predictions.csv").read_text()
