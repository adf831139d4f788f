from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader

from degan.data import FacekitDataset, collate, make_split, read_file_info, read_rows
from degan.presets import get_preset


class TestFacekitDataset:
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

    def test_views_make_every_sample_several_items(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        sp = make_split(info, 1, get_preset("paper"))
        ds = FacekitDataset(info, sp.train, sp.identity, cache="off", views=sp.views)
        assert len(ds) == 110 * len(sp.train) and "view" not in FacekitDataset(info, sp.train, sp.identity)[0]
        b = ds.__getitems__([0, 1, 109, 110, 110 * len(sp.train) - 1])
        assert b["view"].tolist() == [0, 1, 109, 0, 109] and b["view"].dtype == torch.int64
        assert b["index"].tolist() == [sp.train[0]] * 3 + [sp.train[1], sp.train[-1]]
        torch.testing.assert_close(b["image"][0], b["image"][2])
        assert ds[111]["view"] == 1 and int(ds[111]["index"]) == sp.train[1]

    def test_handle_opened_lazily_per_process(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        sp = make_split(info, 0, get_preset("tiny"))
        ds = FacekitDataset(info, sp.train, sp.identity, cache="off")
        assert not ds.open_in_this_process and not ds.cached
        ds[0]
        assert ds.open_in_this_process
        loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate,
                            multiprocessing_context="fork")
        n = sum(len(b["label"]) for b in loader)      # workers reopen; the parent's handle is not used there
        assert n == len(ds)
        state = ds.__getstate__()
        assert state["_h5"] is None and state["_pid"] is None and os.getpid() > 0


class TestReadRows:
    def test_any_order_and_repeats_in_one_read(self, tmp_path: Path) -> None:
        data = np.arange(40, dtype=np.int32).reshape(10, 4)
        with h5py.File(tmp_path / "r.h5", "w") as f:
            ds = f.create_dataset("x", data=data)
            rows = np.array([7, 2, 7, 0, 9])
            np.testing.assert_array_equal(read_rows(ds, rows), data[rows])
            assert read_rows(ds, np.array([], np.int64)).shape == (0, 4)
