#!/usr/bin/env python
"""Choose HDF5 chunking and compression for ``samples/image`` by measurement.

Takes real augmented samples (from a facekit file, default: prepares JAFFE with
the paper's 110x augmentation into a temp folder) and, for each chunk size and
compression, measures:

* write: appending one face (110 samples) at a time, as the part writer does;
* size on disk;
* random read: batches of 150 random samples (a training batch), samples/s;
* sequential read: the whole array, samples/s (in-memory cache, evaluation).

Prints JSON. Usage::

    python bench/h5_layout.py [--file out.h5] [--faces 213]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
JAFFE = HERE.parent.parent / "shared" / "datasets" / "jaffe" / "jaffe"
MODEL = HERE.parent.parent / "shared" / "models" / "face_landmarker.task"


def _drop_cache(path: Path) -> None:
    """Best effort: evict the file from the page cache so reads hit the disk."""
    try:
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    except (AttributeError, OSError):
        pass


def measure(samples: np.ndarray, path: Path, chunk: int, compression: str | None, level: int | None,
            rng: np.random.Generator) -> dict:
    n = len(samples)
    kw = {"compression": compression, "compression_opts": level} if compression else {}
    t = time.perf_counter()
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("x", shape=(0, *samples.shape[1:]), maxshape=(None, *samples.shape[1:]),
                              dtype=np.uint8, chunks=(chunk, *samples.shape[1:]), **kw)
        for i in range(0, n, 110):
            block = samples[i:i + 110]
            ds.resize(i + len(block), axis=0)
            ds[i:i + len(block)] = block
    write = time.perf_counter() - t
    size = path.stat().st_size
    _drop_cache(path)
    batches = [np.sort(rng.choice(n, 150, replace=False)) for _ in range(40)]
    with h5py.File(path, "r") as f:
        ds = f["x"]
        t = time.perf_counter()
        for b in batches:
            ds[b]
        rand = time.perf_counter() - t
        t = time.perf_counter()
        ds[:]
        seq = time.perf_counter() - t
    return {"chunk": chunk, "compression": f"{compression}{'-' + str(level) if level else ''}" if compression
            else "none", "write_mb_s": round(samples.nbytes / write / 1e6, 1), "bytes": size,
            "ratio": round(samples.nbytes / size, 2),
            "random_batch150_samples_s": round(40 * 150 / rand), "sequential_samples_s": round(n / seq)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, help="facekit file with paper augmentation [default: prepare JAFFE]")
    ap.add_argument("--faces", type=int, default=213)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facekit-h5-"))
    try:
        src = args.file
        if src is None:
            from facekit.prepare import PrepareConfig, prepare
            src = tmp / "jaffe.h5"
            prepare(PrepareConfig("jaffe", JAFFE, src, model=os.environ.get("FACEKIT_MODEL", str(MODEL)),
                                  progress=False))
        with h5py.File(src, "r") as f:
            samples = f["samples/image"][: args.faces * 110]
        rng = np.random.default_rng(0)
        rows = []
        for comp, level in ((None, None), ("lzf", None), ("gzip", 1), ("gzip", 4)):
            for chunk in (16, 64, 110, 256):
                rows.append(measure(samples, tmp / "t.h5", chunk, comp, level, rng))
                print(json.dumps(rows[-1]), flush=True, file=os.sys.stderr)
        print(json.dumps({"benchmark": "h5_layout", "samples": len(samples), "sample_shape": samples.shape[1:],
                          "raw_bytes": samples.nbytes, "results": rows}, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
