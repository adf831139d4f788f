#!/usr/bin/env bash
# GPU checks, run on a lent GPU machine (CI never has one). Writes JSON/logs to $OUT.
#   1. the DE-GAN training step throughput table (eager / AMP / channels_last / compile)
#   2. a CUDA smoke run of degan-train (tiny preset, synthetic facekit file, 2 folds, AMP)
#   3. optionally (GPU_CV=preset) a timed DE-GAN + baseline CV on a carried CK+48 file
#      (GPU_FOLDS="0 1" for some folds only)
#   4. optionally (GPU_PAPER=1) bench/gpu_paper.py: stage 1 of CK+48 fold 0 with the faithful paper
#      preset (--no-pretrain) for as many paper-length epochs as fit in GPU_PAPER_BUDGET seconds
#      (default 480, start-up included): per epoch D's real/fake accuracy, G's identity and
#      expression losses, images/s, and the synthesis grids, in $OUT/paper/. The data file is
#      carried: facekit prepare folder CK+48 .gpu/ck48.h5 --subject-regex '^(S\d+)_' --augment none
#      && facekit folds .gpu/ck48.h5 --k 10 (its .parts folder goes with it). Only this step:
#      SKIP_THROUGHPUT=1 SKIP_SMOKE=1 GPU_PAPER=1 bash bench/gpu.sh
set -uo pipefail
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
# the commands from this checkout (PYTHONPATH, nothing installed): cli/ is importable as "cli" here;
# an installed facekit has them as facekit_cli.degan (and degan-train)
DEGAN="python3 -m cli.degan"
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, sys; print('torch', torch.__version__, 'python', sys.version.split()[0])"

if [ -z "${SKIP_THROUGHPUT:-}" ]; then
  python3 bench/degan_throughput.py --device cuda --out "$OUT/throughput_cuda.json" > "$OUT/throughput.log" 2>&1
  echo "throughput rc=$?"; tail -5 "$OUT/throughput.log"
fi

if [ -z "${SKIP_SMOKE:-}" ]; then
  python3 - <<'PY'
from facekit.testing import make_synthetic_file
from facekit.split import create_folds
p = make_synthetic_file("/tmp/smoke/s.h5", n_subjects=6, n_classes=3, faces_per_subject=8, face_size=40,
                        margin=6, patch_size=32)
create_folds(p, 2, 0)
PY
  $DEGAN train /tmp/smoke/s.h5 --cv --preset tiny --device cuda -o /tmp/smoke/run \
      -q > "$OUT/smoke.log" 2>&1
  echo "smoke rc=$?"; tail -3 "$OUT/smoke.log"
fi

if [ -n "${GPU_CV:-}" ]; then
  for model in ${GPU_MODELS:-degan baseline}; do
    s=$(date +%s)
    folds=(--cv)
    if [ -n "${GPU_FOLDS:-}" ]; then folds=(); for f in $GPU_FOLDS; do folds+=(--fold "$f"); done; fi
    timeout "${GPU_CV_TIMEOUT:-600}" $DEGAN train "${GPU_DATA:-.gpu/ck48.h5}" "${folds[@]}" --method "$model" \
        --preset "$GPU_CV" --device cuda -o "$OUT/$model-$GPU_CV" -q ${GPU_EXTRA:-} \
        > "$OUT/$model-$GPU_CV.log" 2>&1
    echo "$model cv rc=$? in $(( $(date +%s) - s )) s"; tail -4 "$OUT/$model-$GPU_CV.log"
  done
fi

if [ -n "${GPU_PAPER:-}" ]; then
  s=$(date +%s)
  budget=${GPU_PAPER_BUDGET:-480}
  timeout $(( budget + 60 )) python3 bench/gpu_paper.py "${GPU_DATA:-.gpu/ck48.h5}" --fold "${GPU_PAPER_FOLD:-0}" \
      --budget-s "$budget" --device cuda --out "$OUT/paper" ${GPU_PAPER_EXTRA:-} > "$OUT/paper.log" 2>&1
  echo "paper stage 1 rc=$? in $(( $(date +%s) - s )) s"; tail -6 "$OUT/paper.log"
fi
