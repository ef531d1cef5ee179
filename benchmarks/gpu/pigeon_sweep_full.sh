#!/usr/bin/env bash
# Issue 13, item 7 on a lent GPU: one seed of the pigeon experiment at --scale full for the
# context-bound classes' probability 1/K (= 0.125: the full world has K = 8 classes) and for the
# pre-registered 0.9, run side by side on the one GPU (16 CPU cores: 6 workers each) so that
# both fit the 15 device-minutes (an 8-epoch full run took 213 s on an H200 on 2026-11-25; the
# full preset trains 20 epochs, about 7 minutes each when run alone).
# Run from the repository root on the lent machine; soundloc is used from src/ (no install).
# Writes $OUT/pigeon_full_p0.125/seed0 and $OUT/pigeon_full_p0.9/seed0 (results.json, figures;
# the models are deleted) and their logs. Commit them under benchmarks/pigeon/full_gpu/ with
# nvidia_smi.txt and the date, and add the two points to the sweep's figure as a separate series.
set -o pipefail
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_DISABLE=1
OUT="${OUT:-runs/gpu}"
LIMIT="${LIMIT:-540}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia_smi.txt"
for p in 0.125 0.9; do
  timeout "$LIMIT" python3 -m soundloc pigeon --scale full --seed 0 --context-p "$p" --workers 6 --quiet \
      --out "$OUT/pigeon_full_p$p/seed0" > "$OUT/pigeon_full_p$p.log" 2>&1 &
done
wait
for p in 0.125 0.9; do
  rm -rf "$OUT/pigeon_full_p$p/seed0/models"
  echo "== p $p"; tail -25 "$OUT/pigeon_full_p$p.log"
done
