#!/usr/bin/env python
"""Fixed-seed degan runs whose outputs must not change when the code is restructured.

Each scenario trains a small cross-validation (or re-evaluates one) through the command line
on synthetic facekit files made here with fixed seeds, then keeps what a run reports:
every ``predictions*.csv`` (bytes), every ``metrics*.json`` and ``history.json`` (without
wall-clock times), and a SHA-256 of every tensor of every fold checkpoint (networks and the
geometric expert).

    python bench/degan_regression.py record /tmp/ref22           # on the reference code
    python bench/degan_regression.py check /tmp/ref22            # later code: JSON report, exit 1 on a difference
    python bench/degan_regression.py check /tmp/ref22 --only tiny-degan,tiny-baseline
    python bench/degan_regression.py compact /tmp/ref22 tests/degan/reference --only tiny-degan,tiny-baseline

``compact`` keeps one digest per checkpoint instead of one per tensor (the form stored in the
repository for ``tests/degan/test_regression.py``). Bit-identical weights need the same torch
build and CPU kind; a reference records the torch version it was made with.

Scenarios: ``tiny-*`` (the ``tiny`` preset, DE-GAN and baseline), ``cpu-*`` (the ``cpu``
preset's options: reconstruction, expression head, geometric expert, cosine schedule,
channels_last, dropout, label smoothing, zoom; two folds at a time), ``extra-*`` (mixup,
synthesised stage-2 images, G_en fine-tuning, logit fusion, own identity codes, the plain
CNN baseline, mirror test views), ``stored-degan`` (a file with stored augmented copies, all
110-style test views), ``pretrain``, ``from-stage1`` and ``reeval`` (degan-eval with other test
views and the geometric expert).

A re-evaluation writes into ``RUN/evals/<name>/`` (``metrics.json``,
``fold_XX/predictions.csv``) where the reference code wrote ``RUN/metrics_<name>.json`` and
``RUN/fold_XX/predictions_<name>.csv``; snapshots name those files as the reference did
(:func:`reference_name`), so the same bytes compare equal.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: keys whose values are wall-clock measurements (never compared)
TIMING_KEYS = {"seconds", "img_per_s", "fold_seconds", "total_fold_seconds", "wall_seconds_this_invocation"}
#: keys renamed since the reference was recorded (compared under the new name)
RENAMED_KEYS = {"model": "method"}
#: keys not compared: ``test_acc`` (a per-epoch test accuracy that references may hold and runs do
#: not record, so that nothing can be chosen on test folds) and ``deviations`` (the run's departures from the
#: paper, which metrics.json records since; they describe the settings, not a result)
IGNORED_KEYS = {"test_acc", "deviations"}

TINY = ["--preset", "tiny", "--epochs", "6", "--seed", "0", "--threads", "2", "--set", "batch_size=8",
        "--set", "lr=0.003"]
CPU = ["--preset", "cpu", "--epochs", "6,6", "--seed", "0", "--jobs", "2", "--threads", "1"]
EXTRA = TINY + ["--set", "mixup=0.4", "--set", "test_views=mirror"]
EXTRA_DEGAN = ["--set", "synth_fraction=0.5", "--set", "encoder_lr_scale=0.5", "--set", "fuse=logits",
               "--set", "local_depth=2", "--set", "identity_code=own", "--set", "g_steps=3",
               "--set", "d_strong_threshold=0.0"]

#: name -> (command, data file key, arguments); "{run:NAME}" is the run directory of scenario NAME
SCENARIOS: dict[str, tuple[str, str, list[str]]] = {
    "tiny-degan": ("train", "canvas", ["--cv", "@degan", *TINY]),
    "tiny-baseline": ("train", "canvas", ["--cv", "@baseline", *TINY]),
    "cpu-degan": ("train", "canvas", ["--cv", "@degan", *CPU]),
    "cpu-baseline": ("train", "canvas", ["--cv", "@baseline", *CPU]),
    "extra-degan": ("train", "canvas", ["--fold", "0", "@degan", *EXTRA, *EXTRA_DEGAN]),
    "extra-baseline": ("train", "canvas", ["--fold", "1", "@baseline", *EXTRA, "--set", "baseline_arch=cnn3"]),
    "stored-degan": ("train", "stored", ["--cv", "@degan", *TINY, "--set", "test_views=all"]),
    "pretrain": ("train", "canvas", ["--fold", "0", "@degan", *TINY, "--pretrain", "{data:other}",
                                     "--set", "pretrain_epochs=1"]),
    "from-stage1": ("train", "canvas", ["--cv", "@degan", *TINY, "--from-stage1", "{run:tiny-degan}",
                                        "--set", "local_hidden=24", "--set", "dropout=0.2"]),
    "reeval": ("eval", "canvas", ["{run:tiny-degan}", "--test-views", "all", "--geometry-weight", "0.5"]),
    "reeval-mirror": ("eval", "canvas", ["{run:cpu-baseline}", "--test-views", "mirror"]),
}


def make_data(work: Path) -> dict[str, Path]:
    """The synthetic files (fixed seeds), with subject-disjoint folds."""
    from facekit.split import create_folds
    from facekit.testing import make_synthetic_file
    files = {"canvas": dict(n_subjects=6, n_classes=3, faces_per_subject=8, face_size=40, margin=6, patch_size=32),
             "stored": dict(n_subjects=6, n_classes=3, faces_per_subject=4, augment="paper", patch_size=32),
             "other": dict(n_subjects=4, n_classes=4, faces_per_subject=6, face_size=40, margin=6, patch_size=32,
                           seed=5, label_names=["class2", "class0", "x", "class1"])}
    out = {}
    for key, kw in files.items():
        p = work / f"{key}.h5"
        if not p.exists():
            make_synthetic_file(p, **kw)  # type: ignore[arg-type]
            if key != "other":
                create_folds(p, 2, 0)
        out[key] = p
    return out


def _method_flag() -> str:
    """``--method`` where degan-train has it (the sectioned settings), else the older ``--model``."""
    res = subprocess.run([sys.executable, "-m", "cli.degan", "train", "--help"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, check=True)
    return "--method" if "--method" in res.stdout else "--model"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_WAIT_POLICY": "PASSIVE",
            "PYTHONHASHSEED": "0"}


def run_scenario(name: str, work: Path, data: dict[str, Path], flag: str) -> Path:
    """Run scenario ``name`` into ``work/runs/<name>`` (its run directory, or for ``eval`` the run it
    re-evaluates) and return that directory."""
    command, key, args = SCENARIOS[name]
    argv: list[str] = []
    sectioned = flag == "--method"
    for a in args:
        if sectioned and "=" in a and not a.startswith("-"):       # a --set value in the flat vocabulary
            argv.extend(_sectioned_set(a)[1:] if argv and argv[-1] == "--set" else [a])
            continue
        if a.startswith("@"):
            argv += [flag, a[1:]]
        elif a.startswith("{run:"):
            argv.append(str(work / "runs" / a[5:-1]))
        elif a.startswith("{data:"):
            argv.append(str(data[a[6:-1]]))
        else:
            argv.append(a)
    if command == "train":
        out = work / "runs" / name
        cmd = [sys.executable, "-m", "cli.degan", "train", str(data[key]), *argv, "--out", str(out), "--no-progress"]
    else:
        out = Path(argv[0])
        cmd = [sys.executable, "-m", "cli.degan", "eval", *argv, "--json"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{name}: exit {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return out


def _sectioned_set(item: str) -> list[str]:
    """A flat ``--set key=value`` (the scenarios' vocabulary, that of the reference code) as the
    sectioned ``--set section.field=value`` options with the same meaning."""
    from degan.config import FLAT_RENAMED, flat_aliases
    key, _, value = item.partition("=")
    targets = FLAT_RENAMED.get(key) or (flat_aliases()[key],)
    if key == "lr":                  # the flat lr was stage 1's too when lr_gan was 0 (as here)
        targets = ("stage1.lr", *targets)
    out: list[str] = []
    for target in targets:
        out += ["--set", f"{target}={value}"]
    return out


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {RENAMED_KEYS.get(k, k): _strip(v) for k, v in obj.items() if k not in TIMING_KEYS | IGNORED_KEYS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _digest(obj: Any, prefix: str = "") -> dict[str, str]:
    """SHA-256 of every tensor / array in a nested dict (dtype, shape and bytes)."""
    import numpy as np
    import torch
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_digest(v, f"{prefix}{k}/"))
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        out[prefix.rstrip("/")] = h.hexdigest()
    elif isinstance(obj, list) and obj and not isinstance(obj[0], dict):
        a = np.asarray(obj, np.float64)
        out[prefix.rstrip("/")] = hashlib.sha256(f"{a.shape}".encode() + a.tobytes()).hexdigest()
    return out


def reference_name(rel: Path) -> str:
    """A file's path in a run directory as the reference code named it: a re-evaluation's
    ``evals/<name>/fold_00/predictions.csv`` is ``fold_00/predictions_<name>.csv`` and
    ``evals/<name>/metrics.json`` is ``metrics_<name>.json``; other paths are unchanged."""
    if len(rel.parts) < 3 or rel.parts[0] != "evals":
        return str(rel)
    name, inner = rel.parts[1], Path(*rel.parts[2:])
    return str(inner.with_name(f"{inner.stem}_{name}{inner.suffix}"))


def snapshot(run: Path, name: str) -> dict[str, Any]:
    """What scenario ``name`` left in ``run``: file texts (JSON stripped of timings) and weight digests."""
    from degan.checkpoint import load_checkpoint
    snap: dict[str, Any] = {"csv": {}, "json": {}, "weights": {}}
    for p in sorted(run.rglob("predictions*.csv")):
        snap["csv"][reference_name(p.relative_to(run))] = p.read_text()
    for p in sorted([*run.rglob("metrics*.json"), *run.rglob("history.json")]):
        snap["json"][reference_name(p.relative_to(run))] = _strip(json.loads(p.read_text()))
    if SCENARIOS[name][0] == "train":
        for p in sorted(run.glob("fold_*/checkpoint.pt")):
            st = load_checkpoint(p, "cpu")
            snap["weights"][p.parent.name] = {**_digest(st["models"], "models/"),
                                              **_digest(st.get("geometry") or {}, "geometry/")}
    return snap


def compact(snap: dict[str, Any]) -> dict[str, Any]:
    """``snap`` with one SHA-256 per checkpoint (over its sorted tensor digests) instead of one per tensor."""
    weights = {}
    for fold, tensors in snap["weights"].items():
        if isinstance(tensors, str):
            weights[fold] = tensors
        else:
            text = "".join(f"{k}={v}\n" for k, v in sorted(tensors.items()))
            weights[fold] = hashlib.sha256(text.encode()).hexdigest()
    return {**snap, "weights": weights}


def compare(ref: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Differences between two snapshots, one line each (empty: identical)."""
    if any(isinstance(v, str) for v in ref["weights"].values()):
        new = compact(new)
    ref, new = {**ref, "json": _strip(ref["json"])}, {**new, "json": _strip(new["json"])}
    diffs = []
    for kind in ("csv", "json", "weights"):
        a, b = ref[kind], new[kind]
        for k in sorted(set(a) | set(b)):
            if k not in b:
                diffs.append(f"{kind} {k}: missing now")
            elif k not in a:
                diffs.append(f"{kind} {k}: new (not in the reference)")
            elif a[k] != b[k]:
                if kind == "weights" and isinstance(a[k], str):
                    diffs.append(f"weights {k}: differ")
                elif kind == "weights":
                    bad = sorted(t for t in set(a[k]) | set(b[k]) if a[k].get(t) != b[k].get(t))
                    diffs.append(f"weights {k}: {len(bad)} tensor(s) differ, e.g. {bad[:3]}")
                else:
                    diffs.append(f"{kind} {k}: differs")
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["record", "check", "compact"])
    ap.add_argument("ref", type=Path, help="reference directory (written by record, read by check and compact)")
    ap.add_argument("dest", type=Path, nargs="?", help="compact: where the compacted reference goes")
    ap.add_argument("--only", default=None, help="comma list of scenarios [default: all]")
    ap.add_argument("--work", type=Path, default=None, help="where to run [default: a temporary directory]")
    a = ap.parse_args(argv)
    names = a.only.split(",") if a.only else list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    needs = {"reeval": "tiny-degan", "reeval-mirror": "cpu-baseline", "from-stage1": "tiny-degan"}
    order = []
    for n in names:                       # a scenario's source run first
        if n in needs and needs[n] not in order:
            order.append(needs[n])
        if n not in order:
            order.append(n)
    if a.action == "compact":
        if a.dest is None:
            ap.error("compact needs DEST")
        a.dest.mkdir(parents=True, exist_ok=True)
        for n in names:
            snap = compact(json.loads((a.ref / f"{n}.json").read_text()))
            (a.dest / f"{n}.json").write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
        return 0
    tmp = None
    if a.work is None:
        tmp = tempfile.mkdtemp(prefix="degan-regression-")
        work = Path(tmp)
    else:
        work = a.work
        work.mkdir(parents=True, exist_ok=True)
    try:
        data = make_data(work)
        flag = _method_flag()
        report: dict[str, Any] = {"action": a.action, "reference": str(a.ref), "scenarios": {}}
        snaps = {}
        for n in order:
            snaps[n] = snapshot(run_scenario(n, work, data, flag), n)
        if a.action == "record":
            a.ref.mkdir(parents=True, exist_ok=True)
            import torch
            for n in order:
                snaps[n]["torch"] = torch.__version__
                (a.ref / f"{n}.json").write_text(json.dumps(snaps[n], indent=1, sort_keys=True))
                report["scenarios"][n] = {"files": len(snaps[n]["csv"]) + len(snaps[n]["json"]),
                                          "checkpoints": len(snaps[n]["weights"])}
            if a.work is not None:
                shutil.copytree(work / "runs", a.ref / "runs", dirs_exist_ok=True)
            print(json.dumps(report, indent=2))
            return 0
        ok = True
        for n in names:
            ref_file = a.ref / f"{n}.json"
            if not ref_file.is_file():
                report["scenarios"][n] = {"identical": False, "differences": [f"no reference {ref_file}"]}
                ok = False
                continue
            diffs = compare(json.loads(ref_file.read_text()), snaps[n])
            s = snaps[n]
            report["scenarios"][n] = {"identical": not diffs, "csv_files": len(s["csv"]), "json_files": len(s["json"]),
                                      "checkpoints": len(s["weights"]),
                                      "tensors": sum(len(v) for v in s["weights"].values()), "differences": diffs}
            ok &= not diffs
        report["identical"] = ok
        print(json.dumps(report, indent=2))
        return 0 if ok else 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
