#!/usr/bin/env bash
# The GPU checks, as one script (run on a lent GPU machine from the repository root):
#   1. the pigeon experiment at --scale full, seed 0 (the GPU-sized run of chapter 2);
#   2. the training throughput of the paper's model (benchmarks/bench_throughput.py).
# Needs torch, numpy, matplotlib, tqdm and Pillow; soundloc is used from src/ (no install).
# Writes into $OUT (default runs/gpu): nvidia_smi.txt, pigeon.log, full_seed0/{results.json,
# attention.png, training_curves.png} (the models are deleted), throughput.{log,json}.
set -o pipefail
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_DISABLE=1
OUT="${OUT:-runs/gpu}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia_smi.txt"
nproc | tee -a "$OUT/nvidia_smi.txt"
timeout "${PIGEON_TIMEOUT:-400}" python3 -m soundloc pigeon --scale full --seed 0 --workers "${WORKERS:-12}" \
    --out "$OUT/full_seed0" "$@" 2>&1 | grep -v "^\s*$" | tee "$OUT/pigeon.log"
rm -rf "$OUT/full_seed0/models"
timeout "${BENCH_TIMEOUT:-100}" python3 benchmarks/bench_throughput.py --batch 32 --steps 10 \
    --json "$OUT/throughput.json" 2>&1 | tee "$OUT/throughput.log"
