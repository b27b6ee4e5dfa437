#!/usr/bin/env bash
# Miniature reproduction (docs/RESULTS.md), step 2, after scripts/repro/train-runs.sh: ternarizes the
# full-precision checkpoint after training (PTQ, no QAT), evaluates every model's checkpoint at step
# STEP (FID, precision, recall, class accuracy on our Fashion-MNIST feature network, against the 10k
# test images; docs/EVAL.md) with a sample grid each, sweeps the guidance scale for TerDiT and packs
# TerDiT to .tdit. Settings: RUNS (runs/repro), STEP (1000), SAMPLES (1000), WEIGHTS (raw), OUT
# (RUNS/results), TERDIT, DATA (as train-runs.sh).
set -euo pipefail
[ -f gpu-publish/terdit ] && source scripts/gpu-env.sh
T=${TERDIT:-gpu-publish/terdit}; R=${RUNS:-runs/repro}; DATA=${DATA:-/usr/share/datasets/fashion-mnist}
O=${OUT:-$R/results}; W=${WEIGHTS:-raw}
S=$(printf '%07d' "${STEP:-1000}")
mkdir -p "$O"
E="--weights $W --samples ${SAMPLES:-1000} --steps 25 --sampler ddim --batch 500 --device cuda --reference-dir $DATA --seed 0"
"$T" ptq --checkpoint "$R/fp/checkpoints/step-$S.ckpt" --weights "$W" --out "$R/ptq"
for r in fp terdit nonorm absmean ptq; do
  "$T" eval --checkpoint "$R/$r/checkpoints/step-$S.ckpt" --cfg 1.5 $E --out "$O/eval-$r.json" --grid "$O/grid-$r.png"
done
for cfg in 1 4 10; do
  "$T" eval --checkpoint "$R/terdit/checkpoints/step-$S.ckpt" --cfg "$cfg" $E --out "$O/eval-terdit-cfg$cfg.json" --grid "$O/grid-terdit-cfg$cfg.png"
done
"$T" pack --checkpoint "$R/terdit/checkpoints/step-$S.ckpt" --weights "$W" --out "$O/terdit-s-fmnist-$W.tdit"
