using System.Buffers;
using System.Numerics.Tensors;

namespace TerDiT.Runtime.Ops;

/// <summary>Activations and the adaLN element-wise ops, vectorised with TensorPrimitives.</summary>
public static class Elementwise
{
    const int Chunk = 512;

    /// <summary><c>y = x · sigmoid(x)</c>; <paramref name="y"/> may be <paramref name="x"/>.</summary>
    public static void Silu(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException($"output holds {y.Length} elements, input has {x.Length}");
        Span<float> sig = stackalloc float[Chunk];
        for (int i = 0; i < x.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, x.Length - i);
            TensorPrimitives.Sigmoid(x.Slice(i, n), sig[..n]);
            TensorPrimitives.Multiply(x.Slice(i, n), sig[..n], y.Slice(i, n));
        }
    }

    /// <summary>SwiGLU gate <c>y = silu(a) · b</c>; <paramref name="y"/> may be <paramref name="a"/> or <paramref name="b"/>.</summary>
    public static void SwiGluGate(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        if (b.Length != a.Length || y.Length < a.Length)
            throw new ArgumentException($"SwiGLU operands have {a.Length}, {b.Length} and {y.Length} elements");
        Span<float> sig = stackalloc float[Chunk];
        for (int i = 0; i < a.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, a.Length - i);
            TensorPrimitives.Sigmoid(a.Slice(i, n), sig[..n]);
            TensorPrimitives.Multiply(a.Slice(i, n), sig[..n], sig[..n]);
            TensorPrimitives.Multiply(sig[..n], b.Slice(i, n), y.Slice(i, n));
        }
    }

    /// <summary>
    /// adaLN modulate of each row of x (rows, dim): <c>y = x · (1 + scale) + shift</c> with shift and
    /// scale of length dim. <paramref name="y"/> may be <paramref name="x"/>.
    /// </summary>
    public static void Modulate(ReadOnlySpan<float> x, ReadOnlySpan<float> shift, ReadOnlySpan<float> scale, Span<float> y, int dim)
    {
        int rows = Norms.CheckRows(x.Length, y.Length, dim);
        if (shift.Length != dim || scale.Length != dim)
            throw new ArgumentException($"shift/scale have {shift.Length}/{scale.Length} elements, expected {dim}");
        float[]? rented = null;
        Span<float> onePlusScale = dim <= 4096 ? stackalloc float[dim] : (rented = ArrayPool<float>.Shared.Rent(dim)).AsSpan(0, dim);
        TensorPrimitives.Add(scale, 1f, onePlusScale);
        for (int r = 0; r < rows; r++)
            TensorPrimitives.FusedMultiplyAdd(x.Slice(r * dim, dim), onePlusScale, shift, y.Slice(r * dim, dim));
        if (rented != null) ArrayPool<float>.Shared.Return(rented);
    }

    /// <summary>Gated residual on each row of x (rows, dim): <c>x += gate · y</c> with gate of length dim.</summary>
    public static void GatedResidual(Span<float> x, ReadOnlySpan<float> gate, ReadOnlySpan<float> y, int dim)
    {
        int rows = Norms.CheckRows(y.Length, x.Length, dim);
        if (gate.Length != dim) throw new ArgumentException($"gate has {gate.Length} elements, expected {dim}");
        for (int r = 0; r < rows; r++)
        {
            Span<float> xr = x.Slice(r * dim, dim);
            TensorPrimitives.FusedMultiplyAdd(y.Slice(r * dim, dim), gate, xr, xr);
        }
    }

    /// <summary>
    /// In-place softmax of each row of x (rows, dim) after scaling:
    /// <c>x = exp(s·x − max(s·x)) / Σ exp(s·x − max(s·x))</c> with <c>s = <paramref name="scale"/> &gt; 0</c>.
    /// </summary>
    public static void ScaledSoftmax(Span<float> x, int dim, float scale)
    {
        int rows = Norms.CheckRows(x.Length, x.Length, dim);
        if (!(scale > 0)) throw new ArgumentException($"softmax scale must be positive, got {scale}");
        for (int r = 0; r < rows; r++)
        {
            Span<float> xr = x.Slice(r * dim, dim);
            float max = TensorPrimitives.Max(xr);
            TensorPrimitives.Subtract(xr, max, xr); // scale > 0, so s·(x − max) = s·x − max(s·x)
            TensorPrimitives.Multiply(xr, scale, xr);
            TensorPrimitives.Exp(xr, xr);
            TensorPrimitives.Multiply(xr, 1f / TensorPrimitives.Sum(xr), xr);
        }
    }
}
