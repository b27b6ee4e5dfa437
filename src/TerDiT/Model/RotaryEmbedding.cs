using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// 1-D rotary position embedding over the flattened token index (docs/PAPER.md §8): per head of size
/// hd, <c>f_i = 1 / 10000^(2i/hd)</c> for i &lt; hd/2, angle <c>θ_{t,i} = t · f_i</c> for token t,
/// and dims (2i, 2i+1) are rotated together as the complex number <c>x_{2i} + j·x_{2i+1}</c>:
/// <c>x'_{2i} = x_{2i}·cos θ − x_{2i+1}·sin θ</c>, <c>x'_{2i+1} = x_{2i}·sin θ + x_{2i+1}·cos θ</c>.
/// </summary>
public static class RotaryEmbedding
{
    public const double Theta = 10000;

    /// <summary>
    /// The table of (cos, sin) for T tokens: (T, hd/2, 2) float32 on <paramref name="device"/>,
    /// <c>[t, i, 0] = cos θ_{t,i}</c>, <c>[t, i, 1] = sin θ_{t,i}</c>; angles computed in float64.
    /// </summary>
    public static Tensor Table(long tokens, long headDim, Device device)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentException($"RoPE needs an even head dimension, got {headDim}");
        using var scope = NewDisposeScope();
        using var s = new ScalarHolder();
        var i = arange(Scalars.Zero, s.Of(headDim), Scalars.Two, dtype: ScalarType.Float64);    // (hd/2) = 2i
        var freqs = pow(tensor(Theta), i / s.Of(headDim)).reciprocal();                         // (hd/2)
        var angles = outer(arange(Scalars.Zero, s.Of(tokens), Scalars.One, dtype: ScalarType.Float64), freqs); // (T, hd/2)
        var table = stack([angles.cos(), angles.sin()], -1).to(ScalarType.Float32, device);     // (T, hd/2, 2)
        return scope.MoveToOuter(table);
    }

    /// <summary>
    /// Rotates x (N, T, H, hd) by <paramref name="table"/> (T, hd/2, 2) from <see cref="Table"/>;
    /// computed in float32, returned in x's dtype.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor table)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], t = x.shape[1], h = x.shape[2], hd = x.shape[3];
        var pairs = x.to(ScalarType.Float32).view(n, t, h, hd / 2, 2);  // (N, T, H, hd/2, 2)
        var re = pairs[.., .., .., .., 0];                               // (N, T, H, hd/2)
        var im = pairs[.., .., .., .., 1];
        var cos = table[.., .., 0].unsqueeze(1);                         // (T, 1, hd/2)
        var sin = table[.., .., 1].unsqueeze(1);
        var rotated = stack([re * cos - im * sin, (re * sin).Plus(im * cos)], -1); // (N, T, H, hd/2, 2)
        return scope.MoveToOuter(rotated.flatten(-2).to(x.dtype));       // (N, T, H, hd)
    }
}
