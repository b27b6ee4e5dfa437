using static TorchSharp.torch;

namespace TerDiT.Distributed;

/// <summary>Raw addresses of tensor memory, for handing tensors to native libraries such as NCCL.</summary>
public static class TensorMemory
{
    /// <summary>
    /// Address of the first element of <paramref name="tensor"/> (a device pointer for a CUDA tensor):
    /// LibTorchSharp's <c>THSTensor_data</c> = <c>at::Tensor::data_ptr()</c>, which includes the storage
    /// offset of views. The tensor must be contiguous (so its elements occupy
    /// <c>numel · element_size</c> bytes from there) and stay alive while the address is used.
    /// </summary>
    public static IntPtr DataPointer(Tensor tensor)
    {
        if (!tensor.is_contiguous()) throw new ArgumentException("the tensor must be contiguous to be addressed as one buffer");
        var ptr = LibTorchSharpNativeMethods.THSTensor_data(tensor.Handle);
        GC.KeepAlive(tensor);
        if (ptr == IntPtr.Zero && tensor.NumberOfElements > 0)
            throw new InvalidOperationException($"LibTorchSharp returned no data pointer for a {tensor.dtype} tensor on {tensor.device}");
        return ptr;
    }
}
