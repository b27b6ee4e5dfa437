using TerDiT.Runtime;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Sampling;

namespace TerDiT.Cli.Commands;

/// <summary>A packed <c>.tdit</c> model on the pure-C# runtime (<see cref="TerDiTPipeline"/>); only runtime types here.</summary>
sealed class PackedSampleSource : SampleSource
{
    readonly TerDiTPipeline pipe;
    readonly GemmMode mode;

    PackedSampleSource(string path, GemmMode mode, TerDiTPipeline pipe) => (Path, this.mode, this.pipe) = (path, mode, pipe);

    /// <summary>Opens and validates <paramref name="path"/>; <paramref name="threads"/> null = the runtime's default.</summary>
    public static PackedSampleSource Open(string path, GemmMode mode, int? threads) =>
        new(path, mode, TerDiTPipeline.Load(path, RuntimeModeOption.Options(mode, threads)));

    public override TerDiTConfig Config => pipe.Config;
    public override string Path { get; }
    public override long? Step => null;
    public override string Description => $"{Path} (packed, {Kind(Config)}, runtime {mode})";

    public override float[] Sample(int[] labels, SamplerKind sampler, int steps, double cfg, ulong seed) =>
        pipe.Sample(labels, 1, steps, sampler, cfg, seed);

    public override void Dispose() => pipe.Dispose();
}
