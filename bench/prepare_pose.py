#!/usr/bin/env python
"""What storing head pose and blendshapes costs `facekit prepare` (JAFFE by default).

``prepare`` asks the landmarker for each face's facial transformation matrix
and its 52 blendshape scores (a second network) and stores them as
``faces/pose`` and ``faces/blendshapes``; ``PrepareConfig(pose_blendshapes=False)``
does not.
This runs both, with ``--augment none`` and ``paper``, with 1 and ``--workers``
processes, each run in a fresh Python process (imports warm, timed from the
``prepare()`` call), in rounds: each round runs every setting once, with and
without pose next to each other and in alternating order, so that the drift of
a shared machine hits both alike. Each run records its wall time, its CPU
seconds (user + system of the process and its worker processes: far less
sensitive than wall time to other load on the machine) and the machine's steal
time. Prints JSON: per setting the median seconds and CPU seconds with and
without, and the ratios with/without per round and their median (> 1: pose and
blendshapes cost that much more). Usage::

    python bench/prepare_pose.py [--data ../shared/datasets/jaffe/jaffe] [--rounds 5] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_seconds, machine, steal_seconds

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "jaffe" / "jaffe"
DEFAULT_MODEL = HERE.parent.parent / "shared" / "models" / "face_landmarker.task"


def one(args: argparse.Namespace) -> None:
    """Run one ``prepare`` (``--one AUGMENT,WORKERS,POSE``) in this process; print its numbers."""
    import facekit.prepare  # noqa: F401  (imports warm: MediaPipe's import is not what is compared)
    from facekit.detect.landmarker import preload
    from facekit.prepare import PrepareConfig, prepare
    preload()
    augment, workers, pose = args.one.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="facekit-bench-pose-", dir=args.tmp))
    try:
        cfg = PrepareConfig(dataset=args.dataset, root=args.data, out=tmp / "o.h5", augment=augment,
                            workers=int(workers), model=args.model, progress=False,
                            pose_blendshapes=pose == "pose")
        cpu0, steal0 = cpu_seconds(), steal_seconds()
        t = time.perf_counter()
        s = prepare(cfg)
        sec = time.perf_counter() - t
        cpu, steal = cpu_seconds() - cpu0, steal_seconds() - steal0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"seconds": sec, "cpu_seconds": cpu, "steal_seconds": steal, "frames": s.frames,
                      "faces": s.faces}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--dataset", default="jaffe", help="adapter name [jaffe]")
    ap.add_argument("--model", default=os.environ.get("FACEKIT_MODEL", str(DEFAULT_MODEL)))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder [default: system temp]")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one run, print its numbers
    args = ap.parse_args()
    if args.one:
        one(args)
        return
    settings = [(a, w) for a in ("none", "paper") for w in sorted({1, args.workers})]
    runs: dict[str, dict[str, list[float]]] = {}
    loads = []
    faces = None
    for rnd in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for augment, workers in settings:
            order = ("plain", "pose") if rnd % 2 == 0 else ("pose", "plain")
            for pose in order:
                name = f"{augment}_{workers}_{pose}"
                cmd = [sys.executable, __file__, "--one", f"{augment},{workers},{pose}", "--data", str(args.data),
                       "--dataset", args.dataset, "--model", args.model] + \
                    (["--tmp", str(args.tmp)] if args.tmp else [])
                res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                                 .strip().splitlines()[-1])
                faces = res["faces"]
                r = runs.setdefault(name, {"seconds": [], "cpu_seconds": [], "steal_seconds": []})
                for k in r:
                    r[k].append(res[k])
                print(f"round {rnd + 1}/{args.rounds} {name:<16} {res['seconds']:7.3f} s  cpu "
                      f"{res['cpu_seconds']:6.2f} s  steal {res['steal_seconds']:5.2f} s", file=sys.stderr)
    result: dict = {"benchmark": "prepare_pose", "dataset": args.dataset, "data": str(args.data), "faces": faces,
                    "rounds": args.rounds, "workers": args.workers, "machine": machine(),
                    "load_average_per_round": [round(x, 2) for x in loads], "settings": {}}
    for augment, workers in settings:
        plain, pose = runs[f"{augment}_{workers}_plain"], runs[f"{augment}_{workers}_pose"]
        wall = [b / a for a, b in zip(plain["seconds"], pose["seconds"])]
        cpu = [b / a for a, b in zip(plain["cpu_seconds"], pose["cpu_seconds"])]
        result["settings"][f"{augment}, {workers} worker{'s' if workers > 1 else ''}"] = {
            "median_seconds": {"without": round(statistics.median(plain["seconds"]), 3),
                               "with": round(statistics.median(pose["seconds"]), 3)},
            "median_cpu_seconds": {"without": round(statistics.median(plain["cpu_seconds"]), 3),
                                   "with": round(statistics.median(pose["cpu_seconds"]), 3)},
            "ratio_with_over_without": {
                "wall_median_of_rounds": round(statistics.median(wall), 4),
                "cpu_median_of_rounds": round(statistics.median(cpu), 4),
                "wall_per_round": [round(x, 3) for x in wall], "cpu_per_round": [round(x, 3) for x in cpu]},
            "all_seconds": {k: [round(x, 3) for x in v["seconds"]] for k, v in (("without", plain), ("with", pose))},
            "all_cpu_seconds": {k: [round(x, 3) for x in v["cpu_seconds"]]
                                for k, v in (("without", plain), ("with", pose))},
            "all_steal_seconds": {k: [round(x, 3) for x in v["steal_seconds"]]
                                  for k, v in (("without", plain), ("with", pose))},
        }
    cpu_all = [r["ratio_with_over_without"]["cpu_median_of_rounds"] for r in result["settings"].values()]
    result["cpu_ratio_median_over_settings"] = round(statistics.median(cpu_all), 4)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
