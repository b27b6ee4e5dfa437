# Source before running the `terdit` of scripts/gpu-publish.sh on a Linux machine with an NVIDIA GPU:
# points TorchSharp at a CUDA build of libtorch and the CUDA libraries next to it. Default: the
# libtorch of the PyTorch that `python3` imports (pip install torch==2.10.*: TorchSharp 0.107 needs
# libtorch 2.10) and its nvidia-* wheels (CUDA runtime, cuBLAS, cuDNN, NCCL); set TORCH_LIB to use
# another libtorch/lib folder.
TORCH_LIB=${TORCH_LIB:-$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}
NVIDIA_LIBS=$(ls -d "$TORCH_LIB"/../../nvidia/*/lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH=$TORCH_LIB:$NVIDIA_LIBS$PWD/gpu-publish${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
