using TerDiT.Diffusion;
using TerDiT.Runtime.Diffusion;
using static TorchSharp.torch;

namespace TerDiT.Tests;

/// <summary>Analytic denoisers for the diffusion tests.</summary>
static class DiffusionTestModels
{
    /// <summary>DiT's diffusion of a learned-sigma model: the 1000-step linear schedule, learned-range variance, clipped samples.</summary>
    public static readonly DiffusionProcess Dit = new(DiffusionSchedule.Linear(), VarianceKind.LearnedRange);

    /// <summary>ᾱ at ORIGINAL timesteps t (N), float64 → x's dtype, shaped (N, 1, …, 1).</summary>
    public static Tensor AlphaBarAt(Tensor t, Tensor x)
    {
        using var table = tensor(DiffusionSchedule.Linear().AlphasCumprod.ToArray(), device: x.device);
        var shape = Enumerable.Repeat(1L, (int)x.dim()).ToArray();
        shape[0] = t.shape[0];
        return table.index_select(0, t).to(x.dtype).view(shape);
    }

    /// <summary>
    /// The exact noise predictor for a known x0: ε = (x_t − √ᾱ_t·x0)/√(1 − ᾱ_t) at the original timestep t,
    /// plus <paramref name="v"/> as learned-variance channels when <paramref name="learnedSigma"/>.
    /// </summary>
    public static DenoiserFn Oracle(Tensor x0, bool learnedSigma, double v = 0.0, List<long[]>? seenTimesteps = null) => (x, t, y) =>
    {
        seenTimesteps?.Add(t.data<long>().ToArray());
        var ab = AlphaBarAt(t, x);
        var eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt();
        return learnedSigma ? cat([eps, full_like(eps, v)], 1) : eps;
    };

    /// <summary>
    /// The exact noise predictor when every element of x0 is N(m, s²) independently:
    /// E[ε | x_t] = √(1−ᾱ)·(x_t − √ᾱ·m)/(ᾱ·s² + 1 − ᾱ); learned-variance channels = <paramref name="v"/>.
    /// </summary>
    public static DenoiserFn GaussianData(double m, double s, bool learnedSigma, double v = 0.0) => (x, t, y) =>
    {
        var ab = AlphaBarAt(t, x);
        var eps = (1 - ab).sqrt() * (x - ab.sqrt() * m) / (ab * (s * s) + 1 - ab);
        return learnedSigma ? cat([eps, full_like(eps, v)], 1) : eps;
    };
}
