#!/usr/bin/env bash
# Trains the shipped model (docs/RESULTS.md, "The shipped model") on one GPU, in the background (setsid):
# TerDiT-S, ternary + RMSNorm in adaLN, alpha initialised to mean|W| (the faster of the two inits in the
# 1000-step comparison), batch 256, lr 3e-4, EMA 0.999, until stopped by scripts/repro/ship-finish.sh.
# Usage (repo root, gpu-publish/ and gpu-data/ there): RUN=/tmp/ship bash scripts/repro/ship-train.sh
set -u
source scripts/gpu-env.sh
R=${RUN:-/tmp/ship}
mkdir -p "$(dirname "$R")"
setsid nohup gpu-publish/terdit train --preset TerDiT-S --alpha-init absmean --data fashion-mnist --data-dir gpu-data --device cuda \
  --batch 256 --lr 3e-4 --ema-decay 0.999 --precision bf16 --steps 100000 --ckpt-every 500 --log-every 50 --seed 0 \
  --out "$R" > "$R.log" 2>&1 < /dev/null &
