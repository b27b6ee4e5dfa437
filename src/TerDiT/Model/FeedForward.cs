using TerDiT.Runtime.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// SwiGLU feed-forward without biases: <c>w2(SiLU(w1 x) · w3 x)</c>. Parameters: <c>w1</c>, <c>w3</c>
/// (F, D), <c>w2</c> (D, F) with F = <see cref="TerDiTConfig.FfnHidden"/> (ternary or plain per config).
/// </summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    readonly nn.Module<Tensor, Tensor> w1;
    readonly nn.Module<Tensor, Tensor> w2;
    readonly nn.Module<Tensor, Tensor> w3;

    public FeedForward(TerDiTConfig config) : base(nameof(FeedForward))
    {
        long d = config.HiddenSize, f = config.FfnHidden;
        w1 = BlockLinear.Create(config, d, f);
        w2 = BlockLinear.Create(config, f, d);
        w3 = BlockLinear.Create(config, d, f);
        RegisterComponents();
    }

    /// <summary>(N, T, D) → (N, T, D).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var hidden = nn.functional.silu(w1.call(x)) * w3.call(x);  // (N, T, F)
        return scope.MoveToOuter(w2.call(hidden));
    }
}
