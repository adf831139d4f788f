#!/usr/bin/env python
"""Summarise cross-validation runs over several seeds: accuracy per method (mean and std over
folds, over seeds, over all folds of all seeds), the image model alone where a geometric expert
was fused, and face-by-face comparisons between methods (McNemar's exact test per seed and
summed over seeds).

Each run is given as ``METHOD:SEED=RUN_DIR``; runs of one seed must share their data file and
folds (every face is scored once per seed). Prints JSON.

    python bench/seeds_summary.py degan:1=runs/ck-s1-degan baseline:1=runs/ck-s1-baseline \\
        degan:2=runs/ck-s2-degan baseline:2=runs/ck-s2-baseline --out summary.json

``--walltimes FILE`` adds each run's wall time and machine load from lines
``NAME rc=0 wall=SECONDS load_before=A B C load_after=A B C resumed=0|1`` (NAME: the run
directory's name), as bench/cv_seeds.sh writes them. ``--protocol``, ``--note``,
``--name METHOD=TEXT`` and ``--seeds-planned`` describe the measurement in the JSON. The seeds
in which every method scored all k folds are ``seeds_complete``; the means and stds over seeds
and over all folds, and the summed McNemar test, cover those seeds only (every seed while none
is complete); each seed's own numbers are listed either way. The summed McNemar test treats the seeds' face-by-face
disagreements as independent, which they are not (the same faces in every seed):
read it next to the per-seed tests, not instead of them.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

Faces = dict[int, tuple[int, bool]]          # face -> (fold, correct)
IMAGE_ALONE = " (image model alone)"


def read_run(run_dir: Path, column: str = "pred") -> tuple[Faces, dict[str, object]]:
    """Per test face its fold and whether ``column`` (``pred``, ``pred_image``, ...) equals the label."""
    faces: Faces = {}
    files = sorted(run_dir.glob("fold_*/predictions.csv"))
    if not files:
        raise SystemExit(f"{run_dir}: no fold_XX/predictions.csv")
    for f in files:
        fold = int(f.parent.name.split("_")[1])
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh):
                if column not in row:
                    return {}, {}
                faces[int(row["face"])] = (fold, row[column] == row["label"])
    meta: dict[str, object] = {}
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        meta = {"total_fold_seconds": m.get("total_fold_seconds"), "n_folds": m.get("n_folds")}
    meta["folds_scored"] = len(files)
    config = run_dir / "config.json"
    if config.is_file():
        meta["k"] = json.loads(config.read_text()).get("k")
    return faces, meta


def run_complete(meta: dict[str, object]) -> bool:
    """Whether a run scored all k folds of its file: config.json's k folds, each with its
    predictions.csv, and metrics.json aggregates all k."""
    k = meta.get("k")
    return k is not None and meta.get("folds_scored") == k and meta.get("n_folds") == k


def fold_accuracies(faces: Faces) -> list[float]:
    folds = sorted({f for f, _ in faces.values()})
    return [100 * float(np.mean([ok for f, ok in faces.values() if f == fold])) for fold in folds]


def mcnemar(a: Faces, b: Faces) -> dict[str, float]:
    common = sorted(set(a) & set(b))
    xa = np.array([a[f][1] for f in common])
    xb = np.array([b[f][1] for f in common])
    only_a, only_b = int((xa & ~xb).sum()), int((~xa & xb).sum())
    n = only_a + only_b
    return {"faces": len(common), "only_first": only_a, "only_second": only_b,
            "mcnemar_exact_p": round(float(binomtest(only_a, n, 0.5).pvalue), 4) if n else 1.0}


def read_walltimes(path: Path | None) -> dict[str, dict[str, object]]:
    """Run name -> wall seconds summed over the sittings of a resumed run, the number of sittings,
    and the last sitting's exit status, load before/after and whether it was a resume."""
    out: dict[str, dict[str, object]] = {}
    if path is None or not path.is_file():
        return out
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 3 or not parts[2].startswith("wall="):
            continue
        rec = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        load_before = line.split("load_before=")[1].split(" load_after=")[0].split()
        load_after = line.split("load_after=")[1].split(" resumed=")[0].split()
        prev = out.get(parts[0])
        out[parts[0]] = {"wall_seconds": int(rec["wall"]) + (prev["wall_seconds"] if prev else 0),
                         "sittings": 1 + (prev["sittings"] if prev else 0), "rc": int(rec["rc"]),
                         "load_before": [float(x) for x in load_before],
                         "load_after": [float(x) for x in load_after], "resumed": rec.get("resumed") == "1"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="METHOD:SEED=RUN_DIR")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--walltimes", type=Path, default=None, help="wall-time lines of bench/cv_seeds.sh")
    ap.add_argument("--dataset", default=None, help="dataset name recorded in the JSON")
    ap.add_argument("--protocol", default=None, help="how the runs were made, recorded in the JSON")
    ap.add_argument("--note", default=None, help="anything else a reader of the JSON must know")
    ap.add_argument("--name", action="append", default=[], metavar="METHOD=TEXT",
                    help="what a method is (repeatable)")
    ap.add_argument("--seeds-planned", type=int, nargs="+", default=None, metavar="SEED")
    ap.add_argument("--markdown", action="store_true", help="print the accuracy table as markdown instead of JSON")
    args = ap.parse_args()
    names = dict(n.partition("=")[::2] for n in args.name)
    walls = read_walltimes(args.walltimes)
    table: dict[str, dict[int, Faces]] = {}
    info: dict[str, dict[int, dict[str, object]]] = {}
    for spec in args.runs:
        key, _, path = spec.partition("=")
        method, _, seed = key.partition(":")
        faces, meta = read_run(Path(path))
        table.setdefault(method, {})[int(seed)] = faces
        name = Path(path).name
        info.setdefault(method, {})[int(seed)] = {"run": name, **meta, **walls.get(name, {})}
        alone, _ = read_run(Path(path), "pred_image")
        if alone:
            table.setdefault(f"{method}{IMAGE_ALONE}", {})[int(seed)] = alone
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import machine
    methods = [m for m in table if not m.endswith(IMAGE_ALONE)]
    complete = sorted(s for s in set.intersection(*(set(table[m]) for m in methods))
                      if all(run_complete(info[m][s]) for m in methods))
    out: dict[str, object] = {"dataset": args.dataset, "protocol": args.protocol,
                              "seeds_planned": args.seeds_planned or complete, "seeds_complete": complete,
                              "methods_named": {m: names.get(m, m) for m in methods}, "note": args.note,
                              "machine": machine(), "methods": {}, "pairs": {}}
    # the aggregates cover the seeds every method completed (all seeds while none is complete), so
    # that the methods are compared on the same folds
    summed = set(complete) or set.union(*(set(v) for v in table.values()))
    for method, seeds in table.items():
        per_seed = {}
        all_folds: list[float] = []
        means: list[float] = []
        for seed, faces in sorted(seeds.items()):
            accs = fold_accuracies(faces)
            if seed in summed:
                all_folds += accs
                means.append(float(np.mean(accs)))
            per_seed[str(seed)] = {"folds": [round(a, 2) for a in accs], "mean": round(float(np.mean(accs)), 2),
                                   "std": round(float(np.std(accs)), 2),
                                   "pooled": round(100 * float(np.mean([ok for _, ok in faces.values()])), 2),
                                   "complete": seed in complete, **info.get(method, {}).get(seed, {})}
        out["methods"][method] = {
            "seeds": per_seed, "seeds_summed": [s for s in sorted(seeds) if s in summed],
            "mean_of_seeds": round(float(np.mean(means)), 2),
            "std_over_seeds": round(float(np.std(means, ddof=1)), 2) if len(means) > 1 else None,
            "mean_over_all_folds": round(float(np.mean(all_folds)), 2),
            "std_over_all_folds": round(float(np.std(all_folds)), 2), "n_folds": len(all_folds)}
    for a, b in itertools.combinations(table, 2):
        seeds = sorted(set(table[a]) & set(table[b]))
        if not seeds:
            continue
        per = {str(s): mcnemar(table[a][s], table[b][s]) for s in seeds}
        oa = sum(v["only_first"] for s, v in per.items() if int(s) in summed)
        ob = sum(v["only_second"] for s, v in per.items() if int(s) in summed)
        out["pairs"][f"{a} vs {b}"] = {
            "per_seed": per, "summed_only_first": oa, "summed_only_second": ob,
            "summed_mcnemar_exact_p": round(float(binomtest(oa, oa + ob, 0.5).pvalue), 4) if oa + ob else 1.0}
    text = json.dumps(out, indent=2)
    print(markdown(out) if args.markdown else text)
    if args.out:
        args.out.write_text(text + "\n")


def markdown(summary: dict) -> str:
    """The accuracy table as markdown: per method the mean ± std over all folds of all seeds, the
    std of the seeds' means, and the image model alone where there is one."""
    methods = summary["methods"]
    rows = ["| method | seeds | accuracy (%), mean ± std over folds and seeds | std of the seeds' means "
            "| image model alone |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, m in methods.items():
        if name.endswith(IMAGE_ALONE):
            continue
        alone = methods.get(f"{name}{IMAGE_ALONE}")
        sd = m["std_over_seeds"]
        sd_text = "" if sd is None else f"{sd:.2f}"
        alone_text = ("" if alone is None else
                      f"{alone['mean_over_all_folds']:.2f} ± {alone['std_over_all_folds']:.2f}")
        rows.append(f"| {name} | {len(m['seeds_summed'])} | {m['mean_over_all_folds']:.2f} ± {m['std_over_all_folds']:.2f} "
                    f"| {sd_text} | {alone_text} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
