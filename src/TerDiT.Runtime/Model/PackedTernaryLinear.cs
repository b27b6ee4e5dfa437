using TerDiT.Runtime.Cpu;

namespace TerDiT.Runtime.Model;

/// <summary>
/// A ternary linear layer on its packed 2-bit weights: <c>y = alpha · (x · W_tᵀ) + bias</c> through
/// <see cref="TernaryGemm"/> in the chosen <see cref="GemmMode"/>; dense weights are never formed.
/// </summary>
public sealed class PackedTernaryLinear : ILinearKernel
{
    readonly PackedTernaryMatrix _weight;
    readonly float[]? _bias;
    readonly GemmMode _mode;
    readonly TernaryGemmOptions _gemm;

    internal PackedTernaryMatrix Weight => _weight;
    internal float[]? Bias => _bias;
    internal GemmMode Mode => _mode;
    internal TernaryGemmOptions Gemm => _gemm;

    public int InFeatures => _weight.Cols;
    public int OutFeatures => _weight.Rows;

    /// <param name="weight">Packed trits (Out, In) with alpha.</param>
    /// <param name="bias">Length Out, or null.</param>
    /// <param name="mode">Exact (fp32 activations) or A8 (per-token int8 activations).</param>
    /// <param name="threads">Worker threads of the GEMM (≥ 1).</param>
    public PackedTernaryLinear(PackedTernaryMatrix weight, float[]? bias, GemmMode mode, int threads)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (bias != null && bias.Length != weight.Rows)
            throw new ArgumentException($"bias has {bias.Length} elements, the ternary weight has {weight.Rows} rows");
        if (threads <= 0) throw new ArgumentException($"thread count must be positive, got {threads}");
        (_weight, _bias, _mode, _gemm) = (weight, bias, mode, new TernaryGemmOptions(threads));
    }

    public void Forward(ReadOnlySpan<float> x, Span<float> y, int rows) =>
        TernaryGemm.Multiply(x[..(rows * InFeatures)], rows, _weight, y[..(rows * OutFeatures)], _bias, _mode, _gemm);
}
