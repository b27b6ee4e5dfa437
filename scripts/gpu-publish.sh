#!/usr/bin/env bash
# Builds the self-contained, trimmed `terdit` for the GPU machine into gpu-publish/ (git-ignored;
# carry gpu-publish.tar.xz). The GPU machine brings its own libtorch (PyTorch's), so the
# 500 MB libtorch-cpu natives are left out (-p:TerDiTGpu=true). See ../shared/DEVICE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet publish src/TerDiT.Cli -c Release -r linux-x64 --self-contained true \
  -p:PublishTrimmed=true -p:TerDiTGpu=true -o gpu-publish "$@"
# What the GPU runs never load, removed so that gpu-publish/ and gpu-data/ fit the 64 MiB carry limit:
# debug symbols and tools, the alternative GCs, the graphics natives (plots are drawn here) and the
# shipped model (sampling it is a CPU job).
(cd gpu-publish && rm -f -- *.pdb createdump libmscordbi.so libmscordaccore.so libclrgc.so libclrgcexp.so \
  libcoreclrtraceptprovider.so libSkiaSharp.so libHarfBuzzSharp.so models/terdit-s-fmnist.tdit)
# Carried compressed (8.5 MB instead of 29 MB); on the GPU machine: tar xJf gpu-publish.tar.xz
tar cJf gpu-publish.tar.xz gpu-publish
du -sh gpu-publish gpu-publish.tar.xz
