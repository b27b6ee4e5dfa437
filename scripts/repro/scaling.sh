#!/usr/bin/env bash
# Data-parallel scaling (issue 5) on a machine with ≥ 2 GPUs: `terdit bench train` on 1 GPU and on N
# GPUs, TerDiT-S (Fashion-MNIST) and the 600M shape (random latents), bf16, same per-GPU batch (weak
# scaling) and same global batch (strong scaling); then the NCCL self-test on N ranks.
# Efficiency = images/s on N GPUs ÷ (N × images/s on 1), from the JSONs (bench/results/scaling-*.json).
# Usage (repo root, gpu-publish/ and gpu-data/ carried): OUTDIR=$OUT N=2 bash scripts/repro/scaling.sh
set -u
source scripts/gpu-env.sh
O=${OUTDIR:-bench/results}; N=${N:-2}
mkdir -p "$O"
gpu-publish/terdit nccl-selftest --gpus "$N" > "$O/nccl-selftest-$N.log" 2>&1; echo "nccl-selftest --gpus $N: exit $?"
bench() { # preset per-gpu-batch gpus tag
  gpu-publish/terdit bench train --device cuda --data-dir gpu-data --precision bf16 --presets "$1" \
    --batch $(( $2 * $3 )) --gpus "$3" --steps ${STEPS:-10} --warmup 3 --out "$O/scaling-$4.json" 2>&1 | grep -v '^\s*$'
}
for preset in TerDiT-S:64 TerDiT-600M:32; do
  name=${preset%%:*}; b=${preset##*:}
  bench "$name" "$b" 1 "$name-b$b-g1"
  bench "$name" "$b" "$N" "$name-b$b-g$N"
  bench "$name" $(( b / N )) "$N" "$name-b$(( b / N ))-g$N"
done
