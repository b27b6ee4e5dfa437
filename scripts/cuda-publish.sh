#!/usr/bin/env bash
# Packs what a machine with an NVIDIA GPU and no .NET SDK needs to run the CUDA backend's tests and benchmarks:
# the .NET runtime of this SDK, `terdit` and the CUDA test executable (framework-dependent, sharing that runtime),
# bench/torch_runtime.py, scripts/cuda-run.sh and the Fashion-MNIST test split (the eval reference).
# Output: cuda-publish/ and cuda-publish.tar.xz (git-ignored). There: tar xJf cuda-publish.tar.xz && bash cuda-publish/cuda-run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=cuda-publish
rm -rf "$out" "$out.tar.xz"
mkdir -p "$out/dotnet/shared" "$out/data"
dotnet publish src/TerDiT.Cli -c Release -r linux-x64 --self-contained false -p:TerDiTGpu=true -o "$out/cli"
dotnet publish tests/TerDiT.Runtime.Cuda.Tests -c Release -r linux-x64 --self-contained false -o "$out/tests"
root=$(dirname "$(readlink -f "$(command -v dotnet)")")
cp -a "$root/dotnet" "$root/host" "$out/dotnet/"
version=$(ls "$root/shared/Microsoft.NETCore.App" | sort -V | tail -1)
mkdir -p "$out/dotnet/shared/Microsoft.NETCore.App"
cp -a "$root/shared/Microsoft.NETCore.App/$version" "$out/dotnet/shared/Microsoft.NETCore.App/"
# What these runs never load: symbols, the graphics natives (plots are drawn elsewhere), the shipped model (the
# repository's models/ is used).
(cd "$out" && rm -rf tests/Microsoft.CodeCoverage && rm -f cli/*.pdb tests/*.pdb cli/libSkiaSharp.so cli/libHarfBuzzSharp.so cli/models/terdit-s-fmnist.tdit)
cp bench/torch_runtime.py scripts/cuda-run.sh "$out/"
git rev-parse HEAD > "$out/COMMIT"
data=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
cp "$data"/t10k-* "$out/data/"
tar cJf "$out.tar.xz" "$out"
du -sh "$out" "$out.tar.xz"
