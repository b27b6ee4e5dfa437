namespace TerDiT.Runtime.Ops;

/// <summary>
/// Plain scalar versions of every runtime op, written for clarity (double accumulation, no SIMD,
/// no blocking). They are the specification the vectorised ops are tested against.
/// </summary>
public static class ReferenceOps
{
    /// <summary>C (M, N) = A (M, K) · B (K, N), all row-major and dense.</summary>
    public static void MatMul(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int k, int n)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int r = 0; r < k; r++) s += (double)a[i * k + r] * b[r * n + j];
                c[i * n + j] = (float)s;
            }
    }

    /// <summary>y (M, Out) = x (M, In) · Wᵀ + bias, W (Out, In) row-major; bias may be empty.</summary>
    public static void Linear(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int m, int inFeatures, int outFeatures)
    {
        for (int i = 0; i < m; i++)
            for (int o = 0; o < outFeatures; o++)
            {
                double s = bias.IsEmpty ? 0 : bias[o];
                for (int r = 0; r < inFeatures; r++) s += (double)x[i * inFeatures + r] * w[o * inFeatures + r];
                y[i * outFeatures + o] = (float)s;
            }
    }

    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int dim, float eps)
    {
        for (int r = 0; r < x.Length / dim; r++)
        {
            double ss = 0;
            for (int j = 0; j < dim; j++) ss += (double)x[r * dim + j] * x[r * dim + j];
            double inv = 1 / Math.Sqrt(ss / dim + eps);
            for (int j = 0; j < dim; j++) y[r * dim + j] = (float)(x[r * dim + j] * inv * weight[j]);
        }
    }

    /// <summary>LayerNorm with biased variance; weight and bias empty for no affine.</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y, int dim, float eps)
    {
        for (int r = 0; r < x.Length / dim; r++)
        {
            double mean = 0, var = 0;
            for (int j = 0; j < dim; j++) mean += x[r * dim + j];
            mean /= dim;
            for (int j = 0; j < dim; j++) var += (x[r * dim + j] - mean) * (x[r * dim + j] - mean);
            double inv = 1 / Math.Sqrt(var / dim + eps);
            for (int j = 0; j < dim; j++)
            {
                double v = (x[r * dim + j] - mean) * inv;
                y[r * dim + j] = (float)(weight.IsEmpty ? v : v * weight[j] + bias[j]);
            }
        }
    }

    public static float Silu(float x) => (float)(x / (1 + Math.Exp(-(double)x)));

    public static void Silu(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = Silu(x[i]);
    }

    public static void SwiGluGate(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        for (int i = 0; i < a.Length; i++) y[i] = (float)((double)Silu(a[i]) * b[i]);
    }

    public static void Modulate(ReadOnlySpan<float> x, ReadOnlySpan<float> shift, ReadOnlySpan<float> scale, Span<float> y, int dim)
    {
        for (int i = 0; i < x.Length; i++) y[i] = (float)((double)x[i] * (1 + (double)scale[i % dim]) + shift[i % dim]);
    }

    public static void GatedResidual(Span<float> x, ReadOnlySpan<float> gate, ReadOnlySpan<float> y, int dim)
    {
        for (int i = 0; i < x.Length; i++) x[i] = (float)(x[i] + (double)gate[i % dim] * y[i]);
    }

    public static void ScaledSoftmax(Span<float> x, int dim, float scale)
    {
        for (int r = 0; r < x.Length / dim; r++)
        {
            Span<float> row = x.Slice(r * dim, dim);
            double max = double.NegativeInfinity, sum = 0;
            foreach (float v in row) max = Math.Max(max, (double)scale * v);
            var e = new double[dim];
            for (int j = 0; j < dim; j++) sum += e[j] = Math.Exp(scale * (double)row[j] - max);
            for (int j = 0; j < dim; j++) row[j] = (float)(e[j] / sum);
        }
    }

    /// <summary>RoPE on adjacent pairs of x (T, heads·hd) in place, angles computed in double.</summary>
    public static void Rope(Span<float> x, int dim, int headDim, double theta = 10000)
    {
        for (int t = 0; t < x.Length / dim; t++)
            for (int h = 0; h < dim; h += headDim)
                for (int i = 0; i < headDim / 2; i++)
                {
                    double angle = t / Math.Pow(theta, 2.0 * i / headDim), c = Math.Cos(angle), s = Math.Sin(angle);
                    int o = t * dim + h + 2 * i;
                    double a = x[o], b = x[o + 1];
                    x[o] = (float)(a * c - b * s);
                    x[o + 1] = (float)(a * s + b * c);
                }
    }

    /// <summary>Multi-head attention over q, k, v (N·T, heads·hd) into output, straight from the definition.</summary>
    public static void Attention(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output, int images, int tokens, int heads, int headDim)
    {
        int d = heads * headDim;
        var p = new double[tokens];
        for (int b = 0; b < images; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < tokens; i++)
                {
                    int qi = (b * tokens + i) * d + h * headDim;
                    double max = double.NegativeInfinity, sum = 0;
                    for (int j = 0; j < tokens; j++)
                    {
                        int kj = (b * tokens + j) * d + h * headDim;
                        double s = 0;
                        for (int e = 0; e < headDim; e++) s += (double)q[qi + e] * k[kj + e];
                        p[j] = s / Math.Sqrt(headDim);
                        max = Math.Max(max, p[j]);
                    }
                    for (int j = 0; j < tokens; j++) sum += p[j] = Math.Exp(p[j] - max);
                    for (int e = 0; e < headDim; e++)
                    {
                        double o = 0;
                        for (int j = 0; j < tokens; j++) o += p[j] * v[(b * tokens + j) * d + h * headDim + e];
                        output[qi + e] = (float)(o / sum);
                    }
                }
    }
}
