using System.Numerics.Tensors;
using TerDiT.Runtime.Ops;

namespace TerDiT.Runtime.Model;

/// <summary>
/// Full-precision linear <c>y = x · Wᵀ + bias</c> on <see cref="FloatGemm"/>: W (Out, In)
/// is copied once into packed panels. Used for the full-precision layers (patch embedding, timestep
/// MLP, final layer, and every linear of a non-ternary model).
/// </summary>
public sealed class FloatLinear : ILinearKernel
{
    readonly float[] _packed;
    readonly float[]? _bias;
    readonly ParallelOptions _parallel;

    public int InFeatures { get; }
    public int OutFeatures { get; }

    /// <param name="weight">W (Out, In), row-major.</param>
    /// <param name="bias">Length Out, or null for none.</param>
    public FloatLinear(ReadOnlySpan<float> weight, float[]? bias, int outFeatures, int inFeatures, ParallelOptions parallel)
    {
        if (outFeatures <= 0 || inFeatures <= 0) throw new ArgumentException($"linear sizes must be positive, got ({outFeatures}, {inFeatures})");
        if (weight.Length != (long)outFeatures * inFeatures)
            throw new ArgumentException($"linear weight has {weight.Length} elements, expected {outFeatures}×{inFeatures}");
        if (bias != null && bias.Length != outFeatures)
            throw new ArgumentException($"linear bias has {bias.Length} elements, expected {outFeatures}");
        (OutFeatures, InFeatures, _bias, _parallel) = (outFeatures, inFeatures, bias, parallel);
        _packed = new float[FloatGemm.PackedLength(inFeatures, outFeatures)];
        FloatGemm.PackTransposed(weight, outFeatures, inFeatures, inFeatures, _packed);
    }

    public void Forward(ReadOnlySpan<float> x, Span<float> y, int rows)
    {
        if (x.Length < (long)rows * InFeatures || y.Length < (long)rows * OutFeatures)
            throw new ArgumentException($"linear ({OutFeatures}, {InFeatures}) over {rows} rows: x holds {x.Length}, y holds {y.Length} floats");
        FloatGemm.MultiplyParallel(x, InFeatures, rows, InFeatures, _packed, OutFeatures, y, OutFeatures, _parallel);
        if (_bias != null)
            for (int r = 0; r < rows; r++)
            {
                Span<float> yr = y.Slice(r * OutFeatures, OutFeatures);
                TensorPrimitives.Add(yr, _bias, yr);
            }
    }
}
