#!/usr/bin/env bash
# FID, precision, recall and class accuracy of the shipped model on the CPU runtime (A8 mode) for each
# sampler × step count: `terdit eval --model models/terdit-s-fmnist.tdit --mode a8 --sampler S --steps N`,
# 500 samples, cfg 1.5, seed 0 (the same noise for every run). One JSON per run under $OUT; a run whose
# JSON exists is skipped, so an interrupted sweep continues where it stopped.
#
#   scripts/sampler-sweep.sh                               # the full sweep (about 2 h on 2 quiet cores)
#   SAMPLERS=ddim STEPS="10 25" SEED=1 scripts/sampler-sweep.sh   # a subset with other noise
#
# Needs the Fashion-MNIST test split (Debian: dataset-fashion-mnist, or --reference-dir via EXTRA).
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLERS=${SAMPLERS:-"ddim dpm++2m"}
STEPS=${STEPS:-"5 10 15 25 50"}
SAMPLES=${SAMPLES:-500}
SEED=${SEED:-0}
OUT=${OUT:-docs/results/samplers}
EXTRA=${EXTRA:-}

dotnet build src/TerDiT.Cli -c Release
# Run a copy of the build, so that rebuilding the tree during the sweep does not change the binary under it.
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
cp -r src/TerDiT.Cli/bin/Release/net10.0/. "$BIN"
mkdir -p "$OUT"
lscpu | sed -n 's/^Model name: *//p' | head -1 > "$OUT/cpu.txt"

for sampler in $SAMPLERS; do
  for steps in $STEPS; do
    name="eval-${sampler//+/p}-$steps-seed$SEED"
    if [[ -f "$OUT/$name.json" ]]; then echo "$name: done already"; continue; fi
    echo "$name: started $(date -u +%H:%M:%S)"
    # shellcheck disable=SC2086
    "$BIN/terdit" eval --model models/terdit-s-fmnist.tdit --mode a8 --sampler "$sampler" --steps "$steps" \
      --samples "$SAMPLES" --cfg 1.5 --batch 100 --seed "$SEED" --out "$OUT/$name.json" $EXTRA
  done
done
