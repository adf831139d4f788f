#!/usr/bin/env bash
# CK+48 benchmark of DE-GAN and its CNN baseline through the real pipeline:
#
#   facekit prepare folder CK+48 -> facekit folds --k 10 -> degan-train --cv (DE-GAN, then baseline)
#
# and a JSON summary in bench/results/ckplus48_<preset>_<augment>.json (per-fold and mean accuracy,
# wall times, machine load). Re-running continues unfinished runs (--resume) and keeps finished folds.
#
# Environment (all optional):
#   PRESET=cpu        degan config preset (cpu: sized for 2 CPU cores, < 60 min for the DE-GAN CV)
#   AUGMENT=none      facekit prepare --augment: none (on-the-fly augmentation, the measured choice) or paper
#   MODELS="degan baseline"
#   WORK=.bench/ckplus48   prepared file and run directories (git-ignored)
#   FACEKIT_SHARED=../shared   where datasets/ckplus48/CK+48 and models/face_landmarker.task live
#   JOBS=2 THREADS=1  folds trained at a time, torch threads per fold (degan-train --jobs/--threads);
#                     on 2 cores two 1-thread folds beat one 2-thread fold (docs/history/degan-rounds.md, "Parallel folds")
#   EXTRA="--set test_views=all"   more degan-train options (PRESET=paper pre-trains stage 1:
#                     EXTRA="--pretrain bu4dfe.h5", or "--no-pretrain", recorded as a deviation)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${FACEKIT_SHARED:-$ROOT/../shared}
PRESET=${PRESET:-cpu}
AUGMENT=${AUGMENT:-none}
MODELS=${MODELS:-"degan baseline"}
WORK=${WORK:-$ROOT/.bench/ckplus48}
EXTRA=${EXTRA:-}
JOBS=${JOBS:-2}
THREADS=${THREADS:-1}
export JOBS THREADS          # recorded in the JSON summary
DATA=$WORK/ckplus48-$AUGMENT.h5
RESULTS=$ROOT/bench/results
SUMMARY=$RESULTS/ckplus48_${PRESET}_${AUGMENT}.json
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}    # no OpenMP spin-waiting on a shared CPU
export FACEKIT_MODEL=${FACEKIT_MODEL:-$SHARED/models/face_landmarker.task}
if [ -x "$ROOT/.venv/bin/python" ]; then PATH=$ROOT/.venv/bin:$PATH; fi
PY=python
cd "$ROOT"
mkdir -p "$WORK/runs" "$RESULTS"

t0=$(date +%s)
if [ ! -f "$DATA" ]; then
    facekit prepare folder "$SHARED/datasets/ckplus48/CK+48" "$DATA" \
        --subject-regex '^(S\d+)_' --augment "$AUGMENT" -q --json > "$WORK/prepare-$AUGMENT.json"
fi
t_prep=$(( $(date +%s) - t0 ))
if ! "$PY" -c "import sys; from facekit.store import open_facekit; sys.exit(0 if open_facekit('$DATA').has_folds else 1)"; then
    facekit folds "$DATA" --k 10 --seed 0 > "$WORK/folds-$AUGMENT.txt"
fi

for model in $MODELS; do
    run=$WORK/runs/$model-$PRESET-$AUGMENT
    resume=()
    if [ -f "$run/config.json" ]; then resume=(--resume); fi
    echo "== $model: $run (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    s=$(date +%s)
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    # shellcheck disable=SC2086
    loadlog=$WORK/load-$model-$PRESET-$AUGMENT.txt
    : > "$loadlog"
    ( while true; do echo "$(date +%s) $(cut -d' ' -f1 /proc/loadavg)" >> "$loadlog"; sleep 30; done ) &
    sampler=$!
    trap 'kill "$sampler" 2>/dev/null || true' EXIT
    degan-train "$DATA" --cv --method "$model" --preset "$PRESET" -o "$run" "${resume[@]}" \
        --jobs "$JOBS" --threads "$THREADS" -q $EXTRA
    kill "$sampler" 2>/dev/null || true
    echo "$model $(( $(date +%s) - s )) $load_before $(cut -d' ' -f1-3 /proc/loadavg)" >> "$WORK/walltimes-$PRESET-$AUGMENT.txt"
done

"$PY" - "$WORK" "$PRESET" "$AUGMENT" "$SUMMARY" "$t_prep" <<'EOF'
import json, sys, os
from pathlib import Path
sys.path.insert(0, "bench")
from _machine import machine
work, preset, augment, summary, t_prep = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4]), int(sys.argv[5])
walls = {}
wt = work / f"walltimes-{preset}-{augment}.txt"
if wt.exists():
    for line in wt.read_text().split("\n"):
        if line.strip():
            p = line.split()
            walls[p[0]] = {"wall_seconds": int(p[1]), "load_before": p[2:5], "load_after": p[5:8]}
for model in walls:
    ll = work / f"load-{model}-{preset}-{augment}.txt"
    if ll.exists():
        vals = [float(line.split()[1]) for line in ll.read_text().split("\n") if line.strip()]
        if vals:
            walls[model]["load_1min_samples_every_30s"] = {"n": len(vals), "mean": round(sum(vals) / len(vals), 2),
                                                            "max": max(vals)}
out = {"dataset": "CK+48 (981 faces, 118 subjects, 7 classes)", "protocol": "10-fold subject-disjoint "
       "(facekit folds: StratifiedGroupKFold, seed 0)", "preset": preset, "augment": augment,
       "prepare_seconds": t_prep, "machine": machine(),
       "jobs": int(os.environ.get("JOBS", "2")), "threads_per_job": int(os.environ.get("THREADS", "1")),
       "paper": {"DE-GAN": 97.36, "DeRL": 97.30, "CNN (baseline)": 90.34},
       "calibration_plain_3_block_cnn": {"mean": 93.08, "std": 4.57, "minutes": 21.5}, "models": {}}
for run in sorted((work / "runs").glob(f"*-{preset}-{augment}")):
    m = json.loads((run / "metrics.json").read_text())
    model = run.name.split("-")[0]
    out["models"][model] = {"run": str(run), "mean": m["mean"], "std": m["std"], "folds": m["folds"],
                            "pooled_accuracy": m["pooled_accuracy"], "per_class_recall": m["per_class_recall"],
                            "fold_seconds": m["fold_seconds"], "total_fold_seconds": m["total_fold_seconds"],
                            "head_accuracy_mean": m.get("head_accuracy_mean"), **walls.get(model, {})}
    for extra in sorted(run.glob("metrics_*.json")):
        e = json.loads(extra.read_text())
        out["models"][model][extra.stem] = {"mean": e["mean"], "std": e["std"], "folds": e["folds"]}
summary.write_text(json.dumps(out, indent=2) + "\n")
for k, v in out["models"].items():
    print(f"{k:9s} {v['mean']:.2f} ± {v['std']:.2f}%  folds: " + " ".join(f"{a:.1f}" for a in v["folds"].values())
          + f"  wall {v.get('wall_seconds', float('nan'))} s")
print(f"summary: {summary}")
EOF
