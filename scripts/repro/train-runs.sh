#!/usr/bin/env bash
# Miniature reproduction (docs/RESULTS.md), step 1 on the GPU machine: start the four QAT/FP training
# runs of TerDiT-S on full Fashion-MNIST concurrently on one GPU, in the background (setsid), so they
# outlive this call while the machine stays held. Same data, preset, steps, seeds and settings:
#   fp       full-precision DiT
#   terdit   TerDiT: ternary + RMSNorm in adaLN (alpha init normal, as the authors)
#   nonorm   ternary without that RMSNorm
#   absmean  TerDiT with alpha initialised to mean|W|
# Usage (repo root, gpu-publish/ and gpu-data/ carried): RUNS=/tmp/repro bash scripts/repro/train-runs.sh
# Settings from the environment: BATCH (128), LR (2e-4), EMA (0.999), STEPS (100000), CKPT_EVERY (500).
set -u
source scripts/gpu-env.sh
R=${RUNS:-/tmp/repro}
mkdir -p "$R"
COMMON="--preset TerDiT-S --data fashion-mnist --data-dir gpu-data --device cuda --batch ${BATCH:-128} --lr ${LR:-2e-4}
  --ema-decay ${EMA:-0.999} --precision bf16 --steps ${STEPS:-100000} --ckpt-every ${CKPT_EVERY:-500} --log-every 50 --seed 0"
start() { local name=$1; shift; setsid nohup gpu-publish/terdit train $COMMON "$@" --out "$R/$name" >"$R/$name.log" 2>&1 < /dev/null & }
start fp --full-precision
start terdit
start nonorm --no-adaln-norm
start absmean --alpha-init absmean
sleep 5; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
