using TerDiT.Runtime;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Diffusion;

namespace TerDiT.Cli.Commands;

/// <summary>
/// A packed <c>.tdit</c> model on the pure-C# runtime or the CUDA backend (<see cref="TerDiTPipeline"/>); only
/// runtime types here. A latent model decodes its samples with the VAE given to <see cref="Open"/> (on the CPU).
/// </summary>
sealed class PackedSampleSource : SampleSource
{
    readonly TerDiTPipeline pipe;
    readonly string engine;
    readonly int? guidedChannels;
    readonly TextWriter? progress;

    PackedSampleSource(string path, string engine, TerDiTPipeline pipe, int? guidedChannels, TextWriter? progress) =>
        (Path, this.engine, this.pipe, this.guidedChannels, this.progress) = (path, engine, pipe, guidedChannels, progress);

    /// <summary>
    /// Opens and validates <paramref name="path"/> on <paramref name="device"/> (cpu or cuda); <paramref name="threads"/>
    /// null = the CPU runtime's default; on the GPU <paramref name="gpuBatch"/> images a forward (null = the default);
    /// <paramref name="vae"/>: the VAE folder of a latent model; <paramref name="guidedChannels"/>: the epsilon channels
    /// guidance applies to (null = all); <paramref name="progress"/>: where sampling and decoding progress lines go.
    /// </summary>
    public static PackedSampleSource Open(string path, GemmMode mode, string device, int? threads, int? gpuBatch = null,
        string? vae = null, int? guidedChannels = null, TextWriter? progress = null)
    {
        var pipe = RuntimeModeOption.Pipeline(path, mode, device, threads, gpuBatch, vae);
        if (guidedChannels is { } g && (g < 1 || g > pipe.Config.InChannels))
        {
            pipe.Dispose();
            throw new ArgumentException($"--cfg-channels must be in 1..{pipe.Config.InChannels}, not {g}");
        }
        string engine = pipe.Model is TerDiT.Runtime.Cuda.CudaModel gpu ? $"CUDA runtime {mode}, {gpu.Device.Name}" : $"runtime {mode}";
        return new(path, engine, pipe, guidedChannels, progress);
    }

    public override TerDiTConfig Config => pipe.Config;
    public override string Path { get; }
    public override long? Step => null;
    public override string Description => $"{Path} (packed, {Kind(Config)}, {engine})";
    public override int ImageChannels => pipe.ImageChannels;
    public override int ImageSize => pipe.ImageSize;
    public override DiffusionProcess Diffusion => pipe.Diffusion;

    public override float[] Sample(int[] labels, SamplerKind sampler, int steps, double cfg, ulong seed) =>
        pipe.Sample(labels, 1, steps, sampler, cfg, seed, progress is null ? null : new ProgressLines(progress, "sampling", "steps"),
            guidedChannels: guidedChannels, decodeProgress: progress is null ? null : new ProgressLines(progress, "decoding", "images"));

    public override void Dispose() => pipe.Dispose();
}
