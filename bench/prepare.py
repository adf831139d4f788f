#!/usr/bin/env python
"""Benchmark `facekit prepare` (JAFFE by default) against the landmark-only floor and a naive script.

Runs, in one process tree and one go:

* ``floor``: MediaPipe Face Landmarker alone (read + detect), in a pool of
  ``w`` worker processes started the same way ``prepare`` starts them;
  ``floorpublic`` the same in one process with MediaPipe's public result
  objects (what ``facekit`` did before reading the results as arrays);
* ``prepare``: the library's ``prepare()`` end to end (scan, detect, align,
  augment, HDF5 parts, assembly) with ``--augment none`` and ``paper`` (110x);
* ``naive``: a one-process script as people write it: per image read, detect,
  align, then each of the 110 samples rotated and cropped separately and written
  with its own HDF5 slice assignment.

Each measurement runs in a fresh Python process (as a ``facekit prepare`` call
does), timed from the call, not the interpreter start, and is the best of
``--repeat`` rounds; a round runs every measurement once, so slow drift of a
shared machine affects all of them alike. Each run also records its CPU seconds
(user + system of the process and its workers) and the machine's steal time: on
a shared VM the CPU-time ratios show prepare's own cost with far less noise than
the wall-clock ones, and steal shows how much other guests took. Prints JSON (rates in images/s, where an image is one source
photo) and the ratios the README quotes. Usage::

    python bench/prepare.py [--data ../shared/datasets/jaffe/jaffe] [--repeat 3]
    python bench/prepare.py --dataset folder --data ../shared/datasets/ckplus48/CK+48 \
        --subject-regex '^(S\d+)_' --repeat 1
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import h5py
import numpy as np

from _machine import cpu_seconds, machine, steal_seconds

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "jaffe" / "jaffe"
DEFAULT_MODEL = HERE.parent.parent / "shared" / "models" / "face_landmarker.task"


# --- floor: landmarks only, all workers -------------------------------------------------
_LM = None


def _floor_init(model: str, public: bool = False) -> None:
    global _LM
    from facekit.detect import Landmarker
    cv2.setNumThreads(1)
    _LM = Landmarker(model)
    if public:  # MediaPipe's own result objects instead of facekit's numpy view (see detect/_results.py)
        _LM._detect_arrays = None


def _floor_chunk(paths: list[str]) -> int:
    from facekit.imageio import read_image
    n = 0
    for p in paths:
        _LM.detect(read_image(p))
        n += 1
    return n


def floor(files: list[str], model: str, workers: int, public: bool = False) -> float:
    from facekit.prepare.config import auto_part_target
    t = time.perf_counter()
    chunks, i = [], 0
    while i < len(files):             # the same work units as prepare's parts (one frame per item here)
        n = auto_part_target(len(files) - i)
        chunks.append(files[i:i + n])
        i += n
    if workers == 1:
        _floor_init(model, public)
        n = sum(_floor_chunk(c) for c in chunks)
        _LM.close()
    else:
        from facekit.detect.landmarker import preload
        preload()  # as prepare does: import MediaPipe once, before forking
        with mp.get_context("fork").Pool(workers, initializer=_floor_init, initargs=(model, public)) as pool:
            n = sum(pool.imap_unordered(_floor_chunk, chunks))
    assert n == len(files)
    return time.perf_counter() - t


# --- facekit prepare --------------------------------------------------------------------
def run_prepare(args: argparse.Namespace, out: Path, augment: str, workers: int) -> tuple[float, dict]:
    from facekit.prepare import PrepareConfig, prepare
    cfg = PrepareConfig(dataset=args.dataset, root=args.data, out=out, augment=augment, workers=workers,
                        force=True, model=args.model, progress=False, options=_options(args))
    t = time.perf_counter()
    s = prepare(cfg)
    return time.perf_counter() - t, s.to_dict()


# --- naive sequential script --------------------------------------------------------------
def naive(files: list[str], model: str, out: Path) -> float:
    from facekit.align import align_face
    from facekit.augment import PAPER_ANGLES, patch_offsets
    from facekit.detect import Landmarker
    from facekit.imageio import read_image
    t = time.perf_counter()
    with Landmarker(model) as lm, h5py.File(out, "w") as f:
        ds = f.create_dataset("images", shape=(0, 96, 96), maxshape=(None, 96, 96), dtype=np.uint8,
                              chunks=True)
        labels = f.create_dataset("labels", shape=(0,), maxshape=(None,), dtype=np.int16, chunks=True)
        i = 0
        for p in files:
            img = read_image(p)
            a = align_face(img, lm.detect(img).landmarks, size=112, margin=14, grayscale=True)
            for angle in PAPER_ANGLES:
                for ox, oy in patch_offsets(112, 96):
                    for flip in (False, True):
                        m = cv2.getRotationMatrix2D((69.5, 69.5), angle, 1.0)
                        rot = cv2.warpAffine(a.image, m, (140, 140))
                        crop = rot[14 + oy:14 + oy + 96, 14 + ox:14 + ox + 96]
                        ds.resize(i + 1, axis=0)
                        ds[i] = crop[:, ::-1] if flip else crop
                        labels.resize(i + 1, axis=0)
                        labels[i] = 0
                        i += 1
    return time.perf_counter() - t


def _options(args: argparse.Namespace) -> dict:
    return {"subject_regex": args.subject_regex} if args.subject_regex else {}


def list_images(args: argparse.Namespace) -> list[str]:
    """The image files ``prepare`` would read (the adapter's scan and default frames)."""
    from facekit.datasets import get_dataset
    from facekit.frames import select_frames
    adapter = get_dataset(args.dataset, **_options(args))
    scan = adapter.scan(args.data)
    return [seq.frames[i].path for seq in scan.sequences
            for i in select_frames(len(seq.frames), adapter.default_frames)]


def measure(name: str, files: list[str], args: argparse.Namespace, tmp: Path) -> float:
    """Run one measurement ``kind_augment_workers`` in this process; best of --repeat."""
    kind, *rest = name.split("_")
    times = []
    for i in range(args.repeat if kind != "naive" else 1):
        if kind in ("floor", "floorpublic"):
            times.append(floor(files, args.model, int(rest[0]), public=kind == "floorpublic"))
        elif kind == "prepare":
            # a fresh output each time, as a first run has; the previous one is removed untimed
            for old in tmp.glob("p*.h5*"):
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            os.sync()
            times.append(run_prepare(args, tmp / f"p{i}.h5", rest[0], int(rest[1]))[0])
        else:
            times.append(naive(files, args.model, tmp / "naive.h5"))
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--dataset", default="jaffe", help="adapter name [jaffe]")
    ap.add_argument("--subject-regex", default=None, help="folder adapter option")
    ap.add_argument("--model", default=os.environ.get("FACEKIT_MODEL", str(DEFAULT_MODEL)))
    ap.add_argument("--repeat", type=int, default=3, help="best of N for each measurement")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder [default: system temp]")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one measurement, print seconds
    args = ap.parse_args()
    files = list_images(args)
    if not files:
        raise SystemExit(f"no images found in {args.data}")
    n = len(files)
    if args.one:
        # imports warm, as the docstring says: MediaPipe's import (~0.4 s) is paid by every
        # variant alike and is not what this benchmark compares
        import facekit.prepare  # noqa: F401
        from facekit.detect.landmarker import preload
        preload()
        tmp = Path(tempfile.mkdtemp(prefix="facekit-bench-", dir=args.tmp))
        try:
            cpu0, steal0 = cpu_seconds(), steal_seconds()
            sec = measure(args.one, files, args, tmp)
            cpu, steal = cpu_seconds() - cpu0, steal_seconds() - steal0
            size = sum(f.stat().st_size for d in tmp.glob("p*.h5.parts") for f in d.iterdir())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(json.dumps({"seconds": sec, "bytes": size, "cpu_seconds": cpu, "steal_seconds": steal}))
        return
    W = args.workers
    names = ["floor_1", "floorpublic_1", f"floor_{W}"] + [f"prepare_{a}_{w}" for a in ("none", "paper") for w in sorted({1, W})] \
        + ["naive_paper_1"]
    r: dict[str, float] = {}
    sizes: dict[str, int] = {}
    runs: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    steal: dict[str, list[float]] = {name: [] for name in names}
    # Rounds interleave the measurements (floor, prepare, ... then again), each run in a fresh
    # process: drift of a shared machine then hits every measurement alike instead of one block.
    for rnd in range(args.repeat):
        for name in names:
            if name.startswith("naive") and rnd:
                continue  # slow and far from the others: once
            cmd = [sys.executable, __file__, "--one", name, "--data", str(args.data), "--model", args.model,
                   "--repeat", "1", "--dataset", args.dataset] + (["--tmp", str(args.tmp)] if args.tmp else []) \
                + (["--subject-regex", args.subject_regex] if args.subject_regex else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            runs[name].append(res["seconds"])
            cpu[name].append(res["cpu_seconds"])
            steal[name].append(res["steal_seconds"])
            r[name], sizes[name] = min(runs[name]), res["bytes"]
            print(f"round {rnd + 1}/{args.repeat} {name:<18} {res['seconds']:7.3f} s  "
                  f"{n / res['seconds']:7.1f} images/s  cpu {res['cpu_seconds']:6.2f} s  steal {res['steal_seconds']:5.2f} s",
                  file=sys.stderr)
    size = sizes[f"prepare_paper_{W}"]
    pairs = {  # ratio name: (numerator, denominator); > 1 is faster than the reference
        "prepare_none_vs_floor": (f"floor_{W}", f"prepare_none_{W}"),
        "prepare_paper_vs_floor": (f"floor_{W}", f"prepare_paper_{W}"),
        "prepare_paper_workers_speedup": ("prepare_paper_1", f"prepare_paper_{W}"),
        "prepare_none_workers_speedup": ("prepare_none_1", f"prepare_none_{W}"),
        "floor_workers_speedup": ("floor_1", f"floor_{W}"),
        # facekit's numpy view of MediaPipe's results against MediaPipe's public result objects
        "floor_vs_public_results": ("floorpublic_1", "floor_1"),
    }
    paired = {k: [round(a / b, 3) for a, b in zip(runs[num], runs[den])] for k, (num, den) in pairs.items()}
    rate = {k: round(n / v, 1) for k, v in r.items()}
    result = {
        "benchmark": "prepare", "dataset": args.dataset, "data": str(args.data), "images": n, "workers": W, "repeat": args.repeat,
        "machine": machine(),
        "seconds": {k: round(v, 3) for k, v in r.items()},
        "images_per_second": rate,
        "ratios": {  # of the best times
            **{k: round(r[num] / r[den], 3) for k, (num, den) in pairs.items()},
            "prepare_paper_vs_naive": round(r["naive_paper_1"] / r[f"prepare_paper_{W}"], 3),
        },
        # the same ratios within each round (a round's measurements run within seconds of each other),
        # and their median: less sensitive than the ratio of best times to one lucky run
        "ratios_per_round": paired,
        "ratios_median_of_rounds": {k: round(statistics.median(v), 3) for k, v in paired.items()},
        "all_seconds": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        # CPU seconds (user + system, all processes of the run) are far less sensitive than wall
        # time to other guests of a shared VM: prepare's own CPU cost on top of the floor's
        "all_cpu_seconds": {k: [round(x, 3) for x in v] for k, v in cpu.items()},
        "cpu_ratios_median_of_rounds": {
            k: round(statistics.median(a / b for a, b in zip(cpu[num], cpu[den])), 3)
            for k, (num, den) in pairs.items() if k.endswith("vs_floor")},
        # machine-wide steal time during each run (CPU taken by other guests of the host)
        "all_steal_seconds": {k: [round(x, 3) for x in v] for k, v in steal.items()},
        "paper_output_bytes": size,
        "load_average_after": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
