#!/usr/bin/env bash
# The README's accuracy table: the frozen `cpu` preset re-measured on fresh folds and seeds.
#
# For each dataset (CK+48, JAFFE) and each seed s in SEEDS: facekit prepare (once, --augment none),
# facekit folds --k 10 --seed s (CK+48; JAFFE keeps one fold file, its 10 subjects make the
# 10 folds leave-one-subject-out), then degan-train --cv --seed s for DE-GAN, the baseline (the
# same encoder with a plain classifier) and a plain 3-block CNN. Finished runs are skipped,
# unfinished ones resumed. Finally bench/seeds_summary.py writes
# bench/results/<dataset>_cpu_frozen.json: mean and std over folds and seeds, the image model
# alone, McNemar face by face between the methods, wall times.
#
# Environment (all optional):
#   SEEDS="1 2 3"   DATASETS="ckplus48 jaffe"   METHODS="degan baseline cnn"
#   WORK=.bench/cv_seeds   FACEKIT_SHARED=../shared   JOBS=2 THREADS=1
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${FACEKIT_SHARED:-$ROOT/../shared}
SEEDS=${SEEDS:-"1 2 3"}
DATASETS=${DATASETS:-"ckplus48 jaffe"}
METHODS=${METHODS:-"degan baseline cnn"}
WORK=${WORK:-$ROOT/.bench/cv_seeds}
JOBS=${JOBS:-2}
THREADS=${THREADS:-1}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} MPLBACKEND=${MPLBACKEND:-Agg}
export FACEKIT_MODEL=${FACEKIT_MODEL:-$SHARED/models/face_landmarker.task}
mkdir -p "$WORK/runs" "$WORK/logs"
cd "$ROOT"

has_folds() { python -c "import sys; from facekit.store import open_facekit; sys.exit(0 if open_facekit('$1').has_folds else 1)"; }

data_file() {  # dataset seed -> prepared file with folds
    local ds=$1 seed=$2 f
    case $ds in
      ckplus48)
        f=$WORK/ckplus48_s$seed.h5
        [ -f "$f" ] || facekit prepare folder "$SHARED/datasets/ckplus48/CK+48" "$f" \
            --subject-regex '^(S\d+)_' --augment none -q >&2
        has_folds "$f" || facekit folds "$f" --k 10 --seed "$seed" > "$WORK/logs/folds_ckplus48_s$seed.txt" ;;
      jaffe)
        f=$WORK/jaffe.h5
        [ -f "$f" ] || facekit prepare jaffe "$SHARED/datasets/jaffe/jaffe" "$f" --augment none -q >&2
        has_folds "$f" || facekit folds "$f" --k 10 --seed 0 > "$WORK/logs/folds_jaffe.txt" ;;
      *) echo "cv_seeds: unknown dataset $ds" >&2; return 2 ;;
    esac
    echo "$f"
}

method_args() {
    case $1 in
      degan) echo "--method degan" ;;
      baseline) echo "--method baseline" ;;
      cnn) echo "--method baseline --set baseline.network=cnn3 --set arch.width=0.5 --set baseline.epochs=30" ;;
    esac
}

dataset_name() {
    case $1 in
      ckplus48) echo "CK+48 (981 faces, 118 subjects, 7 classes)" ;;
      jaffe) echo "JAFFE (213 images, 10 subjects, 7 classes)" ;;
    esac
}

protocol() {
    local folds="\`facekit folds --k 10 --seed S\`"
    [ "$1" = jaffe ] && folds="\`facekit folds --k 10 --seed 0\` for every seed (10 subjects: leave one subject out)"
    echo "10-fold subject-disjoint CV, folds by $folds, training seed S, \`cpu\` preset frozen" \
         "(values fixed before this measurement), \`--jobs $JOBS --threads $THREADS\`; accuracy of the model after" \
         "its last epoch on every test face; commands: bench/cv_seeds.sh"
}

# finished: seeds_summary.py's rule (every fold scored, with its predictions.csv); otherwise resumed,
# which also writes a missing fold output again
finished() {
    python -c "import sys; from pathlib import Path; sys.path.insert(0, 'bench'); from seeds_summary import read_run, run_complete
sys.exit(0 if run_complete(read_run(Path('$1'))[1]) else 1)" 2>/dev/null
}

for ds in $DATASETS; do
  specs=()
  for s in $SEEDS; do
    data=$(data_file "$ds" "$s") || exit 2
    for m in $METHODS; do
      out=$WORK/runs/$ds-s$s-$m
      if ! finished "$out"; then
        resume=(); [ -f "$out/config.json" ] && resume=(--resume)
        t0=$(date +%s) l0=$(cut -d' ' -f1-3 /proc/loadavg)
        # shellcheck disable=SC2046
        degan-train "$data" --cv --preset cpu --seed "$s" -o "$out" "${resume[@]}" --jobs "$JOBS" \
            --threads "$THREADS" -q $(method_args "$m") > "$WORK/logs/$ds-s$s-$m.log" 2>&1
        echo "$ds-s$s-$m rc=$? wall=$(( $(date +%s) - t0 )) load_before=$l0 load_after=$(cut -d' ' -f1-3 /proc/loadavg) resumed=${#resume[@]}" >> "$WORK/walltimes.txt"
      fi
      finished "$out" && specs+=("$m:$s=$out")
    done
  done
  # shellcheck disable=SC2086
  [ ${#specs[@]} -gt 0 ] && python bench/seeds_summary.py "${specs[@]}" --walltimes "$WORK/walltimes.txt" \
      --dataset "$(dataset_name "$ds")" --protocol "$(protocol "$ds")" --seeds-planned $SEEDS \
      --name "degan=DE-GAN (cpu preset)" --name "baseline=the same encoder as a plain classifier (cpu preset)" \
      --name "cnn=plain 3-block CNN: $(method_args cnn)" \
      --out "bench/results/${ds}_cpu_frozen.json" > /dev/null && echo "summary: bench/results/${ds}_cpu_frozen.json"
done
