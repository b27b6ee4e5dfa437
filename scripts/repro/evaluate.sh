#!/usr/bin/env bash
# Miniature reproduction, step 2 on the GPU machine (after scripts/repro/train-runs.sh): stop the runs,
# take their latest common checkpoint step, ternarize the full-precision model after training (PTQ,
# no QAT), evaluate every model (FID, precision, recall, class accuracy; our Fashion-MNIST feature
# network, 10k test images), sweep the guidance scale for TerDiT, and pack TerDiT to .tdit.
# Results land in $OUT (evals.tgz, terdit-s-fmnist-raw.tdit and -ema.tdit).
set -u
source scripts/gpu-env.sh
T=gpu-publish/terdit
R=${RUNS:-/tmp/repro}
pkill -x terdit; sleep 3
S=$(for r in fp terdit nonorm absmean; do ls "$R/$r/checkpoints" | tail -n 1 | tr -dc 0-9; echo; done | sort -n | head -n 1)
echo "common checkpoint step: $S"
W=${WEIGHTS:-raw}   # raw: a short run's EMA (decay 0.999) still holds much of the zero-initialised start
E="--weights $W --samples ${SAMPLES:-2000} --steps 25 --sampler ddim --batch 500 --device cuda --reference-dir gpu-data --seed 0"
$T ptq --checkpoint "$R/fp/checkpoints/step-$S.ckpt" --weights $W --out "$R/ptq"
for r in fp terdit nonorm absmean ptq; do
  $T eval --checkpoint "$R/$r/checkpoints/step-$S.ckpt" --cfg 1.5 $E --out "$R/eval-$r.json" --grid "$R/grid-$r.png" | tail -n 12
done
O=$([ "$W" = raw ] && echo ema || echo raw)   # TerDiT with the other weights too
$T eval --checkpoint "$R/terdit/checkpoints/step-$S.ckpt" --cfg 1.5 ${E/--weights $W/--weights $O} --out "$R/eval-terdit-$O.json" | tail -n 3
for w in 1 4 10; do
  $T eval --checkpoint "$R/terdit/checkpoints/step-$S.ckpt" --cfg $w $E --out "$R/eval-terdit-cfg$w.json" --grid "$R/grid-terdit-cfg$w.png" | tail -n 3
done
$T pack --checkpoint "$R/terdit/checkpoints/step-$S.ckpt" --weights $W --out "$OUT/terdit-s-fmnist-$W.tdit"
$T pack --checkpoint "$R/terdit/checkpoints/step-$S.ckpt" --weights $O --out "$OUT/terdit-s-fmnist-$O.tdit"
(cd "$R" && tar czf "$OUT/evals.tgz" eval-*.json grid-*.png */metrics.jsonl *.log)
