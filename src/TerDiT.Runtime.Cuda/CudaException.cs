using System.Runtime.InteropServices;
using TerDiT.Runtime.Cuda.Driver;

namespace TerDiT.Runtime.Cuda;

/// <summary>A CUDA driver, NVRTC or kernel failure; the message is one line naming the call and the error.</summary>
public class CudaException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The CUDA backend cannot run here: no driver, no GPU, no NVRTC, too old a GPU, or too little device memory.
/// The message is one line saying what is missing and what was found.
/// </summary>
public sealed class CudaUnavailableException(string message, Exception? inner = null) : CudaException(message, inner);

/// <summary>Checks of driver results.</summary>
internal static class Cu
{
    /// <summary>Throws unless <paramref name="result"/> is success; out of memory becomes <see cref="CudaUnavailableException"/>.</summary>
    public static void Check(int result, string call)
    {
        if (result == 0) return;
        string text = $"{call} failed: {ErrorName(result)} ({Describe(result)})";
        if (result == NativeMethods.ErrorOutOfMemory)
            throw new CudaUnavailableException($"CUDA device out of memory: {call} failed ({CudaDevice.MemoryText()})");
        throw new CudaException(text);
    }

    static string ErrorName(int result) =>
        NativeMethods.cuGetErrorName(result, out var p) == 0 && p != 0 ? Marshal.PtrToStringUTF8(p) ?? $"error {result}" : $"error {result}";

    static string Describe(int result) =>
        NativeMethods.cuGetErrorString(result, out var p) == 0 && p != 0 ? Marshal.PtrToStringUTF8(p) ?? "" : "";
}
