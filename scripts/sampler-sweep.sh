#!/usr/bin/env bash
# FID, precision, recall and class accuracy of the shipped model on the CPU runtime (A8 mode) for each
# sampler × step count: `terdit eval --model models/terdit-s-fmnist.tdit --mode a8 --sampler S --steps N`,
# 500 samples, cfg 1.5, seed 0 (the same noise for every run). One JSON per run under $OUT; a run whose
# JSON exists is skipped, so an interrupted sweep continues where it stopped. The runs are ordered so that
# the comparison the sweep is for (DPM-Solver++ at 10–15 steps against DDIM at 25–50) comes first.
#
#   scripts/sampler-sweep.sh                               # DDIM and DPM-Solver++ at 5, 10, 15, 25, 50 steps
#                                                          # (about 2 h on 2 otherwise idle cores)
#   RUNS="ddim:25 dpm++2m:10" SEED=1 scripts/sampler-sweep.sh   # some runs with other noise
#
# Needs the Fashion-MNIST test split (Debian: dataset-fashion-mnist, or --reference-dir via EXTRA).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-"ddim:25 dpm++2m:10 dpm++2m:15 ddim:50 ddim:10 dpm++2m:5 ddim:15 dpm++2m:25 ddim:5 dpm++2m:50"}
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

for run in $RUNS; do
  sampler=${run%:*} steps=${run#*:}
  name="eval-${sampler//+/p}-$steps-seed$SEED"
  if [[ -f "$OUT/$name.json" ]]; then echo "$name: done already"; continue; fi
  echo "$name: started $(date -u +%H:%M:%S)"
  # shellcheck disable=SC2086
  "$BIN/terdit" eval --model models/terdit-s-fmnist.tdit --mode a8 --sampler "$sampler" --steps "$steps" \
    --samples "$SAMPLES" --cfg 1.5 --batch 100 --seed "$SEED" --out "$OUT/$name.json" $EXTRA
done
