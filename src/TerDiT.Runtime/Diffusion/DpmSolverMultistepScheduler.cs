namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
/// Models", arXiv 2211.01095, Algorithm 2): the second-order multistep solver of the diffusion ODE written for the
/// data prediction x_θ = x̂0, with diffusers' <c>DPMSolverMultistepScheduler</c> defaults (solver order 2,
/// "midpoint" form, <c>timestep_spacing="linspace"</c>, <c>final_sigmas_type="zero"</c>). A learned-sigma model
/// contributes only its ε channels.
/// </summary>
/// <remarks>
/// With α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t) and the half log-SNR λ_t = log(α_t/σ_t), a step from s = t_{i−1} to t = t_i of
/// length h_i = λ_t − λ_s is
/// <code>
///   x_t = (σ_t/σ_s)·x_s − α_t·(e^(−h_i) − 1)·D_i
/// </code>
/// with D_i = x̂0_s on the first step (first order: DDIM), and on later steps (Algorithm 2)
/// <code>
///   r_i = h_{i−1}/h_i,   D_i = (1 + 1/(2r_i))·x̂0_s − (1/(2r_i))·x̂0_{s'}
/// </code>
/// where s' is the step before s. Timesteps: <c>round(linspace(0, T−1, n+1))</c> without its 0, highest first (n = 10,
/// T = 1000: 999, 899, …, 200, 100); the last step goes to σ = 0 (λ = ∞) and, being first order there, returns x̂0 of
/// the last model call. x̂0 is clipped to [−1, 1] with <see cref="Scheduler.ClipSample"/> (static thresholding, which
/// the paper's data prediction allows).
/// </remarks>
public sealed class DpmSolverMultistepScheduler(DiffusionSchedule trainSchedule, bool clipSample = true) : Scheduler(trainSchedule, clipSample)
{
    float[] _previousX0 = [];
    bool _hasPrevious;

    /// <summary>
    /// The steps <c>round(i·(T−1)/n)</c>, i = 1..n, rounded half to even (numpy's <c>linspace(0, T−1, n+1).round()[1:]</c>),
    /// distinct for n ≤ T − 1.
    /// </summary>
    protected override int[] KeptSteps(int count)
    {
        int t = TrainSchedule.NumTimesteps;
        if (count < 1 || count > MaxSteps)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"DPM-Solver++ takes 1..{MaxSteps} steps on a {t}-step schedule");
        double stride = (t - 1) / (double)count;
        var steps = new int[count];
        for (int i = 1; i <= count; i++) steps[i - 1] = i == count ? t - 1 : (int)Math.Round(i * stride, MidpointRounding.ToEven);
        return steps;
    }

    /// <summary>T − 1: the timesteps leave out 0, the end of sampling (σ = 0).</summary>
    public override int MaxSteps => TrainSchedule.NumTimesteps - 1;

    /// <inheritdoc/>
    protected override void Restart() => _hasPrevious = false;

    /// <summary>
    /// The update of step <paramref name="i"/> of <paramref name="steps"/> (a schedule respaced to the sampling steps,
    /// whose step i goes from ᾱ_i to ᾱ_{i−1}, with ᾱ_{−1} = 1) as <c>x_next = Sample·x + PredX0·x̂0 + PreviousPredX0·x̂0_prev</c>,
    /// where x̂0_prev is the x̂0 of step i + 1. <paramref name="secondOrder"/> asks for the 2M update; step 0 (to σ = 0)
    /// is always first order: x_next = x̂0.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">i outside the schedule, or second order asked at its first step n − 1.</exception>
    public static (double Sample, double PredX0, double PreviousPredX0) UpdateCoefficients(DiffusionSchedule steps, int i, bool secondOrder)
    {
        ArgumentNullException.ThrowIfNull(steps);
        int n = steps.NumTimesteps;
        if (i < 0 || i >= n) throw new ArgumentOutOfRangeException(nameof(i), i, $"step must be in 0..{n - 1}");
        if (i == 0) return (0, 1, 0);                             // σ_t = 0, α_t = 1: x_t = D = x̂0
        if (secondOrder && i == n - 1) throw new ArgumentOutOfRangeException(nameof(i), i, "the first step has no previous x̂0");
        double acS = steps.AlphasCumprod[i], acT = steps.AlphasCumprodPrev[i];
        double sigmaRatio = Math.Sqrt((1 - acT) / (1 - acS)), alphaT = Math.Sqrt(acT);
        double h = Lambda(acT) - Lambda(acS);
        double phi = -alphaT * double.ExpM1(-h);                    // −α_t·(e^(−h) − 1)
        if (!secondOrder) return (sigmaRatio, phi, 0);
        double r = (Lambda(acS) - Lambda(steps.AlphasCumprod[i + 1])) / h;   // r_i = h_{i−1}/h_i
        return (sigmaRatio, phi * (1 + 1 / (2 * r)), -phi / (2 * r));
    }

    /// <summary>λ = log(α/σ) = ½·log(ᾱ/(1 − ᾱ)).</summary>
    static double Lambda(double alphaBar) => 0.5 * Math.Log(alphaBar / (1 - alphaBar));

    /// <inheritdoc/>
    protected override void StepAt(int i, ModelOutput modelOutput, Span<float> sample, Span<float> predX0, NoiseSource? noise)
    {
        if (_previousX0.Length != sample.Length) (_previousX0, _hasPrevious) = (new float[sample.Length], false);
        var (a, b, c) = UpdateCoefficients(StepSchedule, i, secondOrder: _hasPrevious && i > 0);
        var eps = modelOutput.Epsilon;
        for (int k = 0; k < sample.Length; k++)
        {
            double x0 = PredictX0(i, sample[k], eps[k]);
            sample[k] = (float)(a * sample[k] + b * x0 + c * _previousX0[k]);
            _previousX0[k] = (float)x0;
            if (!predX0.IsEmpty) predX0[k] = (float)x0;
        }
        _hasPrevious = true;
    }
}
