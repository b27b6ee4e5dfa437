using TerDiT.Runtime.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// Multi-head self-attention without biases (Large-DiT): <c>q, k, v = wq x, wk x, wv x</c>,
/// optional LayerNorm over D on q and k (eps 1e-5, affine), RoPE on q and k after the norm,
/// softmax(q kᵀ / sqrt(hd)) v per head, then <c>wo</c>. Parameters: <c>wq wk wv wo</c> (D, D)
/// (ternary or plain per config), <c>q_norm</c>, <c>k_norm</c> (QkNorm only).
/// <para>With a <see cref="ComputeDType"/> the input is cast once for the three projections, the
/// q/k LayerNorms and RoPE run in the input's dtype, and softmax attention runs in the compute dtype;
/// the output is in the input's dtype.</para>
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor, Tensor>, IComputePrecision
{
    readonly nn.Module<Tensor, Tensor> wq;
    readonly nn.Module<Tensor, Tensor> wk;
    readonly nn.Module<Tensor, Tensor> wv;
    readonly nn.Module<Tensor, Tensor> wo;
    readonly LayerNorm? q_norm;
    readonly LayerNorm? k_norm;
    readonly long heads;
    readonly long headDim;
    ScalarType? computeDType;

    public Attention(TerDiTConfig config) : base(nameof(Attention))
    {
        long d = config.HiddenSize;
        heads = config.NumHeads;
        headDim = config.HeadDim;
        wq = BlockLinear.Create(config, d, d);
        wk = BlockLinear.Create(config, d, d);
        wv = BlockLinear.Create(config, d, d);
        wo = BlockLinear.Create(config, d, d);
        if (config.QkNorm)
        {
            q_norm = nn.LayerNorm(d, eps: 1e-5);
            k_norm = nn.LayerNorm(d, eps: 1e-5);
        }
        RegisterComponents();
    }

    /// <inheritdoc/>
    public ScalarType? ComputeDType { get => computeDType; set => computeDType = ComputePrecision.Check(value); }

    /// <summary>x (N, T, D), rope table (T, hd/2, 2) → (N, T, D) in x's dtype.</summary>
    public override Tensor forward(Tensor x, Tensor rope)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], t = x.shape[1];
        var dt = computeDType ?? x.dtype;
        var xc = x.to(dt);                                               // cast once for the three projections
        Tensor q = wq.call(xc), k = wk.call(xc), v = wv.call(xc);       // (N, T, D) in dt
        if (q_norm is not null) q = q_norm.call(q.to(x.dtype));          // norm statistics in x's dtype
        if (k_norm is not null) k = k_norm.call(k.to(x.dtype));
        q = RotaryEmbedding.Apply(q.view(n, t, heads, headDim), rope).to(dt);  // (N, T, H, hd), rotated in float32
        k = RotaryEmbedding.Apply(k.view(n, t, heads, headDim), rope).to(dt);
        v = v.view(n, t, heads, headDim);
        var o = nn.functional.scaled_dot_product_attention(
            q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3)); // (N, H, T, hd)
        o = o.permute(0, 2, 1, 3).reshape(n, t, heads * headDim);        // (N, T, D) in dt
        return scope.MoveToOuter(wo.call(o).to(x.dtype));
    }
}
