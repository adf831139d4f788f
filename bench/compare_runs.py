#!/usr/bin/env python
"""Compare degan runs face by face (same data file and folds): paired tests and ensembles.

Reads ``fold_XX/predictions.csv`` of each run (written by ``degan-train``) and prints JSON:

* per run (and per ensemble): mean and std of the fold accuracies, pooled accuracy;
* per pair: faces both got right, only the first, only the second; McNemar's exact
  test on those discordant faces (two-sided binomial p-value); the per-fold
  differences, their mean and paired standard error;
* ``--ensemble NAME=A,B``: the mean of the runs' class probabilities per face
  (e.g. two seeds of one model), compared like a run.

``NAME=RUN_DIR@EVAL`` reads the re-evaluation ``RUN_DIR/evals/EVAL/fold_XX/predictions.csv``
instead (``degan-eval RUN --test-views mirror --geometry-weight 0.5`` writes
``evals/mirror_geo0.5/``: ``NAME=RUN@mirror_geo0.5``; ``degan-eval RUN`` writes ``evals/own/``,
which gives runs made before ``predictions.csv`` existed one: ``NAME=RUN@own``). Re-evaluations
made by earlier versions, ``fold_XX/predictions_EVAL.csv`` in the run, are read too.

Usage::

    python bench/compare_runs.py degan=runs/degan baseline=runs/baseline \\
        degan-s1=runs/degan-s1 baseline-s1=runs/baseline-s1 \\
        --ensemble degan-2seeds=degan,degan-s1 --ensemble baseline-2seeds=baseline,baseline-s1
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from degan.predict import read_predictions  # noqa: E402

Run = dict[int, dict[int, np.ndarray]]      # fold -> face -> probabilities; label kept aside


def prediction_files(run_dir: Path, name: str = "") -> list[Path]:
    """The per-fold ``predictions.csv`` of a run, or (``name``) of its re-evaluation
    ``evals/<name>/`` (or, as earlier versions wrote it, ``fold_XX/predictions_<name>.csv``)."""
    if not name:
        files = sorted(run_dir.glob("fold_*/predictions.csv"))
        if not files:
            raise SystemExit(f"{run_dir}: no fold_XX/predictions.csv (run `degan-eval {run_dir}` and read "
                             f"{run_dir}@own)")
        return files
    files = sorted((run_dir / "evals" / name).glob("fold_*/predictions.csv"))
    files = files or sorted(run_dir.glob(f"fold_*/predictions_{name}.csv"))
    if not files:
        raise SystemExit(f"{run_dir}: no re-evaluation {name!r} (evals/{name}/fold_XX/predictions.csv)")
    return files


def load_run(run_dir: Path, name: str = "") -> tuple[Run, dict[int, str], list[str]]:
    """Per fold and face, the class probabilities; the true label name per face; class names.
    ``name``: read the re-evaluation of that name (:func:`prediction_files`)."""
    folds: Run = {}
    truth: dict[int, str] = {}
    names: list[str] = []
    files = prediction_files(run_dir, name)
    for f in files:
        rows = read_predictions(f)
        names = [k[2:] for k in rows[0] if k.startswith("p_")]
        fold = int(f.parent.name.split("_")[1])            # fold_XX/
        folds[fold] = {int(r["face"]): np.array([float(r[f"p_{n}"]) for n in names]) for r in rows}
        truth.update({int(r["face"]): r["label"] for r in rows})
    return folds, truth, names


def correct(run: Run, truth: dict[int, str], names: list[str]) -> dict[int, dict[int, bool]]:
    return {fold: {face: names[int(np.argmax(p))] == truth[face] for face, p in faces.items()}
            for fold, faces in run.items()}


def summary(ok: dict[int, dict[int, bool]]) -> dict[str, float]:
    accs = np.array([100 * np.mean(list(v.values())) for _, v in sorted(ok.items())])
    pooled = 100 * np.mean([x for v in ok.values() for x in v.values()])
    return {"folds": [round(float(a), 2) for a in accs], "mean": round(float(accs.mean()), 2),
            "std": round(float(accs.std()), 2), "pooled": round(float(pooled), 2)}


def paired(a: dict[int, dict[int, bool]], b: dict[int, dict[int, bool]]) -> dict[str, float]:
    folds = sorted(set(a) & set(b))
    both = only_a = only_b = 0
    diffs = []
    for fold in folds:
        faces = sorted(set(a[fold]) & set(b[fold]))
        xa = np.array([a[fold][f] for f in faces])
        xb = np.array([b[fold][f] for f in faces])
        both += int((xa & xb).sum())
        only_a += int((xa & ~xb).sum())
        only_b += int((~xa & xb).sum())
        diffs.append(100 * (xa.mean() - xb.mean()))
    d = np.array(diffs)
    n_disc = only_a + only_b
    p = binomtest(only_a, n_disc, 0.5).pvalue if n_disc else 1.0
    return {"folds": len(folds), "both_right": both, "only_first": only_a, "only_second": only_b,
            "mcnemar_exact_p": round(float(p), 4), "mean_fold_difference": round(float(d.mean()), 2),
            "paired_se": round(float(d.std(ddof=1) / math.sqrt(len(d))), 2) if len(d) > 1 else None,
            "folds_first_ahead": int((d > 0).sum()), "folds_second_ahead": int((d < 0).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR[@EVAL]")
    ap.add_argument("--ensemble", action="append", default=[], metavar="NAME=A,B[,...]",
                    help="mean class probabilities of named runs")
    args = ap.parse_args()
    runs: dict[str, Run] = {}
    truth: dict[int, str] = {}
    names: list[str] = []
    for spec in args.runs:
        name, _, path = spec.partition("=")
        path, _, suffix = path.partition("@")
        runs[name], t, names = load_run(Path(path), suffix)
        for face, label in t.items():
            if truth.setdefault(face, label) != label:
                raise SystemExit(f"{path}: face {face} has another label than in the other runs (other data file?)")
    for spec in args.ensemble:
        name, _, members = spec.partition("=")
        parts = [runs[m] for m in members.split(",")]
        folds = sorted(set.intersection(*(set(p) for p in parts)))
        runs[name] = {f: {face: np.mean([p[f][face] for p in parts], axis=0) for face in parts[0][f]}
                      for f in folds}
    ok = {name: correct(r, truth, names) for name, r in runs.items()}
    out = {"runs": {name: summary(v) for name, v in ok.items()},
           "pairs": {f"{a} vs {b}": paired(ok[a], ok[b]) for a, b in itertools.combinations(ok, 2)}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
