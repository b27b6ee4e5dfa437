#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (driver, NVRTC; PyTorch for the baselines), from the repository root, after
# `tar xJf cuda-publish.tar.xz` (scripts/cuda-publish.sh): the CUDA tests, `terdit bench runtime --device cuda` with
# the PyTorch baselines of the same call, the shipped model's eval on the GPU, and an Nsight Compute report of the
# main GEMM kernel. Everything lands in OUT_DIR; a summary is printed last.
# usage: bash cuda-publish/cuda-run.sh OUT_DIR [full|smoke]
set -uo pipefail
P=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: cuda-run.sh OUT_DIR [full|smoke]}
PHASE=${2:-full}
mkdir -p "$OUT"
export DOTNET_ROOT=$P/dotnet DOTNET_CLI_TELEMETRY_OPTOUT=1 NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
TERDIT=$P/cli/TerDiT.Cli
MODELS=${MODELS_DIR:-/tmp/terdit-models}
# TorchSharp (eval's feature network) binds to PyTorch's libtorch and CUDA libraries.
TORCH_LIBS=$(python3 -c 'import os, glob, torch; d = os.path.dirname(torch.__file__); print(":".join([d + "/lib"] + sorted(glob.glob(os.path.dirname(d) + "/nvidia/*/lib"))))' 2>/dev/null)
summary=()
step() { # name timeout command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  summary+=("$(printf '%-8s rc=%-3s %4ss' "$name" "$rc" $((SECONDS - t0)))")
  echo "== $name: rc=$rc after $((SECONDS - t0)) s"; tail -n 4 "$OUT/$name.log"
}
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; cat "$P/COMMIT" 2>/dev/null; } > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"

if [ "$PHASE" = smoke ]; then
  step tests 200 "$P/tests/TerDiT.Runtime.Cuda.Tests" -noColor -parallel none
  step bench 150 "$TERDIT" bench runtime --device cuda --presets TerDiT-S,TerDiT-600M,TerDiT-4.2B --batches 1,16 \
    --gemm-rows 2048 --repetitions 3 --rounds 1 --model-dir "$MODELS" --out "$OUT/runtime-cuda.json"
  step torch 130 python3 "$P/torch_runtime.py" --json "$OUT/runtime-cuda.json" --batches 16 \
    --fp8-points TerDiT-600M:16 --gemm-rows 2048 --warmup 1 --reps 3 --budget-s 100
  step eval 90 env LD_LIBRARY_PATH="$TORCH_LIBS:$P/cli" \
    "$TERDIT" eval --model models/terdit-s-fmnist.tdit --device cuda --mode a8 --samples 200 --reference-dir "$P/data" --out "$OUT/eval-cuda-a8.json"
else
  step tests 300 "$P/tests/TerDiT.Runtime.Cuda.Tests" -noColor -parallel none
  step bench 240 "$TERDIT" bench runtime --device cuda --model-dir "$MODELS" --out "$OUT/runtime-cuda.json"
  step torch 420 python3 "$P/torch_runtime.py" --json "$OUT/runtime-cuda.json" --budget-s 360
fi
echo; printf '%s\n' "${summary[@]}"
