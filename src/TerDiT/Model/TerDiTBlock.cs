using TerDiT.Runtime.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// One TerDiT transformer block (docs/PAPER.md §2):
/// <c>mod = adaLN_norm(adaLN_modulation(SiLU(c)))</c> (6·D, the norm only with AdaLnNorm), split in
/// order into shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp;
/// <c>x += gate_msa · attention(modulate(attention_norm(x), shift_msa, scale_msa))</c>;
/// <c>x += gate_mlp · feed_forward(modulate(ffn_norm(x), shift_mlp, scale_mlp))</c>,
/// with <c>modulate(x, shift, scale) = x · (1 + scale) + shift</c>.
/// </summary>
public sealed class TerDiTBlock : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    readonly RMSNorm attention_norm;
    readonly Attention attention;
    readonly RMSNorm ffn_norm;
    readonly FeedForward feed_forward;
    readonly nn.Module<Tensor, Tensor> adaLN_modulation;
    readonly RMSNorm? adaLN_norm;

    public TerDiTBlock(TerDiTConfig config) : base(nameof(TerDiTBlock))
    {
        long d = config.HiddenSize;
        attention_norm = new RMSNorm(d);
        attention = new Attention(config);
        ffn_norm = new RMSNorm(d);
        feed_forward = new FeedForward(config);
        adaLN_modulation = BlockLinear.Create(config, config.CondDim, 6 * d, hasBias: true);
        if (config.AdaLnNorm) adaLN_norm = new RMSNorm(6 * d);
        RegisterComponents();
    }

    /// <summary>x (N, T, D), c (N, cdim) conditioning before SiLU, rope table (T, hd/2, 2) → (N, T, D).</summary>
    public override Tensor forward(Tensor x, Tensor c, Tensor rope)
    {
        using var scope = NewDisposeScope();
        var mod = adaLN_modulation.call(nn.functional.silu(c)).to(c.dtype); // (N, 6D) in c's dtype
        if (adaLN_norm is not null) mod = adaLN_norm.call(mod);
        var m = mod.unsqueeze(1).chunk(6, -1);                           // 6 × (N, 1, D)
        Tensor shiftMsa = m[0], scaleMsa = m[1], gateMsa = m[2], shiftMlp = m[3], scaleMlp = m[4], gateMlp = m[5];
        x = x.Plus(gateMsa * attention.call(Modulate(attention_norm.call(x), shiftMsa, scaleMsa), rope));
        x = x.Plus(gateMlp * feed_forward.call(Modulate(ffn_norm.call(x), shiftMlp, scaleMlp)));
        return scope.MoveToOuter(x);
    }

    /// <summary><c>x · (1 + scale) + shift</c>, shift and scale broadcast over tokens.</summary>
    public static Tensor Modulate(Tensor x, Tensor shift, Tensor scale) => (x * scale.Plus(Scalars.One)).Plus(shift);
}
