using System.Numerics.Tensors;

namespace TerDiT.Runtime.Ops;

/// <summary>Row-wise normalisations over the last dimension, vectorised with TensorPrimitives.</summary>
public static class Norms
{
    /// <summary>
    /// RMSNorm of each row of x (rows, dim): <c>y = x / sqrt(mean(x²) + eps) · weight</c>.
    /// <paramref name="y"/> may be <paramref name="x"/> (in place).
    /// </summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int dim, float eps)
    {
        int rows = CheckRows(x.Length, y.Length, dim);
        if (weight.Length != dim) throw new ArgumentException($"RMSNorm weight has {weight.Length} elements, expected {dim}");
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * dim, dim);
            Span<float> yr = y.Slice(r * dim, dim);
            float inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xr) / dim + eps);
            TensorPrimitives.Multiply(xr, inv, yr);
            TensorPrimitives.Multiply(yr, weight, yr);
        }
    }

    /// <summary>
    /// LayerNorm of each row of x (rows, dim): <c>y = (x − mean) / sqrt(var + eps)</c> with the biased
    /// variance, then <c>· weight + bias</c> when they are given (both or neither).
    /// <paramref name="y"/> may be <paramref name="x"/> (in place).
    /// </summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y, int dim, float eps)
    {
        int rows = CheckRows(x.Length, y.Length, dim);
        bool affine = !weight.IsEmpty;
        if (affine && (weight.Length != dim || bias.Length != dim))
            throw new ArgumentException($"LayerNorm weight/bias have {weight.Length}/{bias.Length} elements, expected {dim}");
        if (!affine && !bias.IsEmpty) throw new ArgumentException("LayerNorm bias given without weight");
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * dim, dim);
            Span<float> yr = y.Slice(r * dim, dim);
            float mean = TensorPrimitives.Sum(xr) / dim;
            TensorPrimitives.Subtract(xr, mean, yr);
            float inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(yr) / dim + eps);
            if (affine)
            {
                TensorPrimitives.Multiply(yr, inv, yr);
                TensorPrimitives.FusedMultiplyAdd(yr, weight, bias, yr);
            }
            else TensorPrimitives.Multiply(yr, inv, yr);
        }
    }

    internal static int CheckRows(int xLength, int yLength, int dim)
    {
        if (dim <= 0) throw new ArgumentException($"dimension must be positive, got {dim}");
        if (xLength % dim != 0) throw new ArgumentException($"input length {xLength} is not a multiple of the dimension {dim}");
        if (yLength < xLength) throw new ArgumentException($"output holds {yLength} elements, input has {xLength}");
        return xLength / dim;
    }
}
