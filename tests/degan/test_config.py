from __future__ import annotations

import json

import pytest

from degan.config import ConfigError, DeganConfig, get_preset, list_presets, parse_overrides


class TestConfig:
    def test_presets_are_valid_and_named(self) -> None:
        assert {"paper", "cpu", "tiny"} <= set(list_presets())
        for name in list_presets():
            cfg = get_preset(name)
            assert cfg.preset == name
            assert cfg.validated() is cfg

    def test_paper_hyperparameters(self) -> None:
        cfg = get_preset("paper")
        assert (cfg.image_size, cfg.lr, cfg.beta1, cfg.batch_size, cfg.init_std) == (96, 1e-4, 0.5, 150, 0.02)
        assert (cfg.epochs_gan, cfg.epochs_local, cfg.feat_dim) == (300, 50, 350)
        assert cfg.stage2_weights == (0.7, 0.6, 0.4, 0.3, 1.0)

    def test_json_round_trip(self) -> None:
        cfg = get_preset("cpu")
        assert DeganConfig.from_dict(json.loads(cfg.to_json())) == cfg

    def test_overrides(self) -> None:
        cfg = parse_overrides(get_preset("paper"), ["lr=0.001", "flip=false", "stage2_weights=1,1,1,1,2",
                                                   "test-views=all"])
        assert cfg.lr == 1e-3 and cfg.flip is False and cfg.stage2_weights == (1, 1, 1, 1, 2)
        assert cfg.test_views == "all"

    @pytest.mark.parametrize("item", ["nope=1", "lr", "fuse=sideways", "image_size=50", "stage2_weights=1,2",
                                      "mixup=-0.1", "local_depth=0", "expr_weight=-1"])
    def test_bad_overrides(self, item: str) -> None:
        with pytest.raises(ConfigError):
            parse_overrides(get_preset("paper"), [item])

    def test_unknown_preset(self) -> None:
        with pytest.raises(ConfigError, match="available"):
            get_preset("gpu-xxl")

    def test_stage2_options_leave_stage1_and_baseline_alone(self) -> None:
        cfg = get_preset("cpu")
        other = cfg.replace(mixup=0.2, local_depth=2)
        assert other.stage1_fields() == cfg.stage1_fields()        # --from-stage1 may change them
        base = cfg.replace(model="baseline")
        assert base.replace(local_depth=3).result_fields() == base.result_fields()
        assert base.replace(mixup=0.2).result_fields() != base.result_fields()   # the baseline uses mixup

    def test_baseline_architecture_is_a_baseline_field(self) -> None:
        cfg = get_preset("cpu")
        assert cfg.baseline_arch == "encoder" and get_preset("paper").baseline_arch == "encoder"
        base = cfg.replace(model="baseline")
        assert base.replace(baseline_arch="cnn3").result_fields() != base.result_fields()
        assert cfg.replace(baseline_arch="cnn3").result_fields() == cfg.result_fields()    # DE-GAN ignores it
        with pytest.raises(ConfigError, match="baseline_arch"):
            cfg.replace(baseline_arch="resnet")

    def test_expression_weight_is_a_stage1_field(self) -> None:
        cfg = get_preset("cpu")
        assert cfg.expr_weight == 10.0 and get_preset("paper").expr_weight == 0  # cpu v6; the paper: none
        assert cfg.replace(expr_weight=0.0).stage1_fields() != cfg.stage1_fields()
        base = cfg.replace(model="baseline")
        assert base.replace(expr_weight=0.0).result_fields() == base.result_fields()
