using TerDiT.Runtime.Cuda.Driver;

namespace TerDiT.Runtime.Cuda;

/// <summary>Device time of work queued on the device's stream, measured with a pair of CUDA events.</summary>
public sealed class CudaTimer : IDisposable
{
    readonly CudaDevice _device;
    readonly nint _start, _end;

    public CudaTimer(CudaDevice device)
    {
        _device = device;
        device.MakeCurrent();
        Cu.Check(NativeMethods.cuEventCreate(out _start, 0), "cuEventCreate");
        Cu.Check(NativeMethods.cuEventCreate(out _end, 0), "cuEventCreate");
    }

    /// <summary>Milliseconds the device spent on what <paramref name="work"/> queued (waits for it).</summary>
    public double Milliseconds(Action work)
    {
        Cu.Check(NativeMethods.cuEventRecord(_start, _device.Stream), "cuEventRecord");
        work();
        Cu.Check(NativeMethods.cuEventRecord(_end, _device.Stream), "cuEventRecord");
        Cu.Check(NativeMethods.cuEventSynchronize(_end), "cuEventSynchronize");
        Cu.Check(NativeMethods.cuEventElapsedTime(out float ms, _start, _end), "cuEventElapsedTime");
        return ms;
    }

    public void Dispose()
    {
        NativeMethods.cuEventDestroy(_start);
        NativeMethods.cuEventDestroy(_end);
    }
}
