using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// Diffusion timestep → conditioning vector (docs/PAPER.md §8): 256 sinusoidal features
/// <c>[cos(t·f_i), sin(t·f_i)]</c> (cos first) with <c>f_i = exp(-ln(10000)·i/128)</c>, i &lt; 128,
/// then <c>fc2(SiLU(fc1(features)))</c>. Parameters: <c>fc1</c> (cdim, 256), <c>fc2</c> (cdim, cdim).
/// </summary>
public sealed class TimestepEmbedder : nn.Module<Tensor, Tensor>
{
    /// <summary>Number of sinusoidal features.</summary>
    public const int FrequencyFeatures = 256;
    const double MaxPeriod = 10000;

    readonly FullPrecisionLinear fc1;
    readonly FullPrecisionLinear fc2;

    public TimestepEmbedder(long condDim) : base(nameof(TimestepEmbedder))
    {
        fc1 = new FullPrecisionLinear(FrequencyFeatures, condDim);
        fc2 = new FullPrecisionLinear(condDim, condDim);
        RegisterComponents();
    }

    /// <summary>
    /// t (N) integer or float timesteps → (N, cdim) in the layers' parameter dtype (the linears compute
    /// in their <see cref="FullPrecisionLinear.ComputeDType"/>).
    /// </summary>
    public override Tensor forward(Tensor t)
    {
        using var scope = NewDisposeScope();
        var dtype = fc1.Weight.dtype;
        var features = Features(t).to(dtype);   // (N, 256)
        return scope.MoveToOuter(fc2.call(nn.functional.silu(fc1.call(features))).to(dtype));
    }

    /// <summary>
    /// The sinusoidal features of t (N), float32 on t's device: (N, 256), columns
    /// <c>[cos(t·f_0..127), sin(t·f_0..127)]</c>; frequencies computed in float32 as the authors do.
    /// </summary>
    public static Tensor Features(Tensor t)
    {
        if (t.dim() != 1) throw new ArgumentException($"timesteps must be a 1-D tensor (N), got shape [{string.Join(", ", t.shape)}]");
        using var scope = NewDisposeScope();
        const int half = FrequencyFeatures / 2;
        using var s = new ScalarHolder();
        var freqs = (arange(Scalars.Zero, s.Of(half), Scalars.One, dtype: ScalarType.Float32, device: t.device) * s.Of(-Math.Log(MaxPeriod) / half)).exp(); // (128)
        var args = t.to(ScalarType.Float32).unsqueeze(1) * freqs.unsqueeze(0);                                         // (N, 128)
        return scope.MoveToOuter(cat([args.cos(), args.sin()], 1));                                                   // (N, 256)
    }
}
