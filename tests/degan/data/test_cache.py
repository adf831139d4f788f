from __future__ import annotations

from pathlib import Path

import pytest
import torch

from degan.data import FacekitDataset, cache as cache_mod, make_split, read_file_info
from degan.errors import CacheMemoryError
from degan.presets import get_preset


class TestCache:
    def test_cache_matches_disk(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        sp = make_split(info, 0, get_preset("tiny"))
        a = FacekitDataset(info, sp.train, sp.identity, cache="on")
        assert a.cached
        b = FacekitDataset(info, sp.train, sp.identity, cache="off")
        torch.testing.assert_close(a.__getitems__([0, 1, 2])["image"], b.__getitems__([0, 1, 2])["image"])

    def test_refused_when_too_big(self, canvas_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        info = read_file_info(canvas_file)
        sp = make_split(info, 0, get_preset("tiny"))
        cache_mod.clear_cache()
        monkeypatch.setattr(cache_mod, "available_memory", lambda: 1 << 20)
        with pytest.raises(CacheMemoryError, match="cache=off"):
            FacekitDataset(info, sp.train, sp.identity, cache="on")
        ds = FacekitDataset(info, sp.train, sp.identity, cache="auto")     # auto: falls back to disk
        assert not ds.cached and ds[0]["image"].shape == (1, 44, 44)

    def test_budget_shared_by_processes(self, canvas_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        info = read_file_info(canvas_file)
        sp = make_split(info, 0, get_preset("tiny"))
        avail = int(((1 << 30) + 1.5 * info.image_bytes) / 0.6) + 16    # 1.5x the file after the 1 GiB reserve
        monkeypatch.setattr(cache_mod, "available_memory", lambda: avail)
        monkeypatch.setattr(cache_mod, "_JOBS", [1])
        cache_mod.clear_cache()
        cache_mod.set_cache_jobs(2)                          # degan-train --jobs 2
        assert cache_mod.cache_share() == 2
        assert not FacekitDataset(info, sp.train, sp.identity, cache="auto").cached
        with pytest.raises(CacheMemoryError, match="shared by 2 processes"):
            FacekitDataset(info, sp.train, sp.identity, cache="on")
        with pytest.raises(CacheMemoryError, match="shared by 2 processes"):
            cache_mod.check_cache_fits(info.path, info.image_bytes)
        cache_mod.check_cache_fits(info.path, info.image_bytes, jobs=1)   # an explicit count: one process
        cache_mod.set_cache_jobs(1)
        assert FacekitDataset(info, sp.train, sp.identity, cache="on").cached
        cache_mod.clear_cache()

    def test_local_ranks_count_only_under_torchrun(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(cache_mod, "_JOBS", [3])
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
        monkeypatch.delenv("WORLD_SIZE", raising=False)
        assert cache_mod.cache_share() == 3
        monkeypatch.setenv("WORLD_SIZE", "8")               # torchrun: 4 of the 8 ranks on this machine
        assert cache_mod.cache_share() == 12
