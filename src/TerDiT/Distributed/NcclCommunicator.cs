using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Distributed;

/// <summary>
/// <see cref="ICommunicator"/> over NCCL, one rank per process and one GPU per rank (the process's
/// current CUDA device, which libtorch and NCCL both take as device 0 of CUDA_VISIBLE_DEVICES).
/// Every collective is enqueued on CUDA's legacy default stream (stream handle 0): TorchSharp issues
/// its kernels on libtorch's default stream, which is that same legacy stream (TorchSharp 0.107 never
/// switches streams), so a collective runs after the kernels that produced its input and before any
/// kernel issued after the call — no extra synchronisation is needed. Collectives are asynchronous
/// with respect to the CPU; <see cref="Barrier"/> waits for them.
/// NVLink multicast (NVLS) is disabled in the process environment before the communicator is created.
/// </summary>
public sealed unsafe class NcclCommunicator : ICommunicator
{
    IntPtr comm;
    readonly Device device;

    NcclCommunicator(IntPtr comm, int rank, int worldSize, Device device)
    {
        this.comm = comm; Rank = rank; WorldSize = worldSize; this.device = device;
    }

    public int Rank { get; }
    public int WorldSize { get; }

    /// <summary>NCCL's version code (e.g. 22703 for 2.27.3); throws <see cref="DllNotFoundException"/> with a hint when NCCL cannot be loaded.</summary>
    public static int Version()
    {
        int v;
        Check(NcclNativeMethods.ncclGetVersion(&v), IntPtr.Zero, "ncclGetVersion");
        return v;
    }

    /// <summary>
    /// Joins the NCCL clique of a launched rank: rank 0 creates the unique id and publishes it in
    /// <see cref="DistributedEnvironment.RendezvousFile"/>; the others wait up to <paramref name="timeout"/>
    /// for it. Blocks until all <c>WorldSize</c> ranks have joined.
    /// </summary>
    public static NcclCommunicator Create(DistributedEnvironment environment, TimeSpan timeout, Device? device = null)
    {
        DisableNvls();
        NcclUniqueId id;
        if (environment.IsMain)
        {
            Check(NcclNativeMethods.ncclGetUniqueId(&id), IntPtr.Zero, "ncclGetUniqueId");
            Rendezvous.Publish(environment.RendezvousFile, new ReadOnlySpan<byte>(id.Internal, NcclUniqueId.Size));
        }
        else
        {
            var bytes = Rendezvous.Wait(environment.RendezvousFile, NcclUniqueId.Size, timeout);
            bytes.CopyTo(new Span<byte>(id.Internal, NcclUniqueId.Size));
        }
        return Join(id, environment.Rank, environment.WorldSize, device ?? torch.CUDA);
    }

    /// <summary>A world of one rank (no rendezvous): every collective is the identity, but still runs through NCCL.</summary>
    public static NcclCommunicator CreateSingle(Device? device = null)
    {
        DisableNvls();
        NcclUniqueId id;
        Check(NcclNativeMethods.ncclGetUniqueId(&id), IntPtr.Zero, "ncclGetUniqueId");
        return Join(id, 0, 1, device ?? torch.CUDA);
    }

    static NcclCommunicator Join(NcclUniqueId id, int rank, int worldSize, Device device)
    {
        if (device.type != DeviceType.CUDA) throw new ArgumentException($"NCCL needs a CUDA device, not {device}");
        device = new Device(DeviceType.CUDA, Math.Max(device.index, 0)); // torch.CUDA has index −1: the current device, 0
        IntPtr c;
        Check(NcclNativeMethods.ncclCommInitRank(&c, worldSize, id, rank), IntPtr.Zero, $"ncclCommInitRank(rank {rank} of {worldSize})");
        return new NcclCommunicator(c, rank, worldSize, device);
    }

    /// <summary>Sets NCCL_NVLS_ENABLE=0 in the native process environment (what NCCL's getenv reads) and in .NET's copy.</summary>
    public static void DisableNvls()
    {
        Environment.SetEnvironmentVariable(DistributedEnvironment.NvlsVariable, "0");
        if (LibcNativeMethods.setenv(DistributedEnvironment.NvlsVariable, "0", 1) != 0)
            throw new InvalidOperationException($"setenv({DistributedEnvironment.NvlsVariable}) failed with errno {Marshal.GetLastPInvokeError()}");
    }

    public void AllReduceSum(IReadOnlyList<Tensor> tensors)
    {
        ThrowIfDisposed();
        var args = tensors.Select(Describe).ToArray();
        Check(NcclNativeMethods.ncclGroupStart(), comm, "ncclGroupStart");
        int result = NcclNativeMethods.Success;
        foreach (var (ptr, count, type) in args)
        {
            result = NcclNativeMethods.ncclAllReduce(ptr, ptr, count, type, NcclNativeMethods.Sum, comm, IntPtr.Zero);
            if (result != NcclNativeMethods.Success) break;
        }
        int end = NcclNativeMethods.ncclGroupEnd();
        GC.KeepAlive(tensors);
        Check(result, comm, "ncclAllReduce");
        Check(end, comm, "ncclGroupEnd");
    }

    public void Broadcast(Tensor tensor, int root)
    {
        ThrowIfDisposed();
        if ((uint)root >= (uint)WorldSize) throw new ArgumentOutOfRangeException(nameof(root), $"root {root} outside 0..{WorldSize - 1}");
        var (ptr, count, type) = Describe(tensor);
        Check(NcclNativeMethods.ncclBroadcast(ptr, ptr, count, type, root, comm, IntPtr.Zero), comm, "ncclBroadcast");
        GC.KeepAlive(tensor);
    }

    /// <summary>An all-reduce of one element followed by a device synchronisation; also surfaces asynchronous NCCL errors.</summary>
    public void Barrier()
    {
        ThrowIfDisposed();
        using (var token = torch.ones(1, ScalarType.Float32, device))
        {
            AllReduceSum([token]);
            torch.cuda.synchronize(device);
        }
        int asyncError;
        Check(NcclNativeMethods.ncclCommGetAsyncError(comm, &asyncError), comm, "ncclCommGetAsyncError");
        Check(asyncError, comm, "an earlier collective");
    }

    public void Dispose()
    {
        if (comm == IntPtr.Zero) return;
        var c = comm;
        comm = IntPtr.Zero;
        Check(NcclNativeMethods.ncclCommDestroy(c), IntPtr.Zero, "ncclCommDestroy");
    }

    (IntPtr Ptr, nuint Count, int Type) Describe(Tensor t)
    {
        if (t.device_type != DeviceType.CUDA || t.device_index != device.index)
            throw new ArgumentException($"NCCL tensors must live on {device}, not {t.device}");
        return (TensorMemory.DataPointer(t), (nuint)t.NumberOfElements, DataType(t.dtype));
    }

    /// <summary>The <c>ncclDataType_t</c> of a TorchSharp dtype; throws for dtypes NCCL cannot reduce.</summary>
    public static int DataType(ScalarType dtype) => dtype switch
    {
        ScalarType.Int8 => NcclNativeMethods.Int8,
        ScalarType.Byte => NcclNativeMethods.Uint8,
        ScalarType.Int32 => NcclNativeMethods.Int32,
        ScalarType.Int64 => NcclNativeMethods.Int64,
        ScalarType.Float16 => NcclNativeMethods.Float16,
        ScalarType.Float32 => NcclNativeMethods.Float32,
        ScalarType.Float64 => NcclNativeMethods.Float64,
        ScalarType.BFloat16 => NcclNativeMethods.Bfloat16,
        _ => throw new ArgumentException($"NCCL has no data type for {dtype}"),
    };

    void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(comm == IntPtr.Zero, this);

    static void Check(int result, IntPtr comm, string what)
    {
        if (result == NcclNativeMethods.Success) return;
        var message = Marshal.PtrToStringUTF8((IntPtr)NcclNativeMethods.ncclGetErrorString(result));
        var detail = comm != IntPtr.Zero ? Marshal.PtrToStringUTF8((IntPtr)NcclNativeMethods.ncclGetLastError(comm)) : null;
        throw new NcclException(result, $"{what} failed: {message} (ncclResult_t {result})" + (string.IsNullOrEmpty(detail) ? "" : $": {detail}"));
    }
}

/// <summary>An NCCL call returned an error; <see cref="Result"/> is its <c>ncclResult_t</c>.</summary>
public sealed class NcclException(int result, string message) : Exception(message)
{
    public int Result { get; } = result;
}
