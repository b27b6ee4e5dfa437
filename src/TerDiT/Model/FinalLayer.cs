using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// Full-precision output layer: <c>linear(modulate(LayerNorm(x), shift, scale))</c> with
/// <c>(shift, scale) = adaLN_modulation(SiLU(c))</c> split in that order; LayerNorm eps 1e-6 without
/// affine parameters. Parameters: <c>adaLN_modulation</c> (2D, cdim), <c>linear</c> (p·p·Cout, D).
/// The linears compute in their <see cref="FullPrecisionLinear.ComputeDType"/>; norm, modulation and
/// output are in x's dtype.
/// </summary>
public sealed class FinalLayer : nn.Module<Tensor, Tensor, Tensor>
{
    readonly FullPrecisionLinear adaLN_modulation;
    readonly FullPrecisionLinear linear;
    readonly LayerNorm norm_final;

    public FinalLayer(long hiddenSize, long condDim, long outFeatures) : base(nameof(FinalLayer))
    {
        adaLN_modulation = new FullPrecisionLinear(condDim, 2 * hiddenSize);
        linear = new FullPrecisionLinear(hiddenSize, outFeatures);
        norm_final = nn.LayerNorm(hiddenSize, eps: 1e-6, elementwise_affine: false);
        RegisterComponents();
    }

    /// <summary>x (N, T, D), c (N, cdim) before SiLU → (N, T, p·p·Cout) in x's dtype.</summary>
    public override Tensor forward(Tensor x, Tensor c)
    {
        using var scope = NewDisposeScope();
        var m = adaLN_modulation.call(nn.functional.silu(c)).to(x.dtype).unsqueeze(1).chunk(2, -1); // 2 × (N, 1, D)
        var h = TerDiTBlock.Modulate(norm_final.call(x), m[0], m[1]);                     // (N, T, D)
        return scope.MoveToOuter(linear.call(h).to(x.dtype));
    }
}
