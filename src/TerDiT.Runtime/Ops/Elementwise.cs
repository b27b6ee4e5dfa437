using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TerDiT.Runtime.Ops;

/// <summary>Activations and the adaLN element-wise ops, vectorised with TensorPrimitives.</summary>
public static class Elementwise
{
    /// <summary><c>y = x · sigmoid(x)</c>; <paramref name="y"/> may be <paramref name="x"/>.</summary>
    public static void Silu(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException($"output holds {y.Length} elements, input has {x.Length}");
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= x.Length; i += 16)
                SiluVector(Vector512.Create(x.Slice(i, 16))).CopyTo(y.Slice(i, 16));
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= x.Length; i += 8)
                SiluVector(Vector256.Create(x.Slice(i, 8))).CopyTo(y.Slice(i, 8));
        for (; i < x.Length; i++) y[i] = x[i] / (1 + MathF.Exp(-x[i])); // tail
    }

    /// <summary>SwiGLU gate <c>y = silu(a) · b</c>; <paramref name="y"/> may be <paramref name="a"/> or <paramref name="b"/>.</summary>
    public static void SwiGluGate(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        if (b.Length != a.Length || y.Length < a.Length)
            throw new ArgumentException($"SwiGLU operands have {a.Length}, {b.Length} and {y.Length} elements");
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= a.Length; i += 16)
                SwiGlu(Vector512.Create(a.Slice(i, 16)), Vector512.Create(b.Slice(i, 16))).CopyTo(y.Slice(i, 16));
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= a.Length; i += 8)
                (SiluVector(Vector256.Create(a.Slice(i, 8))) * Vector256.Create(b.Slice(i, 8))).CopyTo(y.Slice(i, 8));
        for (; i < a.Length; i++) y[i] = a[i] / (1 + MathF.Exp(-a[i])) * b[i]; // tail
    }

    /// <summary>x / (1 + e^(−x)) with <see cref="Exp"/>.</summary>
    static Vector256<float> SiluVector(Vector256<float> x) => x / (Vector256<float>.One + Exp(-x));

    static Vector512<float> SiluVector(Vector512<float> x) => x / (Vector512<float>.One + Exp(-x));

    /// <summary>16 lanes of <see cref="SwiGluGate"/>: <c>silu(a) · b</c>, the same bits wherever the lanes come from.</summary>
    internal static Vector512<float> SwiGlu(Vector512<float> a, Vector512<float> b) => SiluVector(a) * b;

    /// <summary>8 lanes of <see cref="SwiGluGate"/>, the same bits as its 16-lane form.</summary>
    internal static Vector256<float> SwiGlu(Vector256<float> a, Vector256<float> b) => SiluVector(a) * b;

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
    /// <c>x *= s</c> in place, for short rows (attention's head-dim rows): a plain vector loop, which
    /// costs a fraction of <see cref="TensorPrimitives"/>' per-call dispatch at 64 elements.
    /// </summary>
    public static unsafe void Scale(Span<float> x, float s)
    {
        fixed (float* p = x)
        {
            int i = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var vs = Vector256.Create(s);
                for (; i + 8 <= x.Length; i += 8) (Vector256.Load(p + i) * vs).Store(p + i);
            }
            for (; i < x.Length; i++) p[i] *= s;
        }
    }

    /// <summary>
    /// In-place softmax of each row of x (rows, dim) after scaling:
    /// <c>x = exp(s·x − max(s·x)) / Σ exp(s·x − max(s·x))</c> with <c>s = <paramref name="scale"/> &gt; 0</c>.
    /// The exponentials use <see cref="Exp(Vector256{float})"/> (a few ulp).
    /// </summary>
    public static void ScaledSoftmax(Span<float> x, int dim, float scale)
    {
        int rows = Norms.CheckRows(x.Length, x.Length, dim);
        Span<float> sums = rows <= 1024 ? stackalloc float[rows] : new float[rows];
        ScaledExpRows(x, dim, scale, sums);
        for (int r = 0; r < rows; r++) TensorPrimitives.Multiply(x.Slice(r * dim, dim), 1f / sums[r], x.Slice(r * dim, dim));
    }

    /// <summary>
    /// The unnormalised softmax of each row of x (rows, dim), in place: <c>x = exp(s·x − max(s·x))</c>
    /// with <c>s = <paramref name="scale"/> &gt; 0</c>, and <c>sums[r] = Σ</c> of row r (≥ 1 unless
    /// the row holds a NaN). One pass for the max, one for exp and sum; callers divide later (attention
    /// scales its output rows instead of the T×T probabilities).
    /// </summary>
    public static unsafe void ScaledExpRows(Span<float> x, int dim, float scale, Span<float> sums)
    {
        int rows = Norms.CheckRows(x.Length, x.Length, dim);
        if (!(scale > 0)) throw new ArgumentException($"softmax scale must be positive, got {scale}");
        if (sums.Length < rows) throw new ArgumentException($"sums hold {sums.Length} elements, {rows} rows");
        fixed (float* px = x)
            for (int r = 0; r < rows; r++)
            {
                float* xr = px + (nint)r * dim;
                int i = 0;
                float max, sum = 0;
                if (Vector512.IsHardwareAccelerated && dim >= 16)
                {
                    var vmax = Vector512.Create(float.NegativeInfinity);
                    for (; i + 16 <= dim; i += 16) vmax = Vector512.Max(vmax, Vector512.Load(xr + i));
                    max = MaxAcross(vmax);
                    for (; i < dim; i++) max = MathF.Max(max, xr[i]);
                    // scale > 0, so s·(x − max) = s·x − max(s·x) ≤ 0
                    var vm = Vector512.Create(max);
                    var vs = Vector512.Create(scale);
                    var acc = Vector512<float>.Zero;
                    for (i = 0; i + 16 <= dim; i += 16)
                    {
                        var e = Exp((Vector512.Load(xr + i) - vm) * vs);
                        e.Store(xr + i);
                        acc += e;
                    }
                    sum = Vector512.Sum(acc);
                }
                else
                {
                    max = TensorPrimitives.Max(new ReadOnlySpan<float>(xr, dim));
                    if (Vector256.IsHardwareAccelerated)
                    {
                        var vm = Vector256.Create(max);
                        var vs = Vector256.Create(scale);
                        var acc = Vector256<float>.Zero;
                        for (; i + 8 <= dim; i += 8)
                        {
                            var e = Exp((Vector256.Load(xr + i) - vm) * vs);
                            e.Store(xr + i);
                            acc += e;
                        }
                        sum = Vector256.Sum(acc);
                    }
                }
                for (; i < dim; i++) sum += xr[i] = MathF.Exp((xr[i] - max) * scale); // tail
                sums[r] = sum;
            }
    }

    /// <summary>The largest of the 16 lanes, by halving (NaN-propagating like <see cref="MathF.Max"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float MaxAcross(Vector512<float> v)
    {
        var m256 = Vector256.Max(v.GetLower(), v.GetUpper());
        var m = Vector128.Max(m256.GetLower(), m256.GetUpper());
        return MathF.Max(MathF.Max(m.GetElement(0), m.GetElement(1)), MathF.Max(m.GetElement(2), m.GetElement(3)));
    }

    /// <summary>
    /// e^x, vectorised: x = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite split of ln2), e^r by its
    /// degree-7 Taylor polynomial (truncation below 6e-9 relative) in Horner form, times 2ⁿ built in
    /// the exponent bits; a few ulp. Arguments below −87 give 0, above 88 give e^88 (no infinities).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Exp(Vector256<float> x)
    {
        const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
        var underflow = Vector256.LessThan(x, Vector256.Create(-87f));
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(-87f)), Vector256.Create(88f));
        var n = Vector256.Round(x * Vector256.Create(Log2E));
        var r = x - n * Vector256.Create(Ln2Hi) - n * Vector256.Create(Ln2Lo);
        var p = Vector256.Create(1f / 5040);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 720));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 120));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 24));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 6));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(0.5f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f));
        // 2ⁿ: n in [−126, 127] here, so (n + 127) << 23 is a normal float's exponent field.
        var pow2 = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
        return Vector256.ConditionalSelect(underflow, Vector256<float>.Zero, p * pow2);
    }

    /// <summary><see cref="Exp(Vector256{float})"/> on 16 lanes: the same steps and constants.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Exp(Vector512<float> x)
    {
        const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
        var underflow = Vector512.LessThan(x, Vector512.Create(-87f));
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(-87f)), Vector512.Create(88f));
        var n = Vector512.Round(x * Vector512.Create(Log2E));
        var r = x - n * Vector512.Create(Ln2Hi) - n * Vector512.Create(Ln2Lo);
        var p = Vector512.Create(1f / 5040);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 720));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 120));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 24));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f));
        var pow2 = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();
        return Vector512.ConditionalSelect(underflow, Vector512<float>.Zero, p * pow2);
    }
}
