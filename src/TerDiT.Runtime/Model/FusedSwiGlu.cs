using TerDiT.Runtime.Cpu;

namespace TerDiT.Runtime.Model;

/// <summary>
/// The SwiGLU feed-forward <c>w2(silu(w1 h) · w3 h)</c> of packed ternary layers as one pass of
/// <see cref="TernaryGemm.TrySwiGlu"/>, bit-identical to running the layers and the gate one after
/// another (which the model does wherever the fused kernel declines).
/// </summary>
internal sealed class FusedSwiGlu
{
    readonly StackedTernaryMatrix _w13;
    readonly PackedTernaryMatrix _w2;
    readonly GemmMode _mode;
    readonly TernaryGemmOptions _gemm;

    FusedSwiGlu(StackedTernaryMatrix w13, PackedTernaryMatrix w2, GemmMode mode, TernaryGemmOptions gemm) =>
        (_w13, _w2, _mode, _gemm) = (w13, w2, mode, gemm);

    /// <summary>The fused form of w1, w3, w2, or null unless all three are packed layers without bias, with the same mode and options.</summary>
    public static FusedSwiGlu? TryCreate(ILinearKernel w1, ILinearKernel w3, ILinearKernel w2) =>
        w1 is PackedTernaryLinear a && w3 is PackedTernaryLinear b && w2 is PackedTernaryLinear c
        && new[] { a, b, c }.All(p => p.Mode == a.Mode && p.Bias == null && p.Gemm == a.Gemm)
            ? new FusedSwiGlu(new StackedTernaryMatrix(a.Weight, b.Weight), c.Weight, a.Mode, a.Gemm)
            : null;

    /// <summary>y (rows, D) from h (rows, K); false (nothing written) where the fused kernel is not the fast path.</summary>
    public bool TryForward(ReadOnlySpan<float> h, Span<float> y, int rows) =>
        TernaryGemm.TrySwiGlu(h[..(rows * _w13.Cols)], rows, _w13, _w2, y[..(rows * _w2.Rows)], _mode, _gemm);
}
