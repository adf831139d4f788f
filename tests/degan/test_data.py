from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from degan import data as data_mod
from degan.config import get_preset
from degan.data import (BatchTransform, FacekitDataset, collate, make_split, read_file_info, read_rows)
from degan.errors import CacheMemoryError, FoldError, NoFoldsError
from facekit.errors import NotAFacekitFileError


class TestFoldSplit:
    @pytest.mark.parametrize("which", ["canvas_file", "paper_file"])
    def test_no_subject_or_face_shared(self, which: str, request: pytest.FixtureRequest) -> None:
        info = read_file_info(request.getfixturevalue(which))
        cfg = get_preset("tiny")
        for fold in range(info.k):
            sp = make_split(info, fold, cfg)
            assert not set(info.subject[sp.train]) & set(info.subject[sp.test])
            assert not set(info.face[sp.train]) & set(info.face[sp.test])
            assert (info.fold[sp.test] == fold).all() and (info.fold[sp.train] != fold).all()
            ids = sp.identity[sp.train]
            assert ids.min() == 0 and ids.max() == sp.n_identities - 1
            assert (sp.identity[sp.test] == -1).all()

    def test_paper_file_test_centre_views_only(self, paper_file: Path) -> None:
        info = read_file_info(paper_file)
        sp = make_split(info, 0, get_preset("tiny"))
        assert (info.patch[sp.test] == 0).all() and (info.flip[sp.test] == 0).all()
        assert (info.angle[sp.test] == 0).all()
        assert len(sp.test) == len(np.unique(info.face[sp.test]))
        assert len(sp.train) == 20 * len(np.unique(info.face[sp.train]))       # every stored copy
        all_views = make_split(info, 0, get_preset("tiny").replace(test_views="all"))
        assert len(all_views.test) == 20 * len(sp.test)
        mirror = make_split(info, 0, get_preset("tiny").replace(test_views="mirror"))
        assert len(mirror.test) == 2 * len(sp.test) and sorted(info.flip[mirror.test].tolist()).count(1) == len(sp.test)
        assert (info.patch[mirror.test] == 0).all() and (info.angle[mirror.test] == 0).all()

    def test_leaky_folds_are_cleaned(self, tmp_path: Path) -> None:
        from .conftest import make_file
        p = make_file(tmp_path / "leak.h5")
        with h5py.File(p, "r+") as f:
            fold = f["folds/fold"][()]
            fold[0] = (fold[0] + 1) % 3          # one sample of a subject in another fold
            f["folds/fold"][...] = fold
        info = read_file_info(p)
        with pytest.warns(UserWarning, match="left out of training"):
            sp = make_split(info, int(info.fold[0]), get_preset("tiny"))
        assert not set(info.subject[sp.train]) & set(info.subject[sp.test])

    def test_no_folds(self, no_folds_file: Path) -> None:
        with pytest.raises(NoFoldsError, match="facekit folds"):
            make_split(read_file_info(no_folds_file), 0, get_preset("tiny"))

    @pytest.mark.parametrize("fold", [-1, 3, 99])
    def test_fold_out_of_range(self, canvas_file: Path, fold: int) -> None:
        with pytest.raises(FoldError, match="out of range"):
            make_split(read_file_info(canvas_file), fold, get_preset("tiny"))

    def test_other_tool_file(self, tmp_path: Path) -> None:
        p = tmp_path / "other.h5"
        with h5py.File(p, "w") as f:
            f["x"] = np.zeros(3)
        with pytest.raises(NotAFacekitFileError, match="another tool"):
            read_file_info(p)
        q = tmp_path / "text.h5"
        q.write_text("hello")
        with pytest.raises(NotAFacekitFileError):
            read_file_info(q)


class TestDataset:
    def test_items_and_batches(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        sp = make_split(info, 1, get_preset("tiny"))
        ds = FacekitDataset(info, sp.train, sp.identity, cache="off")
        item = ds[3]
        assert item["image"].shape == (1, 44, 44) and item["image"].dtype == torch.uint8
        b = ds.__getitems__([5, 0, 5])
        assert b["image"].shape == (3, 1, 44, 44)
        torch.testing.assert_close(b["image"][0], b["image"][2])
        with h5py.File(canvas_file, "r") as f:
            np.testing.assert_array_equal(b["image"][1, 0].numpy(), f["samples/image"][sp.train[0]])
        assert int(b["label"][1]) == int(info.label[sp.train[0]])

    def test_handle_opened_lazily_per_process(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        sp = make_split(info, 0, get_preset("tiny"))
        ds = FacekitDataset(info, sp.train, sp.identity, cache="off")
        assert ds._h5 is None
        ds[0]
        assert ds._h5 is not None and ds._pid == os.getpid()
        loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate,
                            multiprocessing_context="fork")
        n = sum(len(b["label"]) for b in loader)      # workers reopen; the parent's handle is not used there
        assert n == len(ds)
        state = ds.__getstate__()
        assert state["_h5"] is None

    def test_cache_matches_disk(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        sp = make_split(info, 0, get_preset("tiny"))
        a = FacekitDataset(info, sp.train, sp.identity, cache="on").__getitems__([0, 1, 2])
        b = FacekitDataset(info, sp.train, sp.identity, cache="off").__getitems__([0, 1, 2])
        torch.testing.assert_close(a["image"], b["image"])

    def test_cache_refused_when_too_big(self, canvas_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        info = read_file_info(canvas_file)
        sp = make_split(info, 0, get_preset("tiny"))
        data_mod._CACHE.clear()
        monkeypatch.setattr(data_mod, "available_memory", lambda: 1 << 20)
        with pytest.raises(CacheMemoryError, match="cache=off"):
            FacekitDataset(info, sp.train, sp.identity, cache="on")
        ds = FacekitDataset(info, sp.train, sp.identity, cache="auto")     # auto: falls back to disk
        assert ds._data is None and ds[0]["image"].shape == (1, 44, 44)

    def test_cache_budget_shared_by_processes(self, canvas_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        info = read_file_info(canvas_file)
        sp = make_split(info, 0, get_preset("tiny"))
        avail = int(((1 << 30) + 1.5 * info.image_bytes) / 0.6) + 16    # 1.5x the file after the 1 GiB reserve
        monkeypatch.setattr(data_mod, "available_memory", lambda: avail)
        monkeypatch.setattr(data_mod, "_CACHE_JOBS", 1)
        data_mod._CACHE.clear()
        data_mod.set_cache_jobs(2)                          # degan-train --jobs 2
        assert data_mod.cache_share() == 2
        assert FacekitDataset(info, sp.train, sp.identity, cache="auto")._data is None
        with pytest.raises(CacheMemoryError, match="shared by 2 processes"):
            FacekitDataset(info, sp.train, sp.identity, cache="on")
        data_mod.set_cache_jobs(1)
        assert FacekitDataset(info, sp.train, sp.identity, cache="on")._data is not None
        data_mod._CACHE.clear()

    def test_local_ranks_count_only_under_torchrun(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(data_mod, "_CACHE_JOBS", 3)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
        monkeypatch.delenv("WORLD_SIZE", raising=False)
        assert data_mod.cache_share() == 3
        monkeypatch.setenv("WORLD_SIZE", "8")               # torchrun: 4 of the 8 ranks on this machine
        assert data_mod.cache_share() == 12


class TestReadRows:
    def test_any_order_and_repeats_in_one_read(self, tmp_path: Path) -> None:
        data = np.arange(40, dtype=np.int32).reshape(10, 4)
        with h5py.File(tmp_path / "r.h5", "w") as f:
            ds = f.create_dataset("x", data=data)
            rows = np.array([7, 2, 7, 0, 9])
            np.testing.assert_array_equal(read_rows(ds, rows), data[rows])
            assert read_rows(ds, np.array([], np.int64)).shape == (0, 4)


class TestBatchTransform:
    def test_centre_view_is_the_centre_crop(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)          # canvas 44, face box (4, 4, 36), patch 32
        cfg = get_preset("tiny").replace(image_size=32)
        tf = BatchTransform(info, cfg, train=False)
        img = torch.randint(0, 256, (2, 1, 44, 44), dtype=torch.uint8)
        out = tf(img)
        expect = img[:, :, 6:38, 6:38].float() / 127.5 - 1
        torch.testing.assert_close(out, expect, atol=1e-4, rtol=0)

    def test_paper_views_mirror_and_corner(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        cfg = get_preset("tiny").replace(image_size=32)
        tf = BatchTransform(info, cfg, train=False)
        img = torch.randint(0, 256, (1, 1, 44, 44), dtype=torch.uint8)
        assert len(BatchTransform.paper_views()) == 110
        flipped = tf(img, view=(0, 0.0, 1))
        torch.testing.assert_close(flipped, tf(img).flip(-1), atol=1e-4, rtol=0)
        top_left = tf(img, view=(1, 0.0, 0))
        torch.testing.assert_close(top_left, img[:, :, 4:36, 4:36].float() / 127.5 - 1, atol=1e-4, rtol=0)

    def test_online_augmentation_is_seeded(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        tf = BatchTransform(info, get_preset("tiny"), train=True)
        assert tf.online
        img = torch.randint(0, 256, (4, 1, 44, 44), dtype=torch.uint8)
        a = tf(img, torch.Generator().manual_seed(1))
        b = tf(img, torch.Generator().manual_seed(1))
        c = tf(img, torch.Generator().manual_seed(2))
        assert a.shape == (4, 1, 16, 16)
        torch.testing.assert_close(a, b)
        assert not torch.allclose(a, c)

    def test_stored_patches_resized_only(self, paper_file: Path) -> None:
        info = read_file_info(paper_file)
        tf = BatchTransform(info, get_preset("tiny").replace(image_size=32), train=True)
        assert not tf.online
        img = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
        torch.testing.assert_close(tf(img), img.float() / 127.5 - 1)
