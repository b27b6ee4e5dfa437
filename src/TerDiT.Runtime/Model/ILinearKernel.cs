namespace TerDiT.Runtime.Model;

/// <summary>
/// A linear layer as the runtime forward sees it: <c>y (M, Out) = x (M, In) · Wᵀ (+ bias)</c>,
/// rows row-major and contiguous. Implementations own their weights (dense floats or packed trits)
/// and their threading; for a given input the output must not depend on the thread count.
/// </summary>
public interface ILinearKernel
{
    int InFeatures { get; }
    int OutFeatures { get; }

    /// <summary>Computes the first <paramref name="rows"/> rows of y from those of x; y is overwritten.</summary>
    void Forward(ReadOnlySpan<float> x, Span<float> y, int rows);
}
