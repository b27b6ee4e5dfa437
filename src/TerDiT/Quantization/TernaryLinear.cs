using TerDiT.Runtime.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TerDiT.Quantization;

/// <summary>
/// Linear layer with ternary weights trained by quantization-aware training (TERDIT.md §1).
/// <para>Parameters, in registration order: <c>weight</c> (out, in), the full-precision latent
/// weight W; <c>alpha</c> (1), the learnable scale; <c>bias</c> (out), only when requested.</para>
/// <para>Forward: <c>gamma = mean|W|</c> over the whole tensor,
/// <c>W_t = clamp(round(W / (gamma + 1e-6)), -1, 1)</c> (round half to even, as torch.round),
/// <c>y = x · (alpha · W_t)ᵀ + b</c>. The effective weight is exactly <c>alpha · W_t</c>.</para>
/// <para>Backward (straight-through estimator, as the authors' <c>ternary</c> autograd function):
/// the quantizer is treated as the identity, so the gradient reaching the latent weight is the
/// gradient arriving at <c>W_t</c> unchanged: <c>dL/dW = dL/dW_t = alpha · dL/dW_q</c> with
/// <c>W_q = alpha · W_t</c> (no clipping mask; gamma gets no gradient).
/// <c>alpha</c> gets its ordinary gradient <c>dL/dalpha = Σ dL/dW_q ⊙ W_t</c>.</para>
/// </summary>
public sealed class TernaryLinear : nn.Module<Tensor, Tensor>
{
    /// <summary>Added to gamma before dividing, as in the authors' code.</summary>
    public const double Epsilon = 1e-6;

    readonly Parameter weight;
    readonly Parameter alpha;
    readonly Parameter? bias;

    /// <summary>
    /// Creates the layer with uninitialised-but-finite values: weight zero, alpha one, bias zero.
    /// The owning model initialises weight and then alpha (<see cref="InitAlpha"/>).
    /// </summary>
    public TernaryLinear(long inFeatures, long outFeatures, bool hasBias = false) : base(nameof(TernaryLinear))
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"ternary linear needs positive sizes, got in={inFeatures}, out={outFeatures}");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        weight = new Parameter(zeros(outFeatures, inFeatures));
        alpha = new Parameter(ones(1));
        bias = hasBias ? new Parameter(zeros(outFeatures)) : null;
        RegisterComponents();
    }

    public long InFeatures { get; }
    public long OutFeatures { get; }
    /// <summary>Full-precision latent weight W, (out, in).</summary>
    public Parameter Weight => weight;
    /// <summary>Learnable scale, shape (1).</summary>
    public Parameter Alpha => alpha;
    public Parameter? Bias => bias;

    /// <summary>(…, in) → (…, out).</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var wt = Quantize(weight);                      // (out, in), values in {-1, 0, 1}, no grad
        var ste = wt + (weight - weight.detach());      // value exactly W_t (x - x = 0); dSte/dW = identity
        var wq = alpha * ste;                           // (out, in)
        return scope.MoveToOuter(nn.functional.linear(input, wq, bias));
    }

    /// <summary>
    /// The ternary values <c>clamp(round(w / (mean|w| + 1e-6)), -1, 1)</c>, computed in float32
    /// (whatever w's dtype: a bf16 mean over a large tensor is too coarse) without gradient and
    /// returned in <paramref name="w"/>'s dtype and device. The same arithmetic the forward uses.
    /// </summary>
    public static Tensor Quantize(Tensor w)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var w32 = w.to(ScalarType.Float32);
        var gamma = w32.abs().mean();
        return scope.MoveToOuter((w32 / (gamma + Epsilon)).round().clamp(-1, 1).to(w.dtype));
    }

    /// <summary>
    /// Ternarizes a weight for packing or post-training quantization: <c>Trits</c> is an int8 tensor
    /// of <paramref name="w"/>'s shape and device with values in {-1, 0, 1} (exactly what the forward
    /// uses), <c>Gamma</c> = mean|w| computed in float32. The forward's scale is
    /// the layer's <c>alpha</c>, not gamma.
    /// </summary>
    public static (Tensor Trits, float Gamma) Ternarize(Tensor w)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        float gamma = w.to(ScalarType.Float32).abs().mean().item<float>();
        return (scope.MoveToOuter(Quantize(w).to(ScalarType.Int8)), gamma);
    }

    /// <summary>
    /// Sets alpha from the current weight. <see cref="AlphaInit.Normal"/>: a draw from N(0, 1) on
    /// <paramref name="generator"/> (the authors' init). <see cref="AlphaInit.Absmean"/>: gamma =
    /// mean|W| (also the post-training ternarization scale). A zero weight (adaLN-Zero layers) has
    /// gamma = 0, and alpha = 0 would freeze the layer for good (dL/dW = alpha·dL/dW_q = 0 and
    /// dL/dalpha = Σ dL/dW_q ⊙ W_t = 0), so there Absmean falls back to the absmean a
    /// xavier-uniform weight of this shape would have: sqrt(6 / (in + out)) / 2.
    /// </summary>
    public void InitAlpha(AlphaInit mode, Generator? generator = null)
    {
        using var _ = no_grad();
        switch (mode)
        {
            case AlphaInit.Normal:
                alpha.normal_(0, 1, generator);
                break;
            case AlphaInit.Absmean:
                float gamma = Ternarize(weight).Gamma;
                double value = gamma > 0 ? gamma : Math.Sqrt(6.0 / (InFeatures + OutFeatures)) / 2;
                alpha.fill_(value);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown alpha initialisation");
        }
    }
}
