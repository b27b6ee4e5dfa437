using TerDiT.Runtime.Format;

namespace TerDiT.Runtime.Cpu;

/// <summary>
/// Scalar reference of <see cref="TernaryGemm"/> (the specification every SIMD path is tested
/// against). Shapes: x (M, K) row-major, W (N, K), bias (N) or empty, y (M, N) row-major.
/// </summary>
public static class TernaryGemmReference
{
    /// <summary>
    /// <c>y[m, n] = alpha · Σ_k x[m, k] · W_t[n, k] (+ bias[n])</c>, the sum in float in ascending k,
    /// then <c>alpha · sum</c>, then <c>+ bias</c>.
    /// </summary>
    public static void Exact(ReadOnlySpan<float> x, int m, PackedTernaryMatrix w, Span<float> y, ReadOnlySpan<float> bias = default)
    {
        TernaryGemm.Validate(x, m, w, y, bias);
        int k = w.Cols, n = w.Rows;
        var data = w.Data.Span;
        for (int i = 0; i < m; i++)
        {
            var xr = x.Slice(i * k, k);
            for (int o = 0; o < n; o++)
            {
                var row = data.Slice(o * w.RowBytes, w.RowBytes);
                float acc = 0;
                for (int c = 0; c < k; c++) acc += Trit(row, c) * xr[c];
                float v = w.Alpha * acc;
                if (!bias.IsEmpty) v += bias[o];
                y[i * n + o] = v;
            }
        }
    }

    /// <summary>
    /// A8: each row of x quantized by <see cref="ActivationQuantizer.QuantizeRowReference"/> to (q, s);
    /// <c>acc = Σ_k q[m, k] · W_t[n, k]</c> in int32; <c>y[m, n] = (float)acc · (alpha · s_m) (+ bias[n])</c>.
    /// </summary>
    public static void A8(ReadOnlySpan<float> x, int m, PackedTernaryMatrix w, Span<float> y, ReadOnlySpan<float> bias = default)
    {
        TernaryGemm.Validate(x, m, w, y, bias);
        int k = w.Cols, n = w.Rows;
        var data = w.Data.Span;
        var q = new sbyte[k];
        for (int i = 0; i < m; i++)
        {
            float scale = ActivationQuantizer.QuantizeRowReference(x.Slice(i * k, k), q);
            float combined = w.Alpha * scale;
            for (int o = 0; o < n; o++)
            {
                var row = data.Slice(o * w.RowBytes, w.RowBytes);
                int acc = 0;
                for (int c = 0; c < k; c++) acc += Trit(row, c) * q[c];
                float v = acc * combined;
                if (!bias.IsEmpty) v += bias[o];
                y[i * n + o] = v;
            }
        }
    }

    static int Trit(ReadOnlySpan<byte> row, int col)
    {
        var (b, s) = TernaryPacking.Locate(col);
        return (row[b] >> s & 3) - 1;
    }
}
