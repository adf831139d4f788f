#!/usr/bin/env python
"""Wall time of the `cpu` preset's cross-validation on this machine, for DE-GAN, the baseline and the
plain CNN: trains folds 0 and 1 of DATA at once (``--jobs 2 --threads 1``, as bench/cv_seeds.sh
does) and scales the pair's wall time by k/2 to the whole CV. Subject-disjoint folds differ by a few
faces; the JSON records each fold's test size. Prints JSON; ``--out`` also writes it.

    python bench/cv_timing.py .bench/cv_seeds/ckplus48_s1.h5 --out bench/results/cv_timing_cpu.json

Run it on a quiet machine: the load averages before and after each run are recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import loadavg, machine  # noqa: E402

METHODS = {
    "degan": ["--method", "degan"],
    "baseline": ["--method", "baseline"],
    "cnn": ["--method", "baseline", "--set", "baseline.network=cnn3", "--set", "arch.width=0.5",
            "--set", "baseline.epochs=30"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a prepared CK+48 file with 10 folds")
    ap.add_argument("--methods", default="degan,baseline,cnn")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from facekit.store import open_facekit
    attrs = open_facekit(args.data).fold_attrs
    k = int(attrs["k"])
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    res: dict[str, object] = {"benchmark": "cv_timing", "data": args.data.name, "k": k, "machine": machine(),
                              "how": "folds 0 and 1 trained at once (--jobs 2 --threads 1); whole CV = pair x k/2",
                              "test_faces_per_fold": json.loads(str(attrs.get("samples_per_fold", "null"))),
                              "methods": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.methods.split(","):
            before = loadavg()
            t = time.perf_counter()
            subprocess.run(["degan-train", str(args.data), "--fold", "0", "--fold", "1", "--preset", "cpu",
                            "--seed", str(args.seed), "-o", str(Path(tmp) / name), "--jobs", "2", "--threads", "1",
                            "-q", *METHODS[name]], check=True, env=env, stdout=subprocess.DEVNULL)
            pair = time.perf_counter() - t
            m = json.loads((Path(tmp) / name / "metrics.json").read_text())
            res["methods"][name] = {"pair_seconds": round(pair, 1), "cv_minutes_estimate": round(pair * k / 2 / 60, 1),
                                    "fold_seconds": m.get("fold_seconds"), "folds": m.get("folds"),
                                    "load_before": before, "load_after": loadavg()}
            print(f"{name:9s} 2 folds in {pair:6.1f} s -> about {pair * k / 2 / 60:5.1f} min for {k} folds",
                  file=sys.stderr)
    res["seed_minutes_estimate"] = round(sum(v["cv_minutes_estimate"] for v in res["methods"].values()), 1)
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
