"""Torch data access to facekit files: fold selection, identity labels, caching, augmentation.

Two kinds of file arrive here:

* prepared with the paper's 110x augmentation (``augment="paper"`` attribute):
  ``samples/image`` holds (N, P, P[, 3]) patches with their ``patch``, ``angle``
  and ``flip`` columns;
* prepared with ``--augment none``: ``samples/image`` holds the aligned canvas
  (N, C, C[, 3]) and the ``face_box`` attribute says where the face is.

:class:`FacekitDataset` returns raw uint8 images; :class:`BatchTransform` turns
a batch into network input on the training device with one ``grid_sample``
(rotation, crop inside the face box, mirror and resize to ``image_size``
together), so on-the-fly augmentation costs about as much as a resize.

The h5py handle is opened lazily in each process that reads (DataLoader
workers included); a handle is never carried across ``fork``.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from facekit.store import open_facekit

from .config import DeganConfig
from .errors import CacheMemoryError, FoldError, NoFoldsError

__all__ = ["FileInfo", "FoldSplit", "FacekitDataset", "BatchTransform", "Batch", "read_file_info",
           "make_split", "available_memory", "collate", "canvas_patch_size", "PAPER_ANGLES", "read_rows"]

#: the paper's rotation angles (degrees); with 5 patches and 2 flips: 110 copies
PAPER_ANGLES = (0.0, -15.0, -12.0, -9.0, -6.0, -3.0, 3.0, 6.0, 9.0, 12.0, 15.0)


@dataclass
class FileInfo:
    """What training needs to know about a facekit file (read once, no image data).

    Arrays are per sample (N,): ``label`` int16, ``subject`` int32, ``face`` int32,
    ``patch`` int8, ``angle`` float32, ``flip`` uint8; ``fold`` int16 or None.
    """

    path: Path
    dataset: str
    label_names: list[str]
    subjects: list[str]
    augment: str                    # "paper" or "none"
    image_shape: tuple[int, ...]    # one sample: (H, W) or (H, W, 3)
    face_box: tuple[int, int, int]
    patch_size: int
    label: np.ndarray
    subject: np.ndarray
    face: np.ndarray
    patch: np.ndarray
    angle: np.ndarray
    flip: np.ndarray
    fold: np.ndarray | None
    fold_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.label.shape[0])

    @property
    def channels(self) -> int:
        return 3 if len(self.image_shape) == 3 else 1

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @property
    def k(self) -> int:
        if self.fold is None:
            return 0
        k = self.fold_attrs.get("k")
        return int(k) if k is not None else int(self.fold.max()) + 1

    @property
    def stored_augmentation(self) -> bool:
        """True for files holding the paper's augmented copies (patch >= 0)."""
        return bool(self.augment != "none" and self.n_samples and (self.patch >= 0).any())

    @property
    def image_bytes(self) -> int:
        return int(self.n_samples * np.prod(self.image_shape))


def read_file_info(path: str | os.PathLike) -> FileInfo:
    """Open and validate ``path`` (raises ``NotAFacekitFileError``) and read its columns."""
    with open_facekit(path) as fk:
        shape = tuple(int(s) for s in fk.images.shape[1:])
        patch = fk.column("samples/patch")
        augment = fk.augment
        face_box = fk.face_box
        patch_size = fk.patch_size
        if augment == "none" or not (patch >= 0).any():
            if face_box[2] <= 0:        # no face box recorded: the whole canvas is the face
                face_box = (0, 0, int(shape[0]))
            if patch_size <= 0:
                patch_size = min(96, face_box[2])
            patch_size = min(patch_size, face_box[2])
        else:
            patch_size = int(shape[0])
        return FileInfo(
            path=Path(path), dataset=fk.dataset, label_names=fk.label_names, subjects=fk.subjects,
            augment=augment, image_shape=shape, face_box=face_box, patch_size=patch_size,
            label=fk.column("samples/label"), subject=fk.column("samples/subject"),
            face=fk.column("samples/face"), patch=patch, angle=fk.column("samples/angle"),
            flip=fk.column("samples/flip"), fold=fk.folds, fold_attrs=fk.fold_attrs)


@dataclass
class FoldSplit:
    """Sample indices of one fold and the identity remapping.

    ``train``/``test``: sorted int64 sample indices. ``identity``: (N,) int64,
    the training-identity index of every sample (0..n_identities-1; -1 for
    subjects not in training). ``identity_names``: subject names of those indices.
    ``dropped``: training samples left out because their subject or face is in the test fold.
    """

    fold: int
    k: int
    train: np.ndarray
    test: np.ndarray
    identity: np.ndarray
    identity_names: list[str]
    dropped: int = 0

    @property
    def n_identities(self) -> int:
        return len(self.identity_names)


def _centre_mask(info: FileInfo, mirrored: bool = False) -> np.ndarray:
    """Samples that are an un-rotated, un-mirrored centre view (one per face); with
    ``mirrored`` also the mirrored centre views (two per face of a 110x file)."""
    if not info.stored_augmentation:
        return np.ones(info.n_samples, bool)
    centre = (info.patch == 0) & (np.abs(info.angle) < 1e-6)
    return centre if mirrored else centre & (info.flip == 0)


def make_split(info: FileInfo, fold: int, cfg: DeganConfig) -> FoldSplit:
    """Train = the other folds, test = ``fold``; subject- and face-disjoint by construction.

    With stored augmentation the training set holds every stored copy when
    ``cfg.augment`` is "auto"/"stored" and only the centre views otherwise; the
    test set holds the centre views, the centre views and their mirrors when
    ``cfg.test_views == "mirror"``, or every copy when it is ``"all"``.

    Raises:
        NoFoldsError: the file has no ``/folds/fold``.
        FoldError: ``fold`` out of range, or an empty train/test set.
    """
    if info.fold is None:
        raise NoFoldsError(info.path, "has no folds; run `facekit folds FILE --k 10` first")
    k = info.k
    if not 0 <= fold < k:
        raise FoldError(info.path, f"fold {fold} is out of range: the file has {k} folds (0..{k - 1})")
    labelled = info.label >= 0
    in_test = (info.fold == fold) & labelled
    test_subjects = np.unique(info.subject[in_test])
    test_faces = np.unique(info.face[in_test])
    candidate = (info.fold != fold) & labelled
    leak = candidate & (np.isin(info.subject, test_subjects) | np.isin(info.face, test_faces))
    if leak.any():
        warnings.warn(f"{info.path}: {int(leak.sum())} training samples share a subject or face with test fold "
                      f"{fold}; they are left out of training (folds should be subject-disjoint)", stacklevel=2)
    train_mask = candidate & ~leak
    centre = _centre_mask(info)
    if info.stored_augmentation and cfg.augment in ("online", "off"):
        train_mask &= centre
    if cfg.test_views == "all":
        test_mask = in_test
    elif cfg.test_views == "mirror":
        test_mask = in_test & _centre_mask(info, mirrored=True)
    else:
        test_mask = in_test & centre
    train, test = np.flatnonzero(train_mask), np.flatnonzero(test_mask)
    if len(test) == 0:
        raise FoldError(info.path, f"fold {fold} has no labelled test samples")
    if len(train) == 0:
        raise FoldError(info.path, f"fold {fold} leaves no training samples")
    train_subjects = np.unique(info.subject[train])
    identity = np.full(info.n_samples, -1, np.int64)
    lookup = {int(s): i for i, s in enumerate(train_subjects)}
    for s, i in lookup.items():
        identity[info.subject == s] = i
    names = [info.subjects[int(s)] if int(s) < len(info.subjects) else str(int(s)) for s in train_subjects]
    return FoldSplit(fold, k, train, test, identity, names, int(leak.sum()))


def available_memory() -> int:
    """Bytes of memory available to new allocations (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62


_CACHE: dict[tuple[str, float], np.ndarray] = {}
_CACHE_JOBS = 1      # processes of this invocation caching at once on this machine (degan-train --jobs)


def set_cache_jobs(jobs: int) -> None:
    """Declare that ``jobs`` processes (``degan-train --jobs``) may each cache the file at once."""
    global _CACHE_JOBS
    _CACHE_JOBS = max(1, int(jobs))


def cache_share() -> int:
    """Processes on this machine that may each hold their own cached copy at the same time:
    the ``--jobs`` workers (:func:`set_cache_jobs`) times torchrun's local ranks."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 1
    return _CACHE_JOBS * max(1, local)


def _load_cache(path: Path, nbytes: int, mode: str) -> np.ndarray | None:
    """All of ``samples/image`` as one array, or None (``mode`` "auto" and it would not fit).

    The budget is 60 % of the available memory minus 1 GiB, divided by :func:`cache_share`:
    the processes on this machine that may each load their own copy at the same time
    (``degan-train --jobs N``, torchrun's local ranks). They all see the same available
    memory when they start together, so each may take only its part.
    """
    key = (str(path.resolve()), path.stat().st_mtime)
    if key in _CACHE:
        return _CACHE[key]
    avail = available_memory()
    share = cache_share()
    budget = (int(0.6 * avail) - (1 << 30)) // share
    if nbytes > budget:
        if mode == "on":
            who = f", shared by {share} processes loading their own copies" if share > 1 else ""
            raise CacheMemoryError(
                path, f"samples/image needs {nbytes / 2**30:.2f} GiB in memory but only {avail / 2**30:.2f} GiB "
                      f"is available (at most 60% minus 1 GiB is used{who}); run with --set cache=off")
        return None
    with open_facekit(path) as fk:
        data = fk.images[()]
    _CACHE.clear()          # one file at a time
    _CACHE[key] = data
    return data


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
    (the memory budget is shared, see :func:`_load_cache`).
    """

    def __init__(self, info: FileInfo, indices: np.ndarray, identity: np.ndarray, cache: str = "auto") -> None:
        self.info = info
        self.indices = np.asarray(indices, np.int64)
        self.identity = identity
        self._h5: Any = None
        self._pid: int | None = None
        self._data: np.ndarray | None = None
        if cache != "off":
            self._data = _load_cache(info.path, info.image_bytes, cache)

    def __len__(self) -> int:
        return len(self.indices)

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

    def __getitems__(self, items: list[int]) -> dict[str, torch.Tensor]:
        rows = self.indices[np.asarray(items, np.int64)]
        img = torch.from_numpy(np.ascontiguousarray(self._read(rows)))
        img = img.unsqueeze(1) if img.ndim == 3 else img.permute(0, 3, 1, 2).contiguous()
        return {"image": img,
                "label": torch.from_numpy(self.info.label[rows].astype(np.int64)),
                "identity": torch.from_numpy(self.identity[rows].astype(np.int64)),
                "face": torch.from_numpy(self.info.face[rows].astype(np.int64)),
                "index": torch.from_numpy(rows)}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


Batch = dict[str, torch.Tensor]


def collate(batch: Any) -> Batch:
    """Collate for :class:`FacekitDataset`: passes ``__getitems__`` output through, stacks single items."""
    if isinstance(batch, dict):
        return batch
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}


def canvas_patch_size(info: FileInfo, cfg: DeganConfig) -> int:
    """Side of the crop taken inside the face box of a canvas file.

    ``cfg.patch_size`` if set; else the file's ``patch_size`` when it is smaller
    than the face box; else the paper's ratio (96 of a 112-px box).
    """
    box = info.face_box[2]
    if cfg.patch_size > 0:
        return min(cfg.patch_size, box)
    if 0 < info.patch_size < box:
        return info.patch_size
    return max(1, round(box * 96 / 112))


class BatchTransform:
    """uint8 images -> float network input in [-1, 1], (B, C, S, S), on the images' device.

    For canvas files (``augment none``) the output is the ``patch_size`` crop of
    the face box, resized to ``image_size``; with ``train=True`` and online
    augmentation each image gets a random rotation in ``[-rotate_deg, rotate_deg]``
    about the face centre, a random crop position inside the face box, a random
    mirror and optionally a random zoom, all in one ``grid_sample``. Stored
    patches (paper augmentation) are only resized; online augmentation on them
    rotates, mirrors and zooms the patch.
    """

    def __init__(self, info: FileInfo, cfg: DeganConfig, train: bool) -> None:
        self.image_size = cfg.image_size
        self.stored = info.stored_augmentation
        self.online = train and (cfg.augment == "online" or (cfg.augment == "auto" and not self.stored))
        self.rotate, self.crop_jitter = cfg.rotate_deg, cfg.crop_jitter
        self.flip, self.scale = cfg.flip, cfg.scale_jitter
        h = info.image_shape[0]
        self.canvas = h
        if self.stored:
            self.box = (0.0, 0.0, float(h))
            self.patch = float(h)
        else:
            self.box = tuple(float(v) for v in info.face_box)  # type: ignore[assignment]
            self.patch = float(canvas_patch_size(info, cfg))

    def theta(self, n: int, angle: torch.Tensor, ox: torch.Tensor, oy: torch.Tensor, flip: torch.Tensor,
              scale: torch.Tensor) -> torch.Tensor:
        """(n, 2, 3) affine maps from output coordinates to canvas coordinates (``affine_grid`` convention).

        ``angle`` degrees (counter-clockwise on screen), ``ox``/``oy`` patch offsets
        inside the face box in pixels, ``flip`` 0/1, ``scale`` zoom (1 = none).
        """
        bx, by, bs = self.box
        c = float(self.canvas)
        cfx, cfy = bx + bs / 2, by + bs / 2                  # face centre: rotation centre
        ccx, ccy = bx + ox + self.patch / 2, by + oy + self.patch / 2   # crop centre
        a = angle * math.pi / 180
        cos, sin = torch.cos(a), torch.sin(a)
        half = self.patch / 2 / scale
        sx = torch.where(flip > 0, -half, half)
        # canvas point q = Rinv (p - cf) + cf, p = cc + (half * F) u ; R rotates ccw on screen (y down)
        r00, r01, r10, r11 = cos, -sin, sin, cos          # inverse of a ccw-on-screen rotation
        dx, dy = ccx - cfx, ccy - cfy
        t = torch.zeros(n, 2, 3, dtype=torch.float32, device=angle.device)
        t[:, 0, 0] = r00 * sx * 2 / c
        t[:, 0, 1] = r01 * half * 2 / c
        t[:, 1, 0] = r10 * sx * 2 / c
        t[:, 1, 1] = r11 * half * 2 / c
        t[:, 0, 2] = (r00 * dx + r01 * dy + cfx) * 2 / c - 1
        t[:, 1, 2] = (r10 * dx + r11 * dy + cfy) * 2 / c - 1
        return t

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None,
                 view: tuple[int, float, int] | None = None) -> torch.Tensor:
        """Transform a batch (B, C, H, W) uint8 -> (B, C, S, S) float.

        ``view`` = (patch 0..4, angle, flip) renders one of the paper's 110 test
        views of a canvas file (ignored for stored patches).
        """
        n, dev = images.shape[0], images.device
        x = images.float().div_(127.5).sub_(1.0)
        zeros = torch.zeros(n, device=dev)
        slack = self.box[2] - self.patch
        angle, ox, oy, flip, scale = zeros, zeros + slack / 2, zeros + slack / 2, zeros, zeros + 1
        if self.online:
            def rand(lo: float, hi: float) -> torch.Tensor:
                return (torch.rand(n, generator=generator) * (hi - lo) + lo).to(dev)
            angle = rand(-self.rotate, self.rotate)
            if self.crop_jitter and slack > 0:
                ox, oy = rand(0, slack), rand(0, slack)
            if self.flip:
                flip = (torch.rand(n, generator=generator) < 0.5).float().to(dev)
            if self.scale > 0:
                scale = rand(1 - self.scale, 1 + self.scale)
        elif view is not None and not self.stored:
            p, a, f = view
            corners = [(slack / 2, slack / 2), (0, 0), (slack, 0), (0, slack), (slack, slack)]
            ox, oy = zeros + corners[p][0], zeros + corners[p][1]
            angle, flip = zeros + a, zeros + f
        if not self.online and view is None and self.stored and x.shape[-1] == self.image_size:
            return x
        theta = self.theta(n, angle, ox, oy, flip, scale)
        grid = torch.nn.functional.affine_grid(theta, [n, x.shape[1], self.image_size, self.image_size],
                                               align_corners=False)
        return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    @staticmethod
    def paper_views() -> list[tuple[int, float, int]]:
        """The 110 (patch, angle, flip) views of the paper's augmentation."""
        return [(p, a, f) for p in range(5) for a in PAPER_ANGLES for f in (0, 1)]

    @staticmethod
    def test_views(name: str) -> list[tuple[int, float, int] | None]:
        """Views scored per test face of a canvas file for ``cfg.test_views`` = ``name``
        (``None`` is the plain centre view)."""
        return {"all": BatchTransform.paper_views(), "mirror": [None, (0, 0.0, 1)]}.get(name, [None])
