namespace TerDiT.Runtime.Cpu;

/// <summary>Activation precision of <see cref="TernaryGemm"/>.</summary>
public enum GemmMode
{
    /// <summary>fp32 activations; equals the dense product up to float summation order.</summary>
    Exact,
    /// <summary>
    /// Per-token absmax int8 activations (<c>scale = absmax / 127</c>, round to nearest even),
    /// integer ternary dot products, rescaled by <c>alpha · scale</c>.
    /// </summary>
    A8,
}

/// <summary>Settings of one <see cref="TernaryGemm"/> call.</summary>
/// <param name="Threads">Worker threads; 0 means <see cref="Environment.ProcessorCount"/>.</param>
/// <param name="Path">Code path; null means <see cref="SimdPaths.Best"/>.</param>
public sealed record TernaryGemmOptions(int Threads = 0, SimdPath? Path = null)
{
    /// <summary>Default settings: all processors, widest path.</summary>
    public static TernaryGemmOptions Default { get; } = new();
}
