from __future__ import annotations

import dataclasses
import json

import pytest

from degan.config import (READS, SECTIONS, STAGE1_READS, ConfigError, DeganConfig, flat_aliases, parse_overrides,
                          resume_conflicts, stage1_conflicts)
from degan.presets import get_preset

#: the ``cpu`` preset as the flat config.json of earlier versions recorded it
FLAT_CPU = {
    "amp": "auto", "augment": "auto", "baseline_arch": "encoder", "batch_size": 64, "beta1": 0.5, "beta2": 0.999,
    "cache": "auto", "channels_last": True, "compile": False, "crop_jitter": True, "d_acc_momentum": 0.9,
    "d_strong_threshold": 0.9, "dropout": 0.3, "encoder_lr_scale": 0.0, "epochs_baseline": 60, "epochs_gan": 40,
    "epochs_local": 60, "expr_weight": 10.0, "feat_dim": 350, "flip": True, "fuse": "hidden", "fuse_detach": False,
    "g_steps": 2, "geometry_c": 0.1, "geometry_weight": 0.5, "grid_identities": 6, "identity_code": "random",
    "image_size": 48, "init_std": 0.02, "label_smoothing": 0.1, "local_depth": 1, "local_hidden": 128,
    "local_width": 0.5, "log_every": 10, "lr": 0.001, "lr_gan": 0.0002, "lr_schedule": "cosine", "mixup": 0.0,
    "model": "degan", "noise_dim": 50, "num_workers": 0, "patch_size": 0, "preset": "cpu", "pretrain_epochs": 0,
    "recon_fraction": 0.5, "recon_weight": 10.0, "rotate_deg": 15.0, "scale_jitter": 0.1, "seed": 0,
    "stage2_weights": [0.7, 0.6, 0.4, 0.3, 1.0], "synth_fraction": 0.0, "test_views": "centre", "weight_decay": 0.0,
    "width": 0.25}


class TestDeganConfig:
    def test_defaults_are_the_paper(self) -> None:
        cfg = DeganConfig()
        assert (cfg.arch.image_size, cfg.stage1.lr, cfg.train.beta1, cfg.train.batch_size, cfg.arch.init_std) == \
            (96, 1e-4, 0.5, 150, 0.02)
        assert (cfg.stage1.epochs, cfg.stage2.epochs, cfg.arch.feat_dim) == (300, 50, 350)
        assert cfg.stage2.weights == (0.7, 0.6, 0.4, 0.3, 1.0)

    def test_json_round_trip(self) -> None:
        cfg = get_preset("cpu")
        d = json.loads(cfg.to_json())
        assert set(d) == {"preset", "method", *SECTIONS} and d["stage2"]["weights"] == [0.7, 0.6, 0.4, 0.3, 1.0]
        assert DeganConfig.from_dict(d) == cfg

    def test_missing_fields_take_defaults_unknown_refused(self) -> None:
        d = get_preset("tiny").to_dict()
        del d["stage2"]["mixup"]
        assert DeganConfig.from_dict(d).stage2.mixup == 0.0
        d["stage2"]["sideways"] = 1
        with pytest.raises(ConfigError, match="stage2.sideways"):
            DeganConfig.from_dict(d)

    def test_replace_by_section_field_or_unique_name(self) -> None:
        cfg = get_preset("tiny").replace({"stage1.epochs": 3, "stage2.lr": 0.5}, expr_weight=2.0, method="baseline")
        assert (cfg.stage1.epochs, cfg.stage2.lr, cfg.stage1.expr_weight, cfg.method) == (3, 0.5, 2.0, "baseline")
        assert cfg.get("stage2.lr") == 0.5 and cfg.get("expr_weight") == 2.0
        assert cfg.replace(stage1=cfg.stage1).stage1 is cfg.stage1
        with pytest.raises(ConfigError, match="several sections"):
            cfg.replace(lr=1.0)

    @pytest.mark.parametrize("change, match", [
        ({"arch.image_size": 50}, "multiple of 16"), ({"stage2.weights": (1, 2)}, "five weights"),
        ({"stage2.mixup": -0.1}, "stage2.mixup"), ({"stage2.local_depth": 0}, "local_depth"),
        ({"stage1.expr_weight": -1}, "expr_weight"), ({"stage2.fuse": "sideways"}, "hidden, logits"),
        ({"stage2.encoder_lr_scale": -1.0}, "encoder_lr_scale"), ({"stage2.synth_fraction": 1.5}, "synth_fraction"),
        ({"baseline.network": "resnet"}, "baseline.network"), ({"eval.geometry_weight": 1.5}, "geometry_weight"),
        ({"method": "gan"}, "degan, baseline"), ({"data.augment": "views"}, "paper, auto, online"),
        ({"data.val_fraction": 0.6}, "val_fraction"), ({"data.val_fraction": -0.1}, "val_fraction")])
    def test_validation(self, change: dict, match: str) -> None:
        with pytest.raises(ConfigError, match=match):
            get_preset("paper").replace(change)

    @pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
    def test_every_float_field_must_be_finite(self, value: str) -> None:
        floats = [f"{s}.{f.name}" for s, c in SECTIONS.items() for f in dataclasses.fields(c)
                  if isinstance(getattr(getattr(DeganConfig(), s), f.name), (float, tuple))]
        assert "stage1.lr" in floats and "stage2.weights" in floats and len(floats) > 20
        for key in floats:
            item = f"{key}={value}" if not key.endswith("weights") else f"{key}=1,1,{value},1,1"
            with pytest.raises(ConfigError, match=rf"^{key}=.*{value.lstrip('-')}.*: must be a finite number$"):
                parse_overrides(get_preset("cpu"), [item])
        record = get_preset("cpu").to_dict()
        record["stage1"]["lr"] = float("nan")                    # a config.json holding NaN
        with pytest.raises(ConfigError, match="stage1.lr=nan: must be a finite number"):
            DeganConfig.from_dict(json.loads(json.dumps(record)))


class TestPaperSchedule:
    def test_paper_views_and_pre_training(self) -> None:
        cfg = DeganConfig()
        assert cfg.data.augment == "paper" and cfg.stage1.pretrain and cfg.data.val_fraction == 0.0
        assert cfg.stage1.pretrain_epochs == 0 and cfg.stage1.pretraining_epochs == 300   # as many as stage 1
        assert cfg.replace(pretrain_epochs=20).stage1.pretraining_epochs == 20
        assert cfg.replace({"stage1.epochs": 7}).epochs["pretrain"] == 7

    def test_sections_written_before_the_fields_existed(self) -> None:
        d = get_preset("paper").to_dict()
        del d["stage1"]["pretrain"], d["data"]["augment"]
        old = DeganConfig.from_dict(d)                    # what those versions did:
        assert not old.stage1.pretrain and old.data.augment == "auto"      # no pre-training, "auto" views
        d["stage1"]["pretrain_epochs"] = 5
        assert DeganConfig.from_dict(d).stage1.pretrain    # they pre-trained when pretrain_epochs > 0
        flat = {k: v for k, v in FLAT_CPU.items() if k != "augment"}
        assert DeganConfig.from_dict(flat) == get_preset("cpu")


class TestFlatConfigs:
    def test_earlier_flat_config_loads_as_the_same_settings(self) -> None:
        assert DeganConfig.from_dict(FLAT_CPU) == get_preset("cpu")

    def test_flat_lr_went_to_stage1_only_without_lr_gan(self) -> None:
        flat = {**FLAT_CPU, "lr_gan": 0.0, "lr": 0.003, "mixup": 0.2, "model": "baseline", "baseline_arch": "cnn3"}
        cfg = DeganConfig.from_dict(flat)
        assert (cfg.stage1.lr, cfg.stage2.lr, cfg.baseline.lr) == (0.003, 0.003, 0.003)
        assert (cfg.stage2.mixup, cfg.baseline.mixup, cfg.method, cfg.baseline.network) == (0.2, 0.2, "baseline", "cnn3")
        older = {k: v for k, v in FLAT_CPU.items() if k not in ("mixup", "local_depth")}   # before they existed
        assert DeganConfig.from_dict(older) == get_preset("cpu")
        with pytest.raises(ConfigError, match="unknown"):
            DeganConfig.from_dict({**FLAT_CPU, "nope": 1})


class TestParseOverrides:
    def test_section_field_and_unique_names(self) -> None:
        cfg = parse_overrides(get_preset("paper"), ["stage1.lr=0.001", "flip=false", "weights=1,1,1,1,2",
                                                    "test-views=all", "train.channels_last=1"])
        assert cfg.stage1.lr == 1e-3 and cfg.data.flip is False and cfg.stage2.weights == (1, 1, 1, 1, 2)
        assert cfg.eval.test_views == "all" and cfg.train.channels_last is True and cfg.stage2.lr == 1e-4

    @pytest.mark.parametrize("item, match", [
        ("nope=1", "unknown config field"), ("lr", "expected section.field=value"),
        ("lr=1", "stage1.lr, stage2.lr, baseline.lr"), ("dropout=0.1", "stage2.dropout, baseline.dropout"),
        ("epochs_gan=3", "renamed; give stage1.epochs"), ("model=baseline", "--method"),
        ("method=baseline", "--method"), ("stage9.lr=1", "unknown section"), ("stage1.nope=1", "no field 'nope'"),
        ("flip=maybe", "boolean"), ("image_size=big", "image_size=big")])
    def test_refused_with_a_hint(self, item: str, match: str) -> None:
        with pytest.raises(ConfigError, match=match):
            parse_overrides(get_preset("paper"), [item])

    def test_aliases_are_generated_from_the_sections(self) -> None:
        aliases = flat_aliases()
        every = [f"{s}.{f.name}" for s, c in SECTIONS.items() for f in dataclasses.fields(c)]
        assert set(aliases.values()) <= set(every)
        assert aliases["expr_weight"] == "stage1.expr_weight" and "lr" not in aliases and "epochs" not in aliases


class TestConflicts:
    def test_only_runtime_may_differ_on_resume(self) -> None:
        cfg = get_preset("cpu")
        assert resume_conflicts(cfg, cfg.replace(cache="off", log_every=3)).refused == ()
        assert resume_conflicts(cfg, cfg.replace(cache="off")).runtime == ("runtime.cache",)
        for key, value in [("eval.test_views", "all"), ("train.seed", 1), ("data.flip", False),
                           ("train.channels_last", False), ("stage2.mixup", 0.2)]:
            assert resume_conflicts(cfg, cfg.replace({key: value})).refused == (key,)
        assert resume_conflicts(cfg, cfg.replace(method="baseline")).refused[0] == "method"

    def test_a_method_is_compared_on_the_sections_it_reads(self) -> None:
        base = get_preset("cpu").replace(method="baseline")
        assert resume_conflicts(base, base.replace({"stage2.local_depth": 3, "stage1.lr": 1.0})).refused == ()
        assert resume_conflicts(base, base.replace({"baseline.mixup": 0.2})).refused == ("baseline.mixup",)
        degan = get_preset("cpu")
        assert resume_conflicts(degan, degan.replace({"baseline.network": "cnn3"})).refused == ()
        assert set(READS["degan"]) == set(SECTIONS) - {"baseline", "runtime"}

    def test_stage1_conflicts_follow_the_sections_stage1_reads(self) -> None:
        cfg = get_preset("cpu")
        stage2_only = cfg.replace({"stage2.mixup": 0.2, "stage2.local_depth": 2, "stage2.lr": 0.5,
                                   "eval.geometry_weight": 0.0, "baseline.network": "cnn3"})
        assert stage1_conflicts(cfg, stage2_only) == ()
        assert stage1_conflicts(cfg, cfg.replace({"stage1.expr_weight": 0.0})) == ("stage1.expr_weight",)
        assert stage1_conflicts(cfg, cfg.replace({"arch.width": 0.5, "data.flip": False})) == ("arch.width",
                                                                                                "data.flip")
        assert STAGE1_READS == ("arch", "train", "stage1", "data")

    def test_described_with_both_values(self) -> None:
        a = get_preset("tiny")
        b = a.replace({"arch.image_size": 32})
        c = resume_conflicts(a, b)
        assert c.describe(a, b, c.refused) == "arch.image_size (16 -> 32)"


class TestImportWeight:
    def test_config_is_light(self) -> None:
        import subprocess
        import sys
        code = "import sys, degan, degan.config, degan.presets; assert 'torch' not in sys.modules"
        subprocess.run([sys.executable, "-c", code], check=True)
