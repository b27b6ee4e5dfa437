using System.Runtime.InteropServices;

namespace TerDiT.Runtime.Cuda.Driver;

/// <summary>
/// The CUDA driver API (<c>libcuda.so.1</c>, installed with the NVIDIA driver), the functions this backend uses.
/// Every function returns a <c>CUresult</c> (0 = success); <see cref="Cu.Check"/> turns the rest into exceptions.
/// Versioned entry points (<c>_v2</c>) are the ones the driver exports for 64-bit pointers and sizes.
/// </summary>
internal static partial class NativeMethods
{
    const string Lib = "libcuda.so.1";

    [LibraryImport(Lib)] internal static partial int cuInit(uint flags);
    [LibraryImport(Lib)] internal static partial int cuDriverGetVersion(out int version);
    [LibraryImport(Lib)] internal static partial int cuDeviceGetCount(out int count);
    [LibraryImport(Lib)] internal static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Lib)] internal static unsafe partial int cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib)] internal static partial int cuDeviceGetAttribute(out int value, int attribute, int device);
    [LibraryImport(Lib, EntryPoint = "cuDeviceTotalMem_v2")] internal static partial int cuDeviceTotalMem(out nuint bytes, int device);
    [LibraryImport(Lib)] internal static partial int cuDevicePrimaryCtxRetain(out nint context, int device);
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] internal static partial int cuDevicePrimaryCtxRelease(int device);
    [LibraryImport(Lib)] internal static partial int cuCtxSetCurrent(nint context);
    [LibraryImport(Lib)] internal static partial int cuCtxSynchronize();
    [LibraryImport(Lib, EntryPoint = "cuMemGetInfo_v2")] internal static partial int cuMemGetInfo(out nuint free, out nuint total);
    [LibraryImport(Lib, EntryPoint = "cuMemAlloc_v2")] internal static partial int cuMemAlloc(out ulong pointer, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemFree_v2")] internal static partial int cuMemFree(ulong pointer);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoDAsync_v2")] internal static unsafe partial int cuMemcpyHtoDAsync(ulong dst, void* src, nuint bytes, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoHAsync_v2")] internal static unsafe partial int cuMemcpyDtoHAsync(void* dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(Lib)] internal static partial int cuMemsetD8Async(ulong dst, byte value, nuint count, nint stream);
    [LibraryImport(Lib)] internal static partial int cuStreamCreate(out nint stream, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuStreamDestroy_v2")] internal static partial int cuStreamDestroy(nint stream);
    [LibraryImport(Lib)] internal static partial int cuStreamSynchronize(nint stream);
    [LibraryImport(Lib, EntryPoint = "cuStreamBeginCapture_v2")] internal static partial int cuStreamBeginCapture(nint stream, int mode);
    [LibraryImport(Lib)] internal static partial int cuStreamEndCapture(nint stream, out nint graph);
    [LibraryImport(Lib)] internal static partial int cuGraphInstantiateWithFlags(out nint exec, nint graph, ulong flags);
    [LibraryImport(Lib)] internal static partial int cuGraphLaunch(nint exec, nint stream);
    [LibraryImport(Lib)] internal static partial int cuGraphExecDestroy(nint exec);
    [LibraryImport(Lib)] internal static partial int cuGraphDestroy(nint graph);
    [LibraryImport(Lib)] internal static unsafe partial int cuModuleLoadData(out nint module, void* image);
    [LibraryImport(Lib)] internal static partial int cuModuleUnload(nint module);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] internal static partial int cuModuleGetFunction(out nint function, nint module, string name);
    [LibraryImport(Lib)] internal static partial int cuFuncSetAttribute(nint function, int attribute, int value);
    [LibraryImport(Lib)] internal static unsafe partial int cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ, uint sharedBytes, nint stream, void** parameters, void** extra);
    [LibraryImport(Lib)] internal static partial int cuEventCreate(out nint evt, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuEventDestroy_v2")] internal static partial int cuEventDestroy(nint evt);
    [LibraryImport(Lib)] internal static partial int cuEventRecord(nint evt, nint stream);
    [LibraryImport(Lib)] internal static partial int cuEventSynchronize(nint evt);
    [LibraryImport(Lib)] internal static partial int cuEventElapsedTime(out float milliseconds, nint start, nint end);
    [LibraryImport(Lib)] internal static partial int cuGetErrorName(int error, out nint name);
    [LibraryImport(Lib)] internal static partial int cuGetErrorString(int error, out nint text);

    internal const int AttributeComputeCapabilityMajor = 75, AttributeComputeCapabilityMinor = 76, AttributeMultiprocessorCount = 16;
    internal const int FuncAttributeMaxDynamicSharedBytes = 8;
    internal const int StreamNonBlocking = 1;
    internal const int CaptureModeRelaxed = 2;
    internal const int ErrorOutOfMemory = 2, ErrorNoDevice = 100;
}
