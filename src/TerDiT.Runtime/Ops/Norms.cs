using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

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
    /// RMSNorm then adaLN modulate in one pass over each row of x (rows, dim):
    /// <c>y = (x · r · weight) · (1 + scale) + shift</c> with <c>r = 1 / sqrt(mean(x²) + eps)</c> — the
    /// same operations, in the same order, as <see cref="RmsNorm"/> followed by
    /// <see cref="Elementwise.Modulate"/>, so the same bits. <paramref name="y"/> may be <paramref name="x"/>.
    /// </summary>
    public static unsafe void RmsNormModulate(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> shift,
        ReadOnlySpan<float> scale, Span<float> y, int dim, float eps)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            RmsNorm(x, weight, y, dim, eps);
            Elementwise.Modulate(y[..x.Length], shift, scale, y, dim);
            return;
        }
        int rows = CheckRows(x.Length, y.Length, dim);
        if (weight.Length != dim || shift.Length != dim || scale.Length != dim)
            throw new ArgumentException($"RMSNorm weight / shift / scale have {weight.Length}/{shift.Length}/{scale.Length} elements, expected {dim}");
        fixed (float* px = x, pw = weight, psh = shift, psc = scale, py = y)
            for (int r = 0; r < rows; r++)
            {
                float* xr = px + (nint)r * dim, yr = py + (nint)r * dim;
                float inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(new ReadOnlySpan<float>(xr, dim)) / dim + eps);
                var vi = Vector512.Create(inv);
                int i = 0;
                for (; i + 16 <= dim; i += 16)
                {
                    var h = Vector512.Load(xr + i) * vi * Vector512.Load(pw + i);
                    Vector512.FusedMultiplyAdd(h, Vector512.Load(psc + i) + Vector512<float>.One, Vector512.Load(psh + i)).Store(yr + i);
                }
                for (; i < dim; i++) yr[i] = MathF.FusedMultiplyAdd(xr[i] * inv * pw[i], psc[i] + 1f, psh[i]);
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
