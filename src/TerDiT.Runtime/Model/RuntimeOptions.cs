namespace TerDiT.Runtime.Model;

/// <summary>How the runtime executes a model.</summary>
public sealed record RuntimeOptions
{
    /// <summary>Threads used by the GEMMs and attention (default: all logical processors).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    internal ParallelOptions Parallel => Threads > 0
        ? new ParallelOptions { MaxDegreeOfParallelism = Threads }
        : throw new ArgumentException($"thread count must be positive, got {Threads}");
}
