using TerDiT.Runtime.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// SwiGLU feed-forward without biases: <c>w2(SiLU(w1 x) · w3 x)</c>. Parameters: <c>w1</c>, <c>w3</c>
/// (F, D), <c>w2</c> (D, F) with F = <see cref="TerDiTConfig.FfnHidden"/> (ternary or plain per config).
/// With a <see cref="ComputeDType"/> the input is cast once for w1 and w3, SiLU and the gating product
/// run in the compute dtype (elementwise, no reductions), and the output is cast back to the input's dtype.
/// </summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>, IComputePrecision
{
    readonly nn.Module<Tensor, Tensor> w1;
    readonly nn.Module<Tensor, Tensor> w2;
    readonly nn.Module<Tensor, Tensor> w3;
    ScalarType? computeDType;

    public FeedForward(TerDiTConfig config) : base(nameof(FeedForward))
    {
        long d = config.HiddenSize, f = config.FfnHidden;
        w1 = BlockLinear.Create(config, d, f);
        w2 = BlockLinear.Create(config, f, d);
        w3 = BlockLinear.Create(config, d, f);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public ScalarType? ComputeDType { get => computeDType; set => computeDType = ComputePrecision.Check(value); }

    /// <summary>(N, T, D) → (N, T, D) in x's dtype.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var xc = x.to(computeDType ?? x.dtype);                      // cast once for w1 and w3
        var hidden = nn.functional.silu(w1.call(xc)) * w3.call(xc);  // (N, T, F) in the compute dtype
        return scope.MoveToOuter(w2.call(hidden).to(x.dtype));
    }
}
