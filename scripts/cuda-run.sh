#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (driver, NVRTC; PyTorch for the baselines), from the repository root, after
# `tar xJf cuda-publish.tar.xz` (scripts/cuda-publish.sh): the CUDA tests, `terdit bench runtime --device cuda` with
# the PyTorch baselines of the same call, the shipped model's eval on the GPU, and an Nsight Compute report of the
# main GEMM kernel. Everything lands in RESULTS_DIR; a summary is printed last.
# usage: bash cuda-publish/cuda-run.sh RESULTS_DIR [full|smoke|check]
# Each step has its own time limit; DEADLINE=S also cuts every limit to what is left of S seconds after the start
# and skips the optional last steps (exact-mode eval, Nsight Compute) when too little is left.
set -uo pipefail
P=$(cd "$(dirname "$0")" && pwd)
RESULTS=${1:?usage: cuda-run.sh RESULTS_DIR [full|smoke|check]}
PHASE=${2:-full}
mkdir -p "$RESULTS"
export DOTNET_ROOT=$P/dotnet DOTNET_CLI_TELEMETRY_OPTOUT=1 NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
TERDIT=$P/cli/TerDiT.Cli
MODELS=${MODELS_DIR:-/tmp/terdit-models}
# TorchSharp (eval's feature network) binds to PyTorch's libtorch and CUDA libraries.
TORCH_LIBS=$(python3 -c 'import os, glob, torch; d = os.path.dirname(torch.__file__); print(":".join([d + "/lib"] + sorted(glob.glob(os.path.dirname(d) + "/nvidia/*/lib"))))' 2>/dev/null)
summary=()
step() { # name timeout command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$RESULTS/$name.log" 2>&1
  local rc=$?
  summary+=("$(printf '%-8s rc=%-3s %4ss' "$name" "$rc" $((SECONDS - t0)))")
  echo "== $name: rc=$rc after $((SECONDS - t0)) s"; tail -n 4 "$RESULTS/$name.log"
}
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; cat "$P/COMMIT" 2>/dev/null; } > "$RESULTS/gpu.txt" 2>&1
cat "$RESULTS/gpu.txt"

DEADLINE=${DEADLINE:-}
left() { # a step's own limit, cut to what is left before DEADLINE
  [ -z "$DEADLINE" ] && { echo "$1"; return; }
  local l=$((DEADLINE - SECONDS)); [ "$1" -lt "$l" ] && echo "$1" || echo $((l > 5 ? l : 5)); }
time_for() { [ -z "$DEADLINE" ] || [ $((DEADLINE - SECONDS)) -gt "$1" ]; } # more than $1 s left (always without DEADLINE)
EVAL=(env LD_LIBRARY_PATH="$TORCH_LIBS:$P/cli" "$TERDIT" eval --model models/terdit-s-fmnist.tdit --device cuda --reference-dir "$P/data")
if [ "$PHASE" = check ]; then
  # The tests, and the shipped model's eval at the settings of the CPU runtime's table in docs/RESULTS.md.
  step tests "$(left 120)" "$P/tests/TerDiT.Runtime.Cuda.Tests" -noColor -parallel none
  for m in exact a8; do
    step eval-$m "$(left 60)" "${EVAL[@]}" --mode $m --samples 300 --steps 25 --cfg 1.5 --batch 100 --seed 0 --out "$RESULTS/eval-cuda-$m-300.json"
  done
elif [ "$PHASE" = smoke ]; then
  step tests "$(left 200)" "$P/tests/TerDiT.Runtime.Cuda.Tests" -noColor -parallel none
  step bench "$(left 150)" "$TERDIT" bench runtime --device cuda --presets TerDiT-S,TerDiT-600M,TerDiT-4.2B --batches 1,16 \
    --gemm-rows 2048 --repetitions 3 --rounds 1 --model-dir "$MODELS" --out "$RESULTS/runtime-cuda.json"
  step torch "$(left 130)" python3 "$P/torch_runtime.py" --json "$RESULTS/runtime-cuda.json" --batches 16 \
    --fp8-points TerDiT-600M:16 --gemm-rows 2048 --warmup 1 --reps 3
  step eval "$(left 90)" "${EVAL[@]}" --mode a8 --samples 200 --out "$RESULTS/eval-cuda-a8.json"
else
  step tests "$(left 120)" "$P/tests/TerDiT.Runtime.Cuda.Tests" -noColor -parallel none
  step bench "$(left 130)" "$TERDIT" bench runtime --device cuda --presets TerDiT-4.2B,TerDiT-600M,TerDiT-S --model-dir "$MODELS" --out "$RESULTS/runtime-cuda.json"
  step eval-a8 "$(left 60)" "${EVAL[@]}" --mode a8 --samples 1000 --out "$RESULTS/eval-cuda-a8.json"
  step torch "$(left 400)" python3 "$P/torch_runtime.py" --json "$RESULTS/runtime-cuda.json" --warmup 2 --reps 7 \
    --impls authors-unpack,torch-bf16-eager,torch-bf16-compile,torch-fp8-compile \
    --bf16-compile-points TerDiT-600M:1,TerDiT-600M:16,TerDiT-4.2B:1,TerDiT-4.2B:4,TerDiT-4.2B:16
  if time_for 60; then
    step eval-exact "$(left 80)" "${EVAL[@]}" --mode exact --samples 1000 --out "$RESULTS/eval-cuda-exact.json"
  fi
  if time_for 40; then
    # Nsight Compute: the a8 GEMM at M = 8192, 3072 -> 3072 (the 7th launch of the large-tile store kernel: past warm-up).
    step ncu "$(left 60)" ncu --set full -k regex:gemm_t1_m128_e0 --launch-skip 6 -c 1 "$TERDIT" bench runtime --device cuda \
      --presets "" --gemm-rows 8192 --repetitions 1 --rounds 1 --out /tmp/ncu-bench.json
  fi
fi
python3 "$P/torch_runtime.py" --json "$RESULTS/runtime-cuda.json" --summary-only 2>/dev/null | tail -n 20
echo; printf '%s\n' "${summary[@]}"
