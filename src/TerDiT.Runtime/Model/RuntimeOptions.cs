using TerDiT.Runtime.Cpu;

namespace TerDiT.Runtime.Model;

/// <summary>How the runtime executes a model.</summary>
public sealed record RuntimeOptions
{
    /// <summary>Threads used by the GEMMs and attention (default: all logical processors).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Activation precision of the ternary GEMMs (default: exact fp32).</summary>
    public GemmMode Mode { get; init; } = GemmMode.Exact;

    /// <summary>
    /// Most images a sampler puts through one forward (before classifier-free guidance doubles it);
    /// bounds the activation memory, which grows linearly with it.
    /// </summary>
    public int MaxBatch { get; init; } = 16;

    internal ParallelOptions Parallel => Threads > 0
        ? new ParallelOptions { MaxDegreeOfParallelism = Threads }
        : throw new ArgumentException($"thread count must be positive, got {Threads}");
}
