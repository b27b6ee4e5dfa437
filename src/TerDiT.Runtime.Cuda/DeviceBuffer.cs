using System.Runtime.InteropServices;
using TerDiT.Runtime.Cuda.Driver;

namespace TerDiT.Runtime.Cuda;

/// <summary>Device memory for <see cref="Length"/> elements of <typeparamref name="T"/>, freed on dispose. Copies run on the device's stream.</summary>
public sealed unsafe class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    readonly CudaDevice _device;
    ulong _pointer;

    public long Length { get; }
    public long Bytes => Length * sizeof(T);

    /// <summary>The device address (for kernel arguments).</summary>
    public ulong Pointer => _pointer != 0 ? _pointer : throw new ObjectDisposedException(nameof(DeviceBuffer<T>));

    public DeviceBuffer(CudaDevice device, long length)
    {
        if (length <= 0) throw new ArgumentOutOfRangeException(nameof(length), length, "buffer length must be positive");
        _device = device;
        Length = length;
        _pointer = device.Allocate(Bytes);
    }

    /// <summary>A buffer holding a copy of <paramref name="data"/>.</summary>
    public static DeviceBuffer<T> From(CudaDevice device, ReadOnlySpan<T> data)
    {
        var b = new DeviceBuffer<T>(device, data.Length);
        b.Upload(data);
        return b;
    }

    /// <summary>Copies <paramref name="data"/> to the first elements (offset in elements) and waits for the copy.</summary>
    public void Upload(ReadOnlySpan<T> data, long offset = 0)
    {
        CheckRange(offset, data.Length);
        fixed (T* p = data)
        {
            Cu.Check(NativeMethods.cuMemcpyHtoDAsync(Pointer + (ulong)(offset * sizeof(T)), p, (nuint)(data.Length * sizeof(T)), _device.Stream), "cuMemcpyHtoDAsync");
            _device.Synchronize();
        }
    }

    /// <summary>Copies elements [offset, offset + data.Length) to <paramref name="data"/> after all earlier work on the stream.</summary>
    public void Download(Span<T> data, long offset = 0)
    {
        CheckRange(offset, data.Length);
        fixed (T* p = data)
        {
            Cu.Check(NativeMethods.cuMemcpyDtoHAsync(p, Pointer + (ulong)(offset * sizeof(T)), (nuint)(data.Length * sizeof(T)), _device.Stream), "cuMemcpyDtoHAsync");
            _device.Synchronize();
        }
    }

    /// <summary>The whole buffer as a new array.</summary>
    public T[] ToArray()
    {
        var a = new T[Length];
        Download(a);
        return a;
    }

    /// <summary>Sets every byte to <paramref name="value"/> (queued on the stream).</summary>
    public void Fill(byte value) => Cu.Check(NativeMethods.cuMemsetD8Async(Pointer, value, (nuint)Bytes, _device.Stream), "cuMemsetD8Async");

    void CheckRange(long offset, int count)
    {
        if (offset < 0 || offset + count > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"elements [{offset}, {offset + count}) outside a buffer of {Length}");
    }

    public void Dispose()
    {
        if (_pointer == 0) return;
        _device.Free(_pointer, Bytes);
        _pointer = 0;
    }
}
