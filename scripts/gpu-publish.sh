#!/usr/bin/env bash
# Publishes a self-contained, trimmed `terdit` for a Linux x64 machine with an NVIDIA GPU into
# gpu-publish/ (git-ignored; that machine needs no .NET SDK). The libtorch-cpu natives (500 MB) are left
# out (-p:TerDiTGpu=true): there TorchSharp binds to a CUDA build of libtorch (scripts/gpu-env.sh).
# Also packs gpu-publish.tar.xz for copying it to another machine.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet publish src/TerDiT.Cli -c Release -r linux-x64 --self-contained true \
  -p:PublishTrimmed=true -p:TerDiTGpu=true -o gpu-publish "$@"
tar cJf gpu-publish.tar.xz gpu-publish
du -sh gpu-publish gpu-publish.tar.xz
