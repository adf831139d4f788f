from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from degan.checkpoint import load_checkpoint, save_checkpoint
from degan.config import ConfigError, DeganConfig
from degan.data import make_split, read_file_info
from degan.evaluate import evaluate_run
from degan.errors import CheckpointError, NoFoldsError, NonFiniteLossError, RunDirError
from degan.train import Interrupted, _classify, _cv, _gan, _loop, mixup_batch, run_cv, train_fold


def _states_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].keys() == b[k].keys()
        for name in a[k]:
            torch.testing.assert_close(a[k][name], b[k][name], rtol=0, atol=0, msg=f"{k}.{name}")


class TestCrossValidation:
    def test_one_epoch_cv_writes_everything(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        m = run_cv(canvas_file, tiny_cfg, out, progress=False)
        assert set(m["folds"]) == {"0", "1", "2"} and np.isfinite(m["mean"]) and "std" in m
        assert len(m["per_class_recall"]) == 3 and np.array(m["confusion"]).sum() == 36
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["config"] == tiny_cfg.to_dict() and cfg["folds"] == [0, 1, 2]
        for name in ("metrics.json", "confusion.png"):
            assert (out / name).is_file()
        for f in range(3):
            d = out / f"fold_{f:02d}"
            for name in ("checkpoint.pt", "metrics.json", "history.json", "curves.png", "confusion.png",
                         "synthesis.png"):
                assert (d / name).is_file(), name
            fm = json.loads((d / "metrics.json").read_text())
            assert set(fm["head_accuracy"]) == {"local1", "local2", "local3", "local4", "fused"}

    def test_baseline_on_paper_file(self, paper_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        m = run_cv(paper_file, tiny_cfg.replace(model="baseline"), tmp_path / "b", folds=[2], progress=False)
        assert list(m["folds"]) == ["2"]
        assert not (tmp_path / "b" / "fold_02" / "synthesis.png").exists()

    def test_plain_cnn_baseline(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(model="baseline", baseline_arch="cnn3")
        m = run_cv(canvas_file, cfg, tmp_path / "c", folds=[0], progress=False)
        assert list(m["folds"]) == ["0"]
        state = load_checkpoint(tmp_path / "c" / "fold_00" / "checkpoint.pt")
        assert any(k.startswith("features.") for k in state["models"]["baseline"])     # the plain CNN's weights
        again = evaluate_run(tmp_path / "c", write=False)                             # rebuilt from the checkpoint
        assert again["folds"] == m["folds"]

    def test_existing_run_dir_needs_resume(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        out.mkdir()
        (out / "keep.txt").write_text("precious")
        with pytest.raises(RunDirError, match="--resume"):
            run_cv(canvas_file, tiny_cfg, out, progress=False)
        assert (out / "keep.txt").read_text() == "precious"

    def test_resume_other_config_refused(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        run_cv(canvas_file, tiny_cfg.replace(model="baseline"), out, folds=[0], progress=False)
        with pytest.raises(RunDirError, match="another configuration"):
            run_cv(canvas_file, tiny_cfg.replace(model="baseline", lr=0.5), out, folds=[0], resume=True,
                   progress=False)


class TestGanStep:
    def test_reconstruction_option(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(recon_weight=5.0, recon_fraction=0.5, model="degan")
        run_cv(canvas_file, cfg, tmp_path / "r", folds=[0], progress=False)
        hist = json.loads((tmp_path / "r" / "fold_00" / "history.json").read_text())
        gan = [h for h in hist if h["stage"] == "gan"]
        assert all(np.isfinite(h["g_recon"]) for h in gan)

    def test_g_steps_rule(self, tiny_cfg: DeganConfig) -> None:
        from degan.models import build_degan
        from degan.train import gan_step
        from degan.train._loop import _adam
        nets = build_degan(tiny_cfg, 1, 3, 4)
        opts = {"G": _adam(nets.G.parameters(), tiny_cfg), "D": _adam(nets.D.parameters(), tiny_cfg)}
        scaler = torch.amp.GradScaler("cuda", enabled=False)
        x = torch.rand(8, 1, 16, 16) * 2 - 1
        y, ids = torch.randint(0, 3, (8,)), torch.randint(0, 4, (8,))
        args = (nets.G, nets.D, nets.D, opts, scaler, tiny_cfg, torch.device("cpu"), x, y, ids, ids,
                torch.randn(8, tiny_cfg.noise_dim))
        weak = gan_step(*args, state={"d_acc_ema": 0.0})
        strong_state = {"d_acc_ema": 10.0}                 # EMA stays above the threshold
        strong = gan_step(*args, state=strong_state)
        assert weak["g_steps"] == 1 and strong["g_steps"] == tiny_cfg.g_steps == 2
        assert all(p.requires_grad for p in nets.D.parameters())    # D unfrozen again after the G steps


    def test_expression_term_by_hand(self, tiny_cfg: DeganConfig) -> None:
        from torch.nn import functional as F
        from degan.models import build_degan
        from degan.train import gan_step
        from degan.train._loop import _adam
        cfg = tiny_cfg.replace(expr_weight=0.5)
        nets = build_degan(cfg, 1, 3, 4)
        opts = {"G": _adam(nets.G.parameters(), cfg), "D": _adam(nets.D.parameters(), cfg)}
        scaler = torch.amp.GradScaler("cuda", enabled=False)
        x = torch.rand(8, 1, 16, 16) * 2 - 1
        y, ids = torch.randint(0, 3, (8,)), torch.randint(0, 4, (8,))
        G = nets.G
        head_before = G.expr_head.weight.detach().clone()
        G.train()
        bn_state = {k: v.clone() for k, v in G.state_dict().items()}
        with torch.no_grad():                           # the term at the step's (pre-update) weights
            expected = F.cross_entropy(G.expr_head(G.encoder(x)), y).item()
        G.load_state_dict(bn_state)                     # undo that pass's BN running-statistics update
        terms = gan_step(G, nets.D, nets.D, opts, scaler, cfg, torch.device("cpu"), x, y, ids, ids,
                         torch.randn(8, cfg.noise_dim), state={"d_acc_ema": 0.0})
        assert terms["g_cls"] == pytest.approx(expected, rel=1e-5)
        assert not torch.equal(G.expr_head.weight.detach(), head_before)   # G's optimiser trains the head
        plain = build_degan(tiny_cfg, 1, 3, 4)
        opts = {"G": _adam(plain.G.parameters(), tiny_cfg), "D": _adam(plain.D.parameters(), tiny_cfg)}
        terms = gan_step(plain.G, plain.D, plain.D, opts, scaler, tiny_cfg, torch.device("cpu"), x, y, ids, ids,
                         torch.randn(8, tiny_cfg.noise_dim), state={"d_acc_ema": 0.0})
        assert "g_cls" not in terms

    def test_expression_option_in_cv(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(expr_weight=1.0, g_steps=2, d_strong_threshold=0.0)   # also the extra G steps
        run_cv(canvas_file, cfg, tmp_path / "r", folds=[0], progress=False)
        hist = json.loads((tmp_path / "r" / "fold_00" / "history.json").read_text())
        gan = [h for h in hist if h["stage"] == "gan"]
        assert gan and all(np.isfinite(h["g_cls"]) for h in gan)
        ckpt = load_checkpoint(tmp_path / "r" / "fold_00" / "checkpoint.pt", "cpu")
        assert "expr_head.weight" in ckpt["models"]["G"]


class TestLike:
    def test_strides_of_reference_and_gradient(self) -> None:
        from degan.train._loop import _like
        ref = torch.rand(4, 1, 8, 8).contiguous(memory_format=torch.channels_last)
        leaf = torch.rand(4, 8, 8, 1, requires_grad=True)
        t = leaf.permute(0, 3, 1, 2)                    # strides (64, 1, 8, 1)
        out = _like(t, ref)
        assert out.stride() == ref.stride() and torch.equal(out, t)
        out.sum().backward()
        assert leaf.grad is not None and torch.equal(leaf.grad, torch.ones_like(leaf.grad))
        same = torch.rand(4, 1, 8, 8)
        assert _like(same, ref) is same                # equal strides and dtype: no copy
        half = _like(same.to(torch.bfloat16), ref)
        assert half.dtype == torch.float32 and torch.equal(half, same.to(torch.bfloat16).float())


class TestCompileOption:
    def test_training_forwards_are_compiled(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
        seen: list[tuple[str, object]] = []

        def fake_compile(model: torch.nn.Module, **kw: object) -> torch.nn.Module:
            seen.append((type(model).__name__, kw.get("dynamic")))
            return model
        monkeypatch.setattr(torch, "compile", fake_compile)
        run_cv(canvas_file, tiny_cfg.replace(compile=True), tmp_path / "d", folds=[0], progress=False)
        run_cv(canvas_file, tiny_cfg.replace(compile=True, model="baseline"), tmp_path / "b", folds=[0],
               progress=False)
        assert seen == [("Generator", False), ("Discriminator", False), ("LocalFusion", False),
                        ("BaselineCNN", False)]


class TestResumeFields:
    def test_irrelevant_fields_do_not_block_resume(self, canvas_file: Path, tmp_path: Path,
                                                   tiny_cfg: DeganConfig) -> None:
        out = tmp_path / "run"
        base = tiny_cfg.replace(model="baseline")
        run_cv(canvas_file, base, out, folds=[0], progress=False)
        m = run_cv(canvas_file, base.replace(local_width=0.5, recon_weight=3.0, log_every=7), out, folds=[0],
                   resume=True, progress=False)            # stage-2/GAN fields: unused by the baseline
        assert list(m["folds"]) == ["0"]
        with pytest.raises(RunDirError, match="image_size"):
            run_cv(canvas_file, base.replace(image_size=32), out, folds=[0], resume=True, progress=False)


class TestStage2:
    def test_encoder_unchanged_by_stage2(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(epochs_gan=1, epochs_local=2)
        out = tmp_path / "run"
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, out, folds=[0], progress=False, stop_after=1)     # stage 1 done
        after_gan = load_checkpoint(out / "fold_00" / "checkpoint.pt")
        assert after_gan["stage"] == "gan"
        run_cv(canvas_file, cfg, out, folds=[0], resume=True, progress=False)
        done = load_checkpoint(out / "fold_00" / "checkpoint.pt")
        assert done["stage"] == "done"
        enc_before = {k: v for k, v in after_gan["models"]["G"].items() if k.startswith("encoder.")}
        enc_after = {k: v for k, v in done["models"]["G"].items() if k.startswith("encoder.")}
        _states_equal({"e": enc_before}, {"e": enc_after})       # weights and BN statistics
        local_before, local_after = after_gan["models"]["local"], done["models"]["local"]
        assert any(not torch.equal(local_before[k], local_after[k]) for k in local_before)


class TestEncoderFineTuning:
    """``encoder_lr_scale > 0``: stage 2 trains G_en too, at a scaled learning rate."""

    def test_lr_scale_per_group(self) -> None:
        a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.Adam([{"params": [a]}, {"params": [b], "lr_scale": 0.1}], lr=1.0)
        _loop._set_lr([opt], 0.5)
        assert [g["lr"] for g in opt.param_groups] == [0.5, pytest.approx(0.05)]

    def test_encoder_trained_and_resume_exact(self, canvas_file: Path, tmp_path: Path,
                                              tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(epochs_gan=1, epochs_local=2, encoder_lr_scale=0.5)
        run_cv(canvas_file, cfg.replace(encoder_lr_scale=0.0), tmp_path / "frozen", folds=[0], progress=False)
        run_cv(canvas_file, cfg, tmp_path / "full", folds=[0], progress=False, from_stage1=tmp_path / "frozen")
        with pytest.raises(CheckpointError, match="encoder_lr_scale"):     # its G_en is no longer stage 1's
            run_cv(canvas_file, cfg, tmp_path / "again", folds=[0], progress=False, from_stage1=tmp_path / "full")
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], progress=False, stop_after=2)   # in stage 2
        run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], resume=True, progress=False)
        full, frozen, cut = (load_checkpoint(tmp_path / d / "fold_00" / "checkpoint.pt")
                             for d in ("full", "frozen", "cut"))
        _states_equal(full["models"], cut["models"])
        enc = [k for k in full["models"]["G"] if k.startswith("encoder.")]
        changed = [k for k in enc if not torch.equal(full["models"]["G"][k], frozen["models"]["G"][k])]
        assert any(k.endswith("weight") for k in changed)
        assert any(k.endswith("running_mean") for k in changed)            # BN statistics trained too
        dec = [k for k in full["models"]["G"] if k.startswith("decoder.")]
        _states_equal({"d": {k: full["models"]["G"][k] for k in dec}},
                      {"d": {k: frozen["models"]["G"][k] for k in dec}})   # G_de untouched
        # the per-epoch evaluation scores G_en in eval mode (batch statistics would move its BN
        # statistics): the last epoch's test accuracy is the final model's
        last = [h for h in full["history"] if h["stage"] == "local"][-1]
        assert last["test_acc"] == pytest.approx(full["metrics"]["accuracy"])
        # the saved, fine-tuned encoder is what degan-eval scores: re-evaluation reproduces the run
        again = evaluate_run(tmp_path / "full")
        assert again["folds"] == json.loads((tmp_path / "full" / "metrics.json").read_text())["folds"]

    def test_with_synthesised_images(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(epochs_gan=1, epochs_local=1)
        run_cv(canvas_file, cfg, tmp_path / "frozen", folds=[0], progress=False)
        tuned = cfg.replace(encoder_lr_scale=0.5, synth_fraction=0.5)
        run_cv(canvas_file, tuned, tmp_path / "syn", folds=[0], progress=False, from_stage1=tmp_path / "frozen")
        a, b = (load_checkpoint(tmp_path / d / "fold_00" / "checkpoint.pt") for d in ("frozen", "syn"))
        assert b["stage"] == "done"
        assert any(not torch.equal(a["models"]["G"][k], b["models"]["G"][k]) for k in a["models"]["G"]
                   if k.startswith("encoder.") and k.endswith("weight"))

    def test_eval_mode_restores(self) -> None:
        m = torch.nn.BatchNorm1d(2)
        for was in (True, False):
            m.train(was)
            with _classify._eval_mode(m):
                assert not m.training
            assert m.training is was
        with pytest.raises(RuntimeError), _classify._eval_mode(m.train()):
            raise RuntimeError
        assert m.training

    def test_scale_validated(self, tiny_cfg: DeganConfig) -> None:
        from degan.config import ConfigError
        with pytest.raises(ConfigError, match="encoder_lr_scale"):
            tiny_cfg.replace(encoder_lr_scale=-1.0)


class TestSynthesisedStage2:
    """``synth_fraction``: stage 2 also trains on G(x, I, z) for random training identities."""

    def test_rows_replaced_by_generator_output(self) -> None:
        calls = []

        class FakeG(torch.nn.Module):
            def forward(self, x: torch.Tensor, ident: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
                calls.append((x.shape[0], ident.clone(), z.shape))
                return torch.full_like(x, -1.0)

        x = torch.rand(8, 1, 16, 16)
        torch.manual_seed(0)
        out = _classify._with_synthesised(FakeG(), x, 0.5, n_ids=3, noise_dim=5)
        assert out.shape == x.shape
        assert torch.all(out[:4] == -1) and torch.equal(out[4:], x[4:])
        (n, ident, zshape), = calls
        assert n == 4 and zshape == (4, 5) and 0 <= int(ident.min()) and int(ident.max()) < 3
        assert torch.all(_classify._with_synthesised(FakeG(), x, 1.0, 3, 5) == -1)
        state = torch.random.get_rng_state()
        assert _classify._with_synthesised(FakeG(), x, 0.0, 3, 5) is x      # no draw, no call
        assert torch.equal(state, torch.random.get_rng_state()) and len(calls) == 2

    def test_stage2_with_synthesis_leaves_g_unchanged(self, canvas_file: Path, tmp_path: Path,
                                                      tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(epochs_gan=1, epochs_local=1)
        run_cv(canvas_file, cfg, tmp_path / "full", folds=[0], progress=False)
        full = load_checkpoint(tmp_path / "full" / "fold_00" / "checkpoint.pt")
        run_cv(canvas_file, cfg.replace(synth_fraction=0.5), tmp_path / "syn", folds=[0], progress=False,
               from_stage1=tmp_path / "full")
        syn = load_checkpoint(tmp_path / "syn" / "fold_00" / "checkpoint.pt")
        _states_equal({k: full["models"][k] for k in ("G", "D")}, {k: syn["models"][k] for k in ("G", "D")})
        assert any(not torch.equal(full["models"]["local"][k], syn["models"]["local"][k])
                   for k in full["models"]["local"])

    def test_fraction_validated(self, tiny_cfg: DeganConfig) -> None:
        from degan.config import ConfigError
        with pytest.raises(ConfigError, match="synth_fraction"):
            tiny_cfg.replace(synth_fraction=1.5)


class TestFromStage1:
    def test_equals_full_run_and_changes_only_stage2(self, canvas_file: Path, tmp_path: Path,
                                                     tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(epochs_gan=1, epochs_local=1)
        run_cv(canvas_file, cfg, tmp_path / "full", folds=[0], progress=False)
        full = load_checkpoint(tmp_path / "full" / "fold_00" / "checkpoint.pt")
        # same config: exactly the full run (stage 1 reused, stage 2 retrained identically)
        run_cv(canvas_file, cfg, tmp_path / "same", folds=[0], progress=False, from_stage1=tmp_path / "full")
        same = load_checkpoint(tmp_path / "same" / "fold_00" / "checkpoint.pt")
        _states_equal(full["models"], same["models"])
        assert same["metrics"]["accuracy"] == full["metrics"]["accuracy"]
        assert [h["stage"] for h in same["history"]] == [h["stage"] for h in full["history"]]
        # another stage 2: G and D stay those of the source run, the local CNNs change shape
        cfg2 = cfg.replace(local_hidden=24, epochs_local=2, dropout=0.2)
        run_cv(canvas_file, cfg2, tmp_path / "s2", folds=[0], progress=False, from_stage1=tmp_path / "full")
        s2 = load_checkpoint(tmp_path / "s2" / "fold_00" / "checkpoint.pt")
        _states_equal({k: full["models"][k] for k in ("G", "D")}, {k: s2["models"][k] for k in ("G", "D")})
        assert s2["models"]["local"]["fused.1.weight"].shape[1] == cfg.feat_dim + 4 * 24
        assert [h["stage"] for h in s2["history"]].count("local") == 2
        assert json.loads((tmp_path / "s2" / "config.json").read_text())["from_stage1"].endswith("full")

    def test_refuses_other_stage1_or_unfinished(self, canvas_file: Path, tmp_path: Path,
                                                tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(epochs_gan=2, epochs_local=1)
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], progress=False, stop_after=1)
        with pytest.raises(CheckpointError, match="not finished"):
            run_cv(canvas_file, cfg, tmp_path / "a", folds=[0], progress=False, from_stage1=tmp_path / "cut")
        run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], resume=True, progress=False)
        with pytest.raises(CheckpointError, match="width"):
            run_cv(canvas_file, cfg.replace(width=0.25), tmp_path / "b", folds=[0], progress=False,
                   from_stage1=tmp_path / "cut")
        with pytest.raises(RunDirError, match="fold 1"):
            run_cv(canvas_file, cfg, tmp_path / "c", folds=[1], progress=False, from_stage1=tmp_path / "cut")
        for name in "abc":
            assert not (tmp_path / name).exists()       # nothing written


class TestResume:
    @pytest.mark.parametrize("stop", [1, 3])          # inside stage 1; inside stage 2
    def test_resume_equals_uninterrupted(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                         stop: int) -> None:
        cfg = tiny_cfg.replace(epochs_gan=2, epochs_local=2)
        run_cv(canvas_file, cfg, tmp_path / "full", folds=[1], progress=False)
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, tmp_path / "cut", folds=[1], progress=False, stop_after=stop)
        run_cv(canvas_file, cfg, tmp_path / "cut", folds=[1], resume=True, progress=False)
        a = load_checkpoint(tmp_path / "full" / "fold_01" / "checkpoint.pt")
        b = load_checkpoint(tmp_path / "cut" / "fold_01" / "checkpoint.pt")
        _states_equal(a["models"], b["models"])
        assert a["metrics"]["accuracy"] == b["metrics"]["accuracy"]

    def test_resume_skips_finished_folds(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(model="baseline")
        out = tmp_path / "run"
        run_cv(canvas_file, cfg, out, folds=[0], progress=False)
        stamp = (out / "fold_00" / "checkpoint.pt").stat().st_mtime_ns
        m = run_cv(canvas_file, cfg, out, folds=[0, 1], resume=True, progress=False)
        assert (out / "fold_00" / "checkpoint.pt").stat().st_mtime_ns == stamp
        assert set(m["folds"]) == {"0", "1"}


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
            _states_equal(a["models"], b["models"])
            pa = (tmp_path / "seq" / f"fold_{f:02d}" / "predictions.csv").read_text()
            assert pa == (tmp_path / "par" / f"fold_{f:02d}" / "predictions.csv").read_text()
        assert json.loads((tmp_path / "par" / "metrics.json").read_text())["n_folds"] == 3

    def test_interrupted_then_resumed_equals_uninterrupted(self, canvas_file: Path, tmp_path: Path,
                                                           tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(model="baseline", epochs_baseline=2)
        full = run_cv(canvas_file, cfg, tmp_path / "full", folds=[0, 1], progress=False, jobs=2, threads_per_job=1)
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0, 1], progress=False, stop_after=1, jobs=2,
                   threads_per_job=1)
        assert not (tmp_path / "cut" / "metrics.json").exists()    # no fold finished
        for f in (0, 1):                                           # epoch 1 of each fold is checkpointed
            assert load_checkpoint(tmp_path / "cut" / f"fold_{f:02d}" / "checkpoint.pt")["epoch"] == 1
        res = run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0, 1], resume=True, progress=False, jobs=2,
                     threads_per_job=1)
        assert res["folds"] == full["folds"]
        for f in (0, 1):
            _states_equal(load_checkpoint(tmp_path / "full" / f"fold_{f:02d}" / "checkpoint.pt")["models"],
                          load_checkpoint(tmp_path / "cut" / f"fold_{f:02d}" / "checkpoint.pt")["models"])

    def test_worker_passes_the_job_count(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
        seen: dict[str, object] = {}

        class Done:
            metrics = {"accuracy": 1.0}

        def fake_train_fold(*a: object, **k: object) -> Done:
            from degan import data as data_mod
            seen.update(k, share=data_mod.cache_share())
            return Done()

        from degan import data as data_mod
        monkeypatch.setattr(data_mod, "_CACHE_JOBS", 1)
        monkeypatch.setattr(_cv, "train_fold", fake_train_fold)
        _cv._fold_job(str(canvas_file), tiny_cfg, 0, str(tmp_path / "f"), False, None, None, 1, "cpu",
                            False, None, 2, bar_position=1)
        assert seen["share"] == 2 and seen["bar_position"] == 1   # the fold's cache budget is halved

    def test_failing_fold_raises_its_error(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(model="baseline")
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
        monkeypatch.setattr(_cv, "_report_fold",
                            lambda fold, m, n_done, n_folds, eta: lines.append((n_done, m["seconds"], eta)))
        cfg = tiny_cfg.replace(model="baseline")
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
        monkeypatch.setattr(_cv, "_report_fold", lambda fold, *_: folds.append(fold))
        cfg = tiny_cfg.replace(model="baseline")
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
        monkeypatch.setattr(_cv.dist_, "setup", lambda device=None: _cv.dist_.DistInfo(0, 2, 0))
        with pytest.raises(ConfigError, match="torchrun"):
            run_cv(canvas_file, tiny_cfg, tmp_path / "a", progress=False, jobs=2)
        assert not (tmp_path / "a").exists()


class TestMixup:
    @staticmethod
    def _ce(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss = torch.nn.functional.cross_entropy(out, y)
        return loss, {"ce": loss.item()}

    @pytest.mark.parametrize("lam", [0.7, 0.2])
    def test_batch_and_loss_by_hand(self, lam: float) -> None:
        x = torch.arange(4 * 2 * 2, dtype=torch.float32).reshape(4, 1, 2, 2)
        y = torch.tensor([0, 1, 2, 0])
        perm = torch.randperm(4, generator=torch.Generator().manual_seed(3))
        mixed, y_major, loss_fn = mixup_batch(x, y, self._ce, lam, torch.Generator().manual_seed(3))
        torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
        assert torch.equal(y_major, y if lam >= 0.5 else y[perm])
        out = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 1.0, 3.0], [1.0, -2.0, 0.0]])
        logp = out - out.exp().sum(1, keepdim=True).log()           # log-softmax, by hand
        want = -(lam * logp[torch.arange(4), y] + (1 - lam) * logp[torch.arange(4), y[perm]]).mean()
        loss, terms = loss_fn(out, torch.zeros(4, dtype=torch.long))  # the label passed in is ignored
        torch.testing.assert_close(loss, want)
        assert terms["ce"] == pytest.approx(float(want), rel=1e-5)

    def test_lambda_one_changes_nothing(self) -> None:
        x, y = torch.randn(5, 1, 3, 3), torch.tensor([0, 1, 1, 2, 0])
        mixed, y_major, loss_fn = mixup_batch(x, y, self._ce, 1.0)
        out = torch.randn(5, 3)
        torch.testing.assert_close(mixed, x)
        assert torch.equal(y_major, y)
        torch.testing.assert_close(loss_fn(out, y)[0], self._ce(out, y)[0])

    @pytest.mark.parametrize("model", ["baseline", "degan"])
    def test_used_in_training_and_resumes_exactly(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                                  model: str) -> None:
        cfg = tiny_cfg.replace(model=model, epochs_gan=1, epochs_local=2, epochs_baseline=2, mixup=0.4)
        run_cv(canvas_file, cfg, tmp_path / "full", folds=[0], progress=False)
        run_cv(canvas_file, cfg.replace(mixup=0.0), tmp_path / "plain", folds=[0], progress=False)
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], progress=False,
                   stop_after=2 if model == "degan" else 1)        # inside stage 2 / the baseline
        run_cv(canvas_file, cfg, tmp_path / "cut", folds=[0], resume=True, progress=False)
        a, b, c = (load_checkpoint(tmp_path / d / "fold_00" / "checkpoint.pt") for d in ("full", "cut", "plain"))
        _states_equal(a["models"], b["models"])
        key = "baseline" if model == "baseline" else "local"
        assert any(not torch.equal(a["models"][key][n], c["models"][key][n]) for n in a["models"][key])


class TestOlderRuns:
    def test_resume_fills_new_fields_with_defaults(self, canvas_file: Path, tmp_path: Path,
                                                   tiny_cfg: DeganConfig) -> None:
        """A run recorded before ``mixup`` and ``local_depth`` existed resumes; changing them is refused."""
        cfg = tiny_cfg.replace(model="baseline", epochs_baseline=2)
        out = tmp_path / "run"
        with pytest.raises(Interrupted):
            run_cv(canvas_file, cfg, out, folds=[0], progress=False, stop_after=1)
        ck = out / "fold_00" / "checkpoint.pt"
        state = load_checkpoint(ck)
        for key in ("mixup", "local_depth"):
            del state["config"][key]
        save_checkpoint(ck, state)
        rec = json.loads((out / "config.json").read_text())
        for key in ("mixup", "local_depth"):
            del rec["config"][key]
        (out / "config.json").write_text(json.dumps(rec))
        with pytest.raises(RunDirError, match="differs in: mixup"):
            run_cv(canvas_file, cfg.replace(mixup=0.3), out, folds=[0], resume=True, progress=False)
        m = run_cv(canvas_file, cfg, out, folds=[0], resume=True, progress=False)
        assert list(m["folds"]) == ["0"]
        assert load_checkpoint(ck)["stage"] == "done"


class TestBadInput:
    def test_no_folds_writes_nothing(self, no_folds_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        with pytest.raises(NoFoldsError, match="facekit folds"):
            run_cv(no_folds_file, tiny_cfg, tmp_path / "run", progress=False)
        assert not (tmp_path / "run").exists()

    def test_fold_out_of_range_writes_nothing(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        from degan.errors import FoldError
        with pytest.raises(FoldError, match="0..2"):
            run_cv(canvas_file, tiny_cfg, tmp_path / "run", folds=[7], progress=False)
        assert not (tmp_path / "run").exists()

    def test_nan_loss_stops_and_keeps_checkpoint(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        cfg = tiny_cfg.replace(epochs_gan=3)
        out = tmp_path / "run"
        real = _gan.discriminator_loss
        calls = {"n": 0}

        def flaky(*args, **kw):  # type: ignore[no-untyped-def]
            total, terms = real(*args, **kw)
            calls["n"] += 1
            if calls["n"] > 1:                       # epoch 2 (one step per epoch here)
                terms["d_fake"] = float("nan")
                total = total * float("nan")
            return total, terms
        monkeypatch.setattr(_gan, "discriminator_loss", flaky)
        with pytest.raises(NonFiniteLossError, match=r"gan at epoch 2, step 1 .*last good checkpoint") as ei:
            run_cv(canvas_file, cfg, out, folds=[0], progress=False)
        assert ei.value.step == 0 and ei.value.epoch == 1
        ck = load_checkpoint(out / "fold_00" / "checkpoint.pt")
        assert ck["stage"] == "gan" and ck["epoch"] == 1
        assert all(torch.isfinite(v).all() for v in ck["models"]["G"].values() if v.is_floating_point())

    def test_corrupt_checkpoint(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(model="baseline")
        out = tmp_path / "run"
        run_cv(canvas_file, cfg, out, folds=[0], progress=False)
        ck = out / "fold_00" / "checkpoint.pt"
        ck.write_bytes(ck.read_bytes()[:200])
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            run_cv(canvas_file, cfg, out, folds=[0], resume=True, progress=False)
        assert ck.stat().st_size == 200           # left for the user to inspect, not overwritten

    def test_checkpoint_of_other_fold(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(model="baseline", epochs_baseline=2)
        info = read_file_info(canvas_file)
        with pytest.raises(Interrupted):
            train_fold(cfg, info, 0, tmp_path / "f", progress=False, stop_after=1)
        with pytest.raises(CheckpointError, match="fold 0, not 1"):
            train_fold(cfg, info, 1, tmp_path / "f", resume=True, progress=False)
        assert make_split(info, 1, cfg).fold == 1
