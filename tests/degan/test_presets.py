from __future__ import annotations

import pytest

from degan.config import ConfigError, DeganConfig
from degan.presets import PRESETS, get_preset, list_presets, preset_changes, register_preset


class TestPresets:
    def test_presets_are_valid_and_named(self) -> None:
        assert {"paper", "cpu", "tiny"} <= set(list_presets())
        for name in list_presets():
            cfg = get_preset(name)
            assert cfg.preset == name and cfg.validated() is cfg
            assert PRESETS[name].description and "v7" not in PRESETS[name].description

    def test_paper_is_the_defaults(self) -> None:
        assert get_preset("paper") == DeganConfig() and preset_changes("paper") == {}

    def test_changes_are_the_table(self) -> None:
        for name in list_presets():
            changes = preset_changes(name)
            assert set(changes) == {k for k, v in PRESETS[name].changes.items() if DeganConfig().get(k) != v}
            for key, (paper, value) in changes.items():
                assert DeganConfig().get(key) == paper and get_preset(name).get(key) == value

    def test_cpu_departures_from_the_paper(self) -> None:
        changes = preset_changes("cpu")
        assert changes["stage1.expr_weight"] == (0.0, 10.0) and changes["eval.geometry_weight"] == (0.0, 0.5)
        assert changes["stage1.lr"] == (1e-4, 2e-4) and changes["stage2.lr"] == (1e-4, 1e-3)
        assert "stage1.recon_fraction" not in changes           # the paper's default value

    def test_register_and_unknown(self) -> None:
        register_preset("test-short", {"stage1.epochs": 2}, "two stage-1 epochs")
        try:
            assert get_preset("test-short").stage1.epochs == 2
            assert preset_changes("test-short") == {"stage1.epochs": (300, 2)}
        finally:
            del PRESETS["test-short"]
        with pytest.raises(ConfigError, match="available"):
            get_preset("gpu-xxl")
        with pytest.raises(ConfigError, match="stage1.nope"):
            register_preset("bad", {"stage1.nope": 1}, "")
