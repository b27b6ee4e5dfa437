#!/usr/bin/env bash
# Stops scripts/repro/ship-train.sh and evaluates its latest checkpoint (raw and EMA weights, cfg 1.5;
# cfg sweep 1, 4, 10 on the EMA weights), packs both to .tdit. Results in $OUT (ship.tgz, *.tdit).
set -u
source scripts/gpu-env.sh
R=${RUN:-/tmp/ship}; T=gpu-publish/terdit
pkill -x terdit; sleep 3
C=$(ls "$R"/checkpoints/step-*.ckpt | tail -n 1); echo "checkpoint: $C"
E="--samples ${SAMPLES:-2000} --steps 25 --sampler ddim --batch 500 --device cuda --reference-dir gpu-data --seed 0 --checkpoint $C"
for w in raw ema; do
  $T pack --checkpoint "$C" --weights $w --out "$OUT/terdit-s-fmnist-$w.tdit" | tail -n 1
  $T eval $E --weights $w --cfg 1.5 --out "$R/eval-ship-$w.json" --grid "$R/grid-ship-$w.png" | tail -n 2
done
for g in 1 4 10; do
  $T eval $E --weights ema --cfg $g --out "$R/eval-ship-ema-cfg$g.json" --grid "$R/grid-ship-ema-cfg$g.png" | tail -n 1
done
(cd "$R" && tar czf "$OUT/ship.tgz" eval-*.json grid-*.png metrics.jsonl ../$(basename "$R").log)
