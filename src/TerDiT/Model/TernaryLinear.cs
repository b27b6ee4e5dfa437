using TerDiT.Runtime.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// Linear layer with ternary weights trained by quantization-aware training (docs/PAPER.md §1).
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
public sealed class TernaryLinear : nn.Module<Tensor, Tensor>, IComputePrecision
{
    /// <summary>Added to gamma before dividing, as in the authors' code.</summary>
    public const double Epsilon = 1e-6;

    readonly Parameter weight;
    readonly Parameter alpha;
    readonly Parameter? bias;
    ScalarType? computeDType;

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

    /// <inheritdoc/>
    /// <remarks>
    /// Ternarization (gamma, round, clamp) always runs in float32 on the latent weight; only the
    /// effective weight <c>alpha · W_t</c> (rounded once), the input and the bias are cast to the compute
    /// dtype for the product. Gradients reach the float32 parameters through the casts.
    /// </remarks>
    public ScalarType? ComputeDType { get => computeDType; set => computeDType = ComputePrecision.Check(value); }

    /// <summary>(…, in) → (…, out), in <see cref="ComputeDType"/> (null: the weight's dtype).</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // Passes over the (out, in) weight in the forward (kernels; R = read, W = write of one weight-size
        // tensor). The straightforward STE `Quantize(W) + (W - W.detach())`, then `alpha ·`, costs
        // abs (R+W), mean (R), div (R+W), round (R+W), clamp (R+W), sub (2R+W), add (2R+W), mul (R+W):
        // 8 kernels, 10R + 7W, and 6 weight-size temporaries. Here: a float32 copy of W (R+W) whose
        // backward is the identity, ternarized in place under no_grad (abs (R+W), mean (R), div_ (R+W),
        // round_ (R+W), clamp_ (R+W)), then mul (R+W): 7 kernels, 7R + 6W, 2 temporaries (the copy, abs).
        // The copy holds exactly W_t while autograd sees `copy(W)`, so dL/dW = dL/dW_t (the STE) and
        // dL/dalpha = Σ dL/dW_q ⊙ W_t bit for bit as before; the backward (mul: 2 kernels + a sum) is
        // unchanged. (|W|₁ via linalg.vector_norm would fuse abs and mean, but on the CPU it sums
        // differently from mean (3e-6 relative on 4e5 elements), enough to flip trits, so gamma stays
        // abs().mean(). A custom autograd function (not tried) would save the copy, but TorchSharp 0.107 passes its
        // backward results to libtorch while a managed handle still references them, so AccumulateGrad clones the
        // weight gradient, a pass back, and the handle holds GPU memory until the GC runs.)
        var wt = weight.to(ScalarType.Float32, copy: true);     // (out, in) float32, d/dW = identity
        using (no_grad()) TernarizeInPlace(wt.detach());       // values now in {-1, 0, 1}
        var wq = (wt * alpha).to(computeDType ?? weight.dtype); // (out, in) = alpha · W_t, rounded once
        return scope.MoveToOuter(ComputePrecision.Linear(input, wq, bias, computeDType ?? weight.dtype));
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
        var w32 = w.to(ScalarType.Float32, copy: true);
        TernarizeInPlace(w32);
        return scope.MoveToOuter(w32.to(w.dtype));
    }

    /// <summary>
    /// Replaces the float32 tensor <paramref name="w"/> by <c>clamp(round(w / (gamma + 1e-6)), -1, 1)</c>
    /// (round half to even) and returns gamma = mean|w| (0-dim, float32). Call without grad.
    /// </summary>
    static Tensor TernarizeInPlace(Tensor w)
    {
        Tensor gamma;
        using (var abs = w.abs()) gamma = abs.mean();
        using var epsilon = Epsilon.ToScalar();
        using var divisor = gamma.Plus(epsilon);
        w.div_(divisor).round_().clamp_(Scalars.MinusOne, Scalars.One);
        return gamma;
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
        var w32 = w.to(ScalarType.Float32, copy: true);
        float gamma = TernarizeInPlace(w32).item<float>();
        return (scope.MoveToOuter(w32.to(ScalarType.Int8)), gamma);
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
                using (var scalar = value.ToScalar()) alpha.fill_(scalar);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown alpha initialisation");
        }
    }
}
