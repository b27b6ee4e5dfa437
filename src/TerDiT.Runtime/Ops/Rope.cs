using System.Runtime.Intrinsics;

namespace TerDiT.Runtime.Ops;

/// <summary>
/// Rotary position embedding over adjacent pairs (docs/PAPER.md §8): for head dimension hd, pair i of
/// a head (dims 2i, 2i+1) at token position t is rotated by the angle <c>t · 10000^(−2i/hd)</c>
/// as the complex number <c>x[2i] + i·x[2i+1]</c>. Angles and their cos/sin are computed in float64
/// and rounded to float32 (as the TorchSharp model's table); the rotation itself runs in float32.
/// </summary>
public sealed class RopeTable
{
    /// <summary>Tokens (positions 0..Tokens−1) the table covers.</summary>
    public int Tokens { get; }
    public int HeadDim { get; }
    // (T, hd): cos of each pair's angle repeated on both dims; sin with sign −/+ on dims 2i / 2i+1.
    readonly float[] _cos, _sin;

    public RopeTable(int tokens, int headDim, double theta = 10000)
    {
        if (tokens <= 0) throw new ArgumentException($"tokens must be positive, got {tokens}");
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentException($"RoPE head dimension must be positive and even, got {headDim}");
        Tokens = tokens;
        HeadDim = headDim;
        _cos = new float[tokens * headDim];
        _sin = new float[tokens * headDim];
        for (int i = 0; i < headDim / 2; i++)
        {
            double freq = 1 / Math.Pow(theta, 2.0 * i / headDim);
            for (int t = 0; t < tokens; t++)
            {
                double angle = t * freq;
                float c = (float)Math.Cos(angle), s = (float)Math.Sin(angle);
                int o = t * headDim + 2 * i;
                _cos[o] = c; _cos[o + 1] = c;
                _sin[o] = -s; _sin[o + 1] = s;
            }
        }
    }

    /// <summary>The rotation angle's cosine and sine for pair <paramref name="pair"/> at <paramref name="position"/>.</summary>
    public (float Cos, float Sin) Angle(int position, int pair) =>
        (_cos[position * HeadDim + 2 * pair], _sin[position * HeadDim + 2 * pair + 1]);

    /// <summary>
    /// Rotates x (T, dim) in place, dim = heads·HeadDim; row t is at position t.
    /// Used once per image (T rows of one sample).
    /// </summary>
    public void Apply(Span<float> x, int dim)
    {
        int rows = Norms.CheckRows(x.Length, x.Length, dim);
        if (dim % HeadDim != 0) throw new ArgumentException($"width {dim} is not a multiple of the head dimension {HeadDim}");
        if (rows > Tokens) throw new ArgumentException($"{rows} positions exceed the RoPE table's {Tokens}");
        for (int t = 0; t < rows; t++)
        {
            ReadOnlySpan<float> cos = _cos.AsSpan(t * HeadDim, HeadDim), sin = _sin.AsSpan(t * HeadDim, HeadDim);
            for (int h = 0; h < dim; h += HeadDim) RotateHead(x.Slice(t * dim + h, HeadDim), cos, sin);
        }
    }

    // y = x·cos + swap_pairs(x)·sin, where swap_pairs exchanges dims 2i and 2i+1.
    static void RotateHead(Span<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var swap = Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6);
            for (; i + 8 <= x.Length; i += 8)
            {
                var v = Vector256.Create<float>(x.Slice(i, 8));
                var r = v * Vector256.Create(cos.Slice(i, 8)) + Vector256.Shuffle(v, swap) * Vector256.Create(sin.Slice(i, 8));
                r.CopyTo(x.Slice(i, 8));
            }
        }
        // Remaining pairs (head dims that are not a multiple of 8, or no SIMD).
        for (; i < x.Length; i += 2)
        {
            float a = x[i], b = x[i + 1];
            x[i] = a * cos[i] + b * sin[i];
            x[i + 1] = b * cos[i + 1] + a * sin[i + 1];
        }
    }
}
