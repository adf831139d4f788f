"""The torch Dataset over a facekit file's samples (raw uint8 images, labels, identities)."""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .cache import load_cache
from .fileinfo import FileInfo

__all__ = ["FacekitDataset", "Batch", "collate", "read_rows"]

Batch = dict[str, torch.Tensor]


def read_rows(dataset: Any, rows: np.ndarray) -> np.ndarray:
    """``dataset[rows]`` for an h5py dataset and any int row order, repeats included, with one
    HDF5 read of the sorted unique rows (h5py's fancy indexing wants them increasing)."""
    rows = np.asarray(rows, np.int64)
    order = np.argsort(rows, kind="stable")
    uniq, inverse = np.unique(rows[order], return_inverse=True)
    block = dataset[uniq]
    out = np.empty((len(rows), *block.shape[1:]), block.dtype)
    out[order] = block[inverse]
    return out


class FacekitDataset(Dataset):
    """Samples ``indices`` of a facekit file as raw uint8 images plus labels.

    Item ``i``: dict with ``image`` (C, H, W) uint8 tensor, ``label`` int64,
    ``identity`` int64 (training identity or -1), ``face`` int64, ``index``
    int64 (row in the file). :meth:`__getitems__` reads a whole batch with one
    sorted HDF5 read. ``cache``: "on" (refuse if it does not fit), "auto", "off"
    (the memory budget is shared, see :mod:`degan.data.cache`).

    ``views`` > 1: every sample is ``views`` items, item ``i`` being sample
    ``indices[i // views]`` with ``view`` = ``i % views`` (int64; an index into
    :func:`facekit.augment.sample_views`, rendered by :class:`~degan.data.BatchTransform`),
    so one pass over the dataset is a pass over every sample's views.

    The h5py handle is opened lazily in each process that reads (DataLoader
    workers included); a handle is never carried across ``fork``.
    """

    def __init__(self, info: FileInfo, indices: np.ndarray, identity: np.ndarray, cache: str = "auto",
                 views: int = 1) -> None:
        self.info = info
        self.indices = np.asarray(indices, np.int64)
        self.views = int(views)
        self.identity = identity
        self._h5: Any = None
        self._pid: int | None = None
        self._data: np.ndarray | None = None
        if cache != "off":
            self._data = load_cache(info.path, info.image_bytes, cache)

    @property
    def cached(self) -> bool:
        """The images come from memory (the cache), not from the file."""
        return self._data is not None

    @property
    def open_in_this_process(self) -> bool:
        """This process has opened its own handle on the file."""
        return self._h5 is not None and self._pid == os.getpid()

    def __len__(self) -> int:
        return len(self.indices) * self.views

    def _file(self) -> Any:
        if self._h5 is None or self._pid != os.getpid():   # lazily, once per process (never across fork)
            import h5py
            self._h5 = h5py.File(self.info.path, "r")
            self._pid = os.getpid()
        return self._h5["samples/image"]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_h5"], state["_pid"] = None, None
        return state

    def _read(self, rows: np.ndarray) -> np.ndarray:
        if self._data is not None:
            return self._data[rows]
        return read_rows(self._file(), rows)

    def __getitems__(self, items: list[int]) -> Batch:
        items_ = np.asarray(items, np.int64)
        rows = self.indices[items_ // self.views]
        img = torch.from_numpy(np.ascontiguousarray(self._read(rows)))
        img = img.unsqueeze(1) if img.ndim == 3 else img.permute(0, 3, 1, 2).contiguous()
        batch = {"image": img,
                 "label": torch.from_numpy(self.info.label[rows].astype(np.int64)),
                 "identity": torch.from_numpy(self.identity[rows].astype(np.int64)),
                 "face": torch.from_numpy(self.info.face[rows].astype(np.int64)),
                 "index": torch.from_numpy(rows)}
        if self.views > 1:
            batch["view"] = torch.from_numpy(items_ % self.views)
        return batch

    def __getitem__(self, i: int) -> Batch:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


def collate(batch: Any) -> Batch:
    """Collate for :class:`FacekitDataset`: passes ``__getitems__`` output through, stacks single items."""
    if isinstance(batch, dict):
        return batch
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}
