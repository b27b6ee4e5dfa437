using System.Runtime.CompilerServices;
using TerDiT.Runtime.Cuda.Driver;

namespace TerDiT.Runtime.Cuda;

/// <summary>One embedded kernel source loaded on a device (compiled or taken from the cache by <see cref="KernelCompiler"/>).</summary>
internal sealed class CudaModule : IDisposable
{
    readonly CudaDevice _device;
    readonly Dictionary<string, CudaKernel> _kernels = new();
    nint _module;

    /// <summary>Whether the cubin came from the disk cache.</summary>
    public bool FromCache { get; }

    public unsafe CudaModule(CudaDevice device, string source)
    {
        _device = device;
        var cubin = KernelCompiler.Cubin(source, device.ComputeCapability, out bool cached);
        FromCache = cached;
        device.MakeCurrent();
        fixed (byte* p = cubin) Cu.Check(NativeMethods.cuModuleLoadData(out _module, p), $"cuModuleLoadData({source})");
    }

    /// <summary>The kernel named <paramref name="name"/> (an <c>extern "C"</c> function of the source).</summary>
    public CudaKernel this[string name]
    {
        get
        {
            lock (_kernels)
            {
                if (!_kernels.TryGetValue(name, out var k))
                {
                    Cu.Check(NativeMethods.cuModuleGetFunction(out nint f, _module, name), $"cuModuleGetFunction({name})");
                    _kernels[name] = k = new CudaKernel(_device, f, name);
                }
                return k;
            }
        }
    }

    public void Dispose()
    {
        if (_module == 0) return;
        NativeMethods.cuModuleUnload(_module);
        _module = 0;
    }
}

/// <summary>A kernel function; launches go to the device's stream.</summary>
internal sealed class CudaKernel(CudaDevice device, nint function, string name)
{
    const int StaticSharedLimit = 48 * 1024;
    int _sharedLimit = StaticSharedLimit;

    public string Name => name;

    /// <summary>Queues the kernel with the given grid, block, dynamic shared memory and arguments.</summary>
    public unsafe void Launch(uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, int sharedBytes, KernelArgs args)
    {
        if (gridX == 0 || gridY == 0 || gridZ == 0) return;
        if (sharedBytes > _sharedLimit)
        {
            Cu.Check(NativeMethods.cuFuncSetAttribute(function, NativeMethods.FuncAttributeMaxDynamicSharedBytes, sharedBytes), $"cuFuncSetAttribute({name})");
            _sharedLimit = sharedBytes;
        }
        void** pointers = stackalloc void*[args.Count];
        args.Pointers(pointers);
        Cu.Check(NativeMethods.cuLaunchKernel(function, gridX, gridY, gridZ, blockX, blockY, 1, (uint)sharedBytes, device.Stream, pointers, null),
            $"cuLaunchKernel({name})");
    }
}

/// <summary>
/// Kernel arguments packed in order, each 8-byte aligned, in pinned memory the driver reads through pointers at
/// launch. One instance is reused for consecutive launches (<see cref="Clear"/>); not thread-safe.
/// </summary>
internal sealed unsafe class KernelArgs
{
    const int MaxBytes = 512, MaxCount = 24;
    readonly byte[] _data = GC.AllocateArray<byte>(MaxBytes, pinned: true);
    readonly int[] _offsets = new int[MaxCount];
    int _used;

    public int Count { get; private set; }

    public KernelArgs Clear()
    {
        _used = 0;
        Count = 0;
        return this;
    }

    public KernelArgs Add<T>(T value) where T : unmanaged
    {
        int at = (_used + 7) & ~7;
        if (at + sizeof(T) > MaxBytes || Count == MaxCount) throw new InvalidOperationException("too many kernel arguments");
        Unsafe.WriteUnaligned(ref _data[at], value);
        _offsets[Count++] = at;
        _used = at + sizeof(T);
        return this;
    }

    /// <summary>Writes the argument pointers into <paramref name="pointers"/> (Count entries).</summary>
    public void Pointers(void** pointers)
    {
        byte* data = (byte*)Unsafe.AsPointer(ref _data[0]);
        for (int i = 0; i < Count; i++) pointers[i] = data + _offsets[i];
    }
}
