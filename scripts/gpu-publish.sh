#!/usr/bin/env bash
# Builds the self-contained, trimmed `terdit` for the GPU machine into gpu-publish/ (git-ignored;
# name it in the device tool's `carry`). The GPU machine brings its own libtorch (PyTorch's), so the
# 500 MB libtorch-cpu natives are left out (-p:TerDiTGpu=true). See ../shared/DEVICE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet publish src/TerDiT.Cli -c Release -r linux-x64 --self-contained true \
  -p:PublishTrimmed=true -p:TerDiTGpu=true -o gpu-publish "$@"
du -sh gpu-publish
