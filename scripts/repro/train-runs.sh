#!/usr/bin/env bash
# Miniature reproduction (docs/RESULTS.md), step 1: the four training runs of TerDiT-S on the full
# Fashion-MNIST, one after the other on one GPU, with the same data order, seeds and settings:
#   fp       full-precision DiT
#   terdit   TerDiT: ternary + RMSNorm in adaLN (alpha initialised from N(0, 1), as the authors)
#   nonorm   ternary without that RMSNorm
#   absmean  TerDiT with alpha initialised to mean|W|
# Settings from the environment: RUNS (runs/repro), BATCH (256), LR (3e-4), EMA (0.998), STEPS (1000),
# CKPT_EVERY (500), TERDIT (gpu-publish/terdit), DATA (the Fashion-MNIST IDX folder,
# /usr/share/datasets/fashion-mnist). The learning rate is constant, so a run to STEPS = N is the first
# N steps of any longer run; `terdit train --resume --out RUNS/fp --steps M` continues one.
set -euo pipefail
[ -f gpu-publish/terdit ] && source scripts/gpu-env.sh
T=${TERDIT:-gpu-publish/terdit}; R=${RUNS:-runs/repro}; DATA=${DATA:-/usr/share/datasets/fashion-mnist}
mkdir -p "$R"
train() { local name=$1; shift
  "$T" train --preset TerDiT-S --data fashion-mnist --data-dir "$DATA" --device cuda --batch "${BATCH:-256}" --lr "${LR:-3e-4}" \
    --ema-decay "${EMA:-0.998}" --precision bf16 --steps "${STEPS:-1000}" --ckpt-every "${CKPT_EVERY:-500}" --log-every 50 --seed 0 \
    "$@" --out "$R/$name" 2>&1 | tee "$R/$name.log"
}
train fp --full-precision
train terdit
train nonorm --no-adaln-norm
train absmean --alpha-init absmean
