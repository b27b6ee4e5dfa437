using TerDiT.Runtime;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Sampling;

namespace TerDiT.Cli.Commands;

/// <summary>
/// A packed <c>.tdit</c> model on the pure-C# runtime or the CUDA backend (<see cref="TerDiTPipeline"/>); only
/// runtime types here.
/// </summary>
sealed class PackedSampleSource : SampleSource
{
    readonly TerDiTPipeline pipe;
    readonly string engine;

    PackedSampleSource(string path, string engine, TerDiTPipeline pipe) => (Path, this.engine, this.pipe) = (path, engine, pipe);

    /// <summary>
    /// Opens and validates <paramref name="path"/> on <paramref name="device"/> (cpu or cuda); <paramref name="threads"/>
    /// null = the CPU runtime's default; on the GPU <paramref name="gpuBatch"/> images a forward (null = the default).
    /// </summary>
    public static PackedSampleSource Open(string path, GemmMode mode, string device, int? threads, int? gpuBatch = null)
    {
        var pipe = RuntimeModeOption.Pipeline(path, mode, device, threads, gpuBatch);
        string engine = pipe.Model is TerDiT.Runtime.Cuda.CudaModel gpu ? $"CUDA runtime {mode}, {gpu.Device.Name}" : $"runtime {mode}";
        return new(path, engine, pipe);
    }

    public override TerDiTConfig Config => pipe.Config;
    public override string Path { get; }
    public override long? Step => null;
    public override string Description => $"{Path} (packed, {Kind(Config)}, {engine})";

    public override float[] Sample(int[] labels, SamplerKind sampler, int steps, double cfg, ulong seed) =>
        pipe.Sample(labels, 1, steps, sampler, cfg, seed);

    public override void Dispose() => pipe.Dispose();
}
