namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// DDIM with eta = 0 (Song et al. 2021), the deterministic sampler of DiT: the model is called at IDDPM's evenly
/// spaced timesteps <see cref="DiffusionSchedule.SpacedTimesteps"/>(T, n) (0 and T−1 included), and each step is
/// eq. (12) with σ_t = 0:
/// <c>x_{t−1} = √ᾱ_{t−1}·x̂0 + √(1 − ᾱ_{t−1})·ε̂</c>, ε̂ = (√(1/ᾱ_t)·x_t − x̂0) / √(1/ᾱ_t − 1) re-derived from the
/// (clipped) x̂0, as IDDPM does. The last step (ᾱ_{t−1} = 1) returns x̂0.
/// </summary>
public sealed class DdimScheduler(DiffusionSchedule trainSchedule, bool clipSample = true) : Scheduler(trainSchedule, clipSample)
{
    /// <inheritdoc/>
    protected override int[] KeptSteps(int count) => DiffusionSchedule.SpacedTimesteps(TrainSchedule.NumTimesteps, count);

    /// <inheritdoc/>
    protected override void StepAt(int i, ModelOutput modelOutput, Span<float> sample, Span<float> predX0, NoiseSource? noise)
    {
        var s = StepSchedule;
        double recip = s.SqrtRecipAlphasCumprod[i], recipm1 = s.SqrtRecipm1AlphasCumprod[i], acPrev = s.AlphasCumprodPrev[i];
        double keepX0 = Math.Sqrt(acPrev), keepEps = Math.Sqrt(1 - acPrev);
        var eps = modelOutput.Epsilon;
        for (int k = 0; k < sample.Length; k++)
        {
            double xt = sample[k], x0 = PredictX0(i, xt, eps[k]);
            double epsHat = (recip * xt - x0) / recipm1;
            sample[k] = (float)(keepX0 * x0 + keepEps * epsHat);                   // eq. (12), σ_t = 0
            if (!predX0.IsEmpty) predX0[k] = (float)x0;
        }
    }
}
