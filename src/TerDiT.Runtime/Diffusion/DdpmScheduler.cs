namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// DDPM ancestral sampling (Ho et al. 2020) over IDDPM's evenly spaced timesteps
/// <see cref="DiffusionSchedule.SpacedTimesteps"/>(T, n): <c>x_{t−1} = μ̃_t(x̂0, x_t) + σ_t·z</c> with the posterior
/// mean of eq. (7), <c>μ̃_t = β_t√ᾱ_{t−1}/(1 − ᾱ_t)·x̂0 + (1 − ᾱ_{t−1})√α_t/(1 − ᾱ_t)·x_t</c>, and log σ_t² per
/// <see cref="Variance"/>: learned range (Nichol &amp; Dhariwal 2021, eq. (15): <c>frac·log β_t + (1 − frac)·log β̃_t</c>,
/// frac = (v + 1)/2), fixed small (log β̃_t) or fixed large (log β_t). The last step adds no noise and returns μ̃,
/// which is x̂0 up to rounding.
/// </summary>
public sealed class DdpmScheduler : Scheduler
{
    float[] _z = [];

    /// <param name="trainSchedule">The schedule the model was trained with.</param>
    /// <param name="variance">How Σ_θ is obtained; <see cref="VarianceKind.LearnedRange"/> needs the variance values in each step.</param>
    /// <param name="clipSample">Whether x̂0 is clipped to [−1, 1].</param>
    public DdpmScheduler(DiffusionSchedule trainSchedule, VarianceKind variance, bool clipSample = true) : base(trainSchedule, clipSample)
    {
        if (!Enum.IsDefined(variance)) throw new ArgumentOutOfRangeException(nameof(variance), variance, "unknown variance kind");
        Variance = variance;
    }

    /// <summary>How the reverse variance is obtained.</summary>
    public VarianceKind Variance { get; }

    /// <inheritdoc/>
    protected override int[] KeptSteps(int count) => DiffusionSchedule.SpacedTimesteps(TrainSchedule.NumTimesteps, count);

    /// <inheritdoc/>
    protected override void StepAt(int i, ModelOutput modelOutput, Span<float> sample, Span<float> predX0, NoiseSource? noise)
    {
        var s = StepSchedule;
        var eps = modelOutput.Epsilon;
        var v = modelOutput.VarianceValues;
        bool learned = Variance == VarianceKind.LearnedRange;
        if (learned && v.IsEmpty) throw new ArgumentException("learned-range variance needs the model's variance values");
        Span<float> z = default;
        if (i > 0)
        {
            if (noise is null) throw new InvalidOperationException("a DDPM step needs noise");
            if (_z.Length != sample.Length) _z = new float[sample.Length];
            z = _z;
            noise(z);
        }
        double coef1 = s.PosteriorMeanCoef1[i], coef2 = s.PosteriorMeanCoef2[i];
        double logBeta = s.LogBetas[i], logPosterior = s.PosteriorLogVarianceClipped[i];
        double fixedLogVar = Variance == VarianceKind.FixedSmall ? logPosterior : s.FixedLargeLogVariance[i];
        for (int k = 0; k < sample.Length; k++)
        {
            double xt = sample[k], x0 = PredictX0(i, xt, eps[k]);
            double mean = coef1 * x0 + coef2 * xt;                                          // eq. (7)
            if (!predX0.IsEmpty) predX0[k] = (float)x0;
            if (i == 0) { sample[k] = (float)mean; continue; }
            double logVar = learned ? (v[k] + 1.0) / 2 * logBeta + (1 - (v[k] + 1.0) / 2) * logPosterior : fixedLogVar;
            sample[k] = (float)(mean + Math.Exp(0.5 * logVar) * z[k]);
        }
    }
}
