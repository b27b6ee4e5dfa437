using System.Reflection;
using System.Runtime.InteropServices;

namespace TerDiT.Distributed;

/// <summary>
/// P/Invoke into NCCL (<c>nccl.h</c>, NCCL 2.x ABI: results are <c>ncclResult_t</c> ints, a
/// communicator is an opaque pointer, <c>ncclUniqueId</c> is 128 bytes passed by value).
/// The library name "nccl" is resolved by <see cref="NativeLibraries"/> to <c>libnccl.so.2</c>
/// (found through LD_LIBRARY_PATH; on the GPU machine it is the venv's <c>nvidia/nccl/lib</c>).
/// </summary>
internal static unsafe partial class NcclNativeMethods
{
    const string Library = NativeLibraries.Nccl;

    static NcclNativeMethods() => NativeLibraries.EnsureResolver();

    /// <summary><c>ncclDataType_t</c> values.</summary>
    internal const int Int8 = 0, Uint8 = 1, Int32 = 2, Int64 = 4, Float16 = 6, Float32 = 7, Float64 = 8, Bfloat16 = 9;
    /// <summary><c>ncclRedOp_t</c>: ncclSum.</summary>
    internal const int Sum = 0;
    /// <summary><c>ncclResult_t</c>: ncclSuccess.</summary>
    internal const int Success = 0;

    [LibraryImport(Library)] internal static partial int ncclGetVersion(int* version);
    [LibraryImport(Library)] internal static partial int ncclGetUniqueId(NcclUniqueId* uniqueId);
    [LibraryImport(Library)] internal static partial int ncclCommInitRank(IntPtr* comm, int nranks, NcclUniqueId commId, int rank);
    [LibraryImport(Library)] internal static partial int ncclCommDestroy(IntPtr comm);
    [LibraryImport(Library)] internal static partial int ncclCommGetAsyncError(IntPtr comm, int* asyncError);
    [LibraryImport(Library)] internal static partial int ncclGroupStart();
    [LibraryImport(Library)] internal static partial int ncclGroupEnd();
    [LibraryImport(Library)] internal static partial int ncclAllReduce(IntPtr sendbuff, IntPtr recvbuff, nuint count, int datatype, int op, IntPtr comm, IntPtr stream);
    [LibraryImport(Library)] internal static partial int ncclBroadcast(IntPtr sendbuff, IntPtr recvbuff, nuint count, int datatype, int root, IntPtr comm, IntPtr stream);
    [LibraryImport(Library)] internal static partial byte* ncclGetErrorString(int result);
    [LibraryImport(Library)] internal static partial byte* ncclGetLastError(IntPtr comm);
}

/// <summary><c>ncclUniqueId</c>: the 128 opaque bytes rank 0 creates and every rank passes to <c>ncclCommInitRank</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NcclUniqueId
{
    public const int Size = 128;
    public fixed byte Internal[Size];
}

/// <summary>
/// LibTorchSharp's <c>THSTensor_data</c>, which TorchSharp 0.107 declares only internally
/// (<c>TorchSharp.PInvoke.NativeMethods.THSTensor_data(IntPtr handle)</c>). Its C++ body in
/// LibTorchSharp/THSTensor.cpp is <c>CATCH_RETURN(void*, NULL, tensor-&gt;data_ptr())</c>: the address
/// of the tensor's first element (storage base plus storage offset), on whatever device the tensor
/// lives — for a CUDA tensor a device pointer. The argument is the public <c>Tensor.Handle</c>.
/// </summary>
internal static partial class LibTorchSharpNativeMethods
{
    [LibraryImport("LibTorchSharp")] internal static partial IntPtr THSTensor_data(IntPtr handle);
}

/// <summary>
/// libc's <c>setenv</c>: .NET's <see cref="Environment.SetEnvironmentVariable(string, string)"/> on Unix
/// changes only the runtime's managed copy of the environment, which native libraries (NCCL reads
/// <c>NCCL_NVLS_ENABLE</c> with <c>getenv</c>) never see.
/// </summary>
internal static partial class LibcNativeMethods
{
    static LibcNativeMethods() => NativeLibraries.EnsureResolver();

    [LibraryImport(NativeLibraries.Libc, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int setenv(string name, string value, int overwrite);
}

/// <summary>
/// The TerDiT assembly's DllImport resolver (an assembly has at most one): maps "nccl" to
/// <c>$TERDIT_NCCL_LIBRARY</c> or <c>libnccl.so.2</c> and "libc" to <c>libc.so.6</c>; every other name
/// falls through to the default probing.
/// </summary>
internal static class NativeLibraries
{
    internal const string Nccl = "nccl", Libc = "libc";
    /// <summary>Environment variable naming an explicit NCCL library path.</summary>
    internal const string NcclLibraryVariable = "TERDIT_NCCL_LIBRARY";
    static int registered;

    internal static void EnsureResolver()
    {
        if (Interlocked.Exchange(ref registered, 1) == 0)
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
    }

    static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name == Libc) return NativeLibrary.Load("libc.so.6");
        if (name != Nccl) return IntPtr.Zero;
        string[] candidates = Environment.GetEnvironmentVariable(NcclLibraryVariable) is { Length: > 0 } explicitPath
            ? [explicitPath] : ["libnccl.so.2", "libnccl.so"];
        foreach (var candidate in candidates)
            if (NativeLibrary.TryLoad(candidate, out var handle)) return handle;
        throw new DllNotFoundException(
            $"NCCL could not be loaded (tried {string.Join(", ", candidates)}). Put the directory holding libnccl.so.2 on " +
            $"LD_LIBRARY_PATH (on the GPU machine: source scripts/gpu-env.sh, which adds the venv's nvidia/nccl/lib) " +
            $"or set {NcclLibraryVariable} to its full path.");
    }
}
