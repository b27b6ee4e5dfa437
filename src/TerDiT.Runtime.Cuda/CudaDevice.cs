using System.Text;
using TerDiT.Runtime.Cuda.Driver;

namespace TerDiT.Runtime.Cuda;

/// <summary>
/// One GPU and its primary context, made current on the calling thread, with one non-blocking stream on which
/// every kernel of this backend runs in order. Open it once per process (<see cref="Open"/>); a model keeps it.
/// Tracks the bytes this backend has allocated (<see cref="AllocatedBytes"/>, <see cref="PeakBytes"/>).
/// </summary>
public sealed class CudaDevice : IDisposable
{
    /// <summary>Oldest architecture the kernels run on: sm_80 (int8 and bf16 <c>mma.sync</c>, <c>cp.async</c>).</summary>
    public const int MinimumComputeCapability = 80;

    static readonly object Gate = new();
    static CudaDevice? shared;
    int _users;
    long _allocated, _peak;

    /// <summary>Device ordinal.</summary>
    public int Ordinal { get; }
    /// <summary>The GPU's name, e.g. "NVIDIA H100 80GB HBM3".</summary>
    public string Name { get; }
    /// <summary>Compute capability as 10·major + minor (90 for sm_90).</summary>
    public int ComputeCapability { get; }
    public int Multiprocessors { get; }
    /// <summary>Device memory in bytes.</summary>
    public long TotalMemory { get; }
    /// <summary>Driver version as reported (e.g. 13000 for CUDA 13.0).</summary>
    public int DriverVersion { get; }
    /// <summary>Free device memory right after the context was made (cuMemGetInfo).</summary>
    public long FreeAtOpen { get; }
    internal nint Stream { get; }
    readonly nint _context;

    /// <summary>Bytes allocated by this backend now.</summary>
    public long AllocatedBytes => Interlocked.Read(ref _allocated);
    /// <summary>Most bytes allocated by this backend at once since the device was opened.</summary>
    public long PeakBytes => Interlocked.Read(ref _peak);

    CudaDevice(int ordinal)
    {
        Ordinal = ordinal;
        Cu.Check(NativeMethods.cuDeviceGet(out int dev, ordinal), "cuDeviceGet");
        Name = DeviceName(dev);
        Cu.Check(NativeMethods.cuDeviceGetAttribute(out int major, NativeMethods.AttributeComputeCapabilityMajor, dev), "cuDeviceGetAttribute");
        Cu.Check(NativeMethods.cuDeviceGetAttribute(out int minor, NativeMethods.AttributeComputeCapabilityMinor, dev), "cuDeviceGetAttribute");
        ComputeCapability = major * 10 + minor;
        if (ComputeCapability < MinimumComputeCapability)
            throw new CudaUnavailableException($"GPU too old for the CUDA backend: {Name} is sm_{ComputeCapability}, sm_{MinimumComputeCapability} or newer is needed");
        Cu.Check(NativeMethods.cuDeviceGetAttribute(out int sms, NativeMethods.AttributeMultiprocessorCount, dev), "cuDeviceGetAttribute");
        Multiprocessors = sms;
        Cu.Check(NativeMethods.cuDeviceTotalMem(out nuint total, dev), "cuDeviceTotalMem");
        TotalMemory = (long)total;
        Cu.Check(NativeMethods.cuDriverGetVersion(out int version), "cuDriverGetVersion");
        DriverVersion = version;
        Cu.Check(NativeMethods.cuDevicePrimaryCtxRetain(out _context, dev), "cuDevicePrimaryCtxRetain");
        MakeCurrent();
        Cu.Check(NativeMethods.cuStreamCreate(out nint stream, NativeMethods.StreamNonBlocking), "cuStreamCreate");
        Stream = stream;
        FreeAtOpen = FreeMemory();
    }

    /// <summary>
    /// The process's device <paramref name="ordinal"/> (opened on first use, shared by later callers until each has
    /// disposed it). Throws <see cref="CudaUnavailableException"/> when the driver, a GPU or a recent enough GPU is missing.
    /// </summary>
    public static CudaDevice Open(int ordinal = 0)
    {
        lock (Gate)
        {
            if (shared == null)
            {
                Initialize();
                Cu.Check(NativeMethods.cuDeviceGetCount(out int count), "cuDeviceGetCount");
                if (count == 0) throw new CudaUnavailableException("no CUDA GPU found: the NVIDIA driver is installed but reports 0 devices");
                if (ordinal < 0 || ordinal >= count)
                    throw new CudaUnavailableException($"CUDA device {ordinal} does not exist: the driver reports {count} device(s)");
                shared = new CudaDevice(ordinal);
            }
            else if (shared.Ordinal != ordinal)
                throw new ArgumentException($"CUDA device {shared.Ordinal} is already open in this process; one device per process");
            shared.MakeCurrent();
            shared._users++;
            return shared;
        }
    }

    static void Initialize()
    {
        int result;
        try { result = NativeMethods.cuInit(0); }
        catch (DllNotFoundException e)
        {
            throw new CudaUnavailableException("no CUDA driver: libcuda.so.1 (installed with the NVIDIA driver) was not found", e);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new CudaUnavailableException($"CUDA driver too old: libcuda.so.1 lacks {e.Message}", e);
        }
        if (result == NativeMethods.ErrorNoDevice) throw new CudaUnavailableException("no CUDA GPU found: libcuda.so.1 loaded, cuInit reports no device");
        if (result != 0) throw new CudaUnavailableException($"the CUDA driver did not start: cuInit returned error {result}");
    }

    /// <summary>Makes this device's context current on the calling thread (every public entry point does).</summary>
    internal void MakeCurrent() => Cu.Check(NativeMethods.cuCtxSetCurrent(_context), "cuCtxSetCurrent");

    static unsafe string DeviceName(int dev)
    {
        byte* name = stackalloc byte[256];
        Cu.Check(NativeMethods.cuDeviceGetName(name, 256, dev), "cuDeviceGetName");
        int n = 0;
        while (n < 256 && name[n] != 0) n++;
        return Encoding.UTF8.GetString(name, n);
    }

    /// <summary>Free device memory now (cuMemGetInfo), all processes counted.</summary>
    public long FreeMemory()
    {
        Cu.Check(NativeMethods.cuMemGetInfo(out nuint free, out _), "cuMemGetInfo");
        return (long)free;
    }

    /// <summary>"free X of Y GiB" for the current context, or "no context" (used in out-of-memory messages).</summary>
    internal static string MemoryText() =>
        NativeMethods.cuMemGetInfo(out nuint free, out nuint total) == 0
            ? $"{free / (double)(1 << 30):F2} GiB free of {total / (double)(1 << 30):F2} GiB"
            : "memory information unavailable";

    internal ulong Allocate(long bytes)
    {
        if (bytes <= 0) throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "allocation must be positive");
        MakeCurrent();
        int r = NativeMethods.cuMemAlloc(out ulong p, (nuint)bytes);
        if (r == NativeMethods.ErrorOutOfMemory)
            throw new CudaUnavailableException($"CUDA device out of memory: {bytes / (double)(1 << 20):F1} MiB more needed, "
                + $"{AllocatedBytes / (double)(1 << 20):F1} MiB held by this model, {MemoryText()} on {Name}");
        Cu.Check(r, "cuMemAlloc");
        long now = Interlocked.Add(ref _allocated, bytes);
        long peak;
        while (now > (peak = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, peak) != peak) { }
        return p;
    }

    internal void Free(ulong pointer, long bytes)
    {
        Cu.Check(NativeMethods.cuMemFree(pointer), "cuMemFree");
        Interlocked.Add(ref _allocated, -bytes);
    }

    /// <summary>Restarts <see cref="PeakBytes"/> from the bytes allocated now.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref _peak, AllocatedBytes);

    /// <summary>Waits until every launch on the stream has finished.</summary>
    public void Synchronize() => Cu.Check(NativeMethods.cuStreamSynchronize(Stream), "cuStreamSynchronize");

    public void Dispose()
    {
        lock (Gate)
        {
            if (_users == 0 || --_users > 0) return;
            // The context stays with the process (primary contexts are shared); only our stream goes.
            NativeMethods.cuStreamDestroy(Stream);
            NativeMethods.cuDevicePrimaryCtxRelease(Ordinal);
            shared = null;
        }
    }
}
