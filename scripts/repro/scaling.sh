#!/usr/bin/env bash
# Data-parallel scaling on a machine with N ≥ 2 GPUs: `terdit bench train` on 1 GPU and on N GPUs,
# TerDiT-S (Fashion-MNIST) and the 600M shape (random latents), bf16, at the same per-GPU batch (weak
# scaling) and at the same global batch (strong scaling); then the NCCL self-test on N ranks.
# Efficiency = images/s on N GPUs ÷ (N × images/s on 1), from the JSONs. Settings: OUTDIR
# (bench/results/scaling), N (2), STEPS (10), TERDIT, DATA (as train-runs.sh).
set -uo pipefail
[ -f gpu-publish/terdit ] && source scripts/gpu-env.sh
T=${TERDIT:-gpu-publish/terdit}; DATA=${DATA:-/usr/share/datasets/fashion-mnist}
O=${OUTDIR:-bench/results/scaling}; N=${N:-2}
mkdir -p "$O"
"$T" nccl-selftest --gpus "$N" > "$O/nccl-selftest-$N.log" 2>&1; echo "nccl-selftest --gpus $N: exit $?"
bench() { # preset per-gpu-batch gpus tag
  "$T" bench train --device cuda --data-dir "$DATA" --precision bf16 --presets "$1" \
    --batch $(( $2 * $3 )) --gpus "$3" --steps "${STEPS:-10}" --warmup 3 --out "$O/scaling-$4.json"
}
for preset in TerDiT-S:64 TerDiT-600M:32; do
  name=${preset%%:*}; b=${preset##*:}
  bench "$name" "$b" 1 "$name-b$b-g1"
  bench "$name" "$b" "$N" "$name-b$b-g$N"
  bench "$name" $(( b / N )) "$N" "$name-b$(( b / N ))-g$N"
done
