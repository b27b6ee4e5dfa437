#!/usr/bin/env bash
# Evaluates the shipped model's checkpoint at step STEP (scripts/repro/ship-train.sh): raw and EMA
# weights at cfg 1.5, then a cfg sweep (1, 4, 10) of the EMA weights, and packs both to .tdit (the raw
# one is models/terdit-s-fmnist.tdit). Settings: RUN (runs/ship), STEP (5000), SAMPLES (2000), OUT
# (RUN/results), TERDIT, DATA (as train-runs.sh).
set -euo pipefail
[ -f gpu-publish/terdit ] && source scripts/gpu-env.sh
T=${TERDIT:-gpu-publish/terdit}; R=${RUN:-runs/ship}; DATA=${DATA:-/usr/share/datasets/fashion-mnist}
O=${OUT:-$R/results}
C="$R/checkpoints/step-$(printf '%07d' "${STEP:-5000}").ckpt"
mkdir -p "$O"
E="--samples ${SAMPLES:-2000} --steps 25 --sampler ddim --batch 500 --device cuda --reference-dir $DATA --seed 0 --checkpoint $C"
for w in raw ema; do
  "$T" pack --checkpoint "$C" --weights "$w" --out "$O/terdit-s-fmnist-$w.tdit"
  "$T" eval $E --weights "$w" --cfg 1.5 --out "$O/eval-ship-$w.json" --grid "$O/grid-ship-$w.png"
done
for cfg in 1 4 10; do
  "$T" eval $E --weights ema --cfg "$cfg" --out "$O/eval-ship-ema-cfg$cfg.json" --grid "$O/grid-ship-ema-cfg$cfg.png"
done
