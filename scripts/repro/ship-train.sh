#!/usr/bin/env bash
# Trains the shipped model (docs/RESULTS.md, "The shipped model") on one GPU: TerDiT-S, ternary + RMSNorm
# in adaLN, alpha initialised to mean|W| (the faster of the two inits in the 1000-step comparison),
# batch 256, lr 3e-4, EMA 0.999, 5000 steps. Settings: RUN (runs/ship), STEPS (5000), TERDIT, DATA
# (as train-runs.sh).
set -euo pipefail
[ -f gpu-publish/terdit ] && source scripts/gpu-env.sh
T=${TERDIT:-gpu-publish/terdit}; R=${RUN:-runs/ship}; DATA=${DATA:-/usr/share/datasets/fashion-mnist}
mkdir -p "$(dirname "$R")"
"$T" train --preset TerDiT-S --alpha-init absmean --data fashion-mnist --data-dir "$DATA" --device cuda \
  --batch 256 --lr 3e-4 --ema-decay 0.999 --precision bf16 --steps "${STEPS:-5000}" --ckpt-every 500 --log-every 50 --seed 0 \
  --out "$R" 2>&1 | tee "$R.log"
