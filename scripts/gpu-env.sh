# Source on the GPU machine before running gpu-publish/terdit: binds TorchSharp to PyTorch's
# libtorch and CUDA libraries (../shared/DEVICE.md). NVLink multicast stays off (NCCL_NVLS_ENABLE=0).
TL=/opt/torch/.venv/lib/python3.12/site-packages/torch/lib
NV=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH=$TL:$(ls -d $NV/*/lib | tr '\n' ':')$PWD/gpu-publish
export NCCL_NVLS_ENABLE=0
