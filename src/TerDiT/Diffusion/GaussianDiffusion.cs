using TerDiT.Runtime.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Diffusion;

/// <summary>
/// Gaussian diffusion over a (possibly respaced) <see cref="DiffusionSchedule"/>, as in DiT / IDDPM:
/// the model predicts epsilon (and optionally a learned-range variance).
/// </summary>
/// <remarks>
/// Every <c>t</c> argument is a step index of <see cref="Schedule"/> (int64, shape (N), on the data's device);
/// the model is called with <c>Schedule.TimestepMap[t]</c>, the original timestep.
/// Schedule values are gathered in float64 and cast to the data's dtype; all work stays on the data's device.
/// Random numbers come from a CPU <see cref="Generator"/> and are moved to the device afterwards.
/// </remarks>
public sealed class GaussianDiffusion
{
    /// <summary>Diffusion over <paramref name="schedule"/> with the given reverse-variance parameterisation.</summary>
    public GaussianDiffusion(DiffusionSchedule schedule, VarianceKind variance = VarianceKind.LearnedRange)
    {
        Schedule = schedule ?? throw new ArgumentNullException(nameof(schedule));
        Variance = variance;
    }

    /// <summary>The schedule: step i of this diffusion ↔ original timestep <c>Schedule.TimestepMap[i]</c>.</summary>
    public DiffusionSchedule Schedule { get; }

    /// <summary>How the reverse variance is parameterised; fixes the model's output channel count.</summary>
    public VarianceKind Variance { get; }

    /// <summary>Number of steps of <see cref="Schedule"/>.</summary>
    public int NumTimesteps => Schedule.NumTimesteps;

    /// <summary>Draws x_t ~ q(x_t | x_0) = √ᾱ_t·x0 + √(1 − ᾱ_t)·noise. x0, noise: (N, …); t: (N).</summary>
    public Tensor QSample(Tensor x0, Tensor t, Tensor noise)
    {
        CheckSameShape(x0, noise, "x0", "noise");
        CheckSteps(t, x0);
        return (Extract(Schedule.SqrtAlphasCumprod, t, x0) * x0).Plus(Extract(Schedule.SqrtOneMinusAlphasCumprod, t, x0) * noise);
    }

    /// <summary>
    /// The posterior q(x_{t−1} | x_t, x_0): mean = coef1_t·x0 + coef2_t·x_t, variance β̃_t and its clipped log,
    /// the latter two broadcast to (N, 1, …, 1).
    /// </summary>
    public (Tensor Mean, Tensor Variance, Tensor LogVarianceClipped) QPosteriorMeanVariance(Tensor x0, Tensor xt, Tensor t)
    {
        CheckSameShape(x0, xt, "x0", "xt");
        CheckSteps(t, xt);
        var mean = (Extract(Schedule.PosteriorMeanCoef1, t, xt) * x0).Plus(Extract(Schedule.PosteriorMeanCoef2, t, xt) * xt);
        return (mean, Extract(Schedule.PosteriorVariance, t, xt), Extract(Schedule.PosteriorLogVarianceClipped, t, xt));
    }

    /// <summary>
    /// Calls the model at x_t and forms p_θ(x_{t−1} | x_t): x̂0 = √(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·ε̂ (clamped to [−1, 1]
    /// when <paramref name="clipDenoised"/>, as DiT does when sampling), mean = posterior mean at (x̂0, x_t),
    /// variance per <see cref="Variance"/>. Mean and PredX0: (N, C, …); Variance, LogVariance: (N, C, …) when learned,
    /// else (N, 1, …, 1). Eps: the model's epsilon channels.
    /// </summary>
    public (Tensor Mean, Tensor Variance, Tensor LogVariance, Tensor PredX0, Tensor Eps) PMeanVariance(
        DenoiserFn model, Tensor x, Tensor t, Tensor y, bool clipDenoised = true) =>
        MeanVarianceFromOutput(CallModel(model, x, t, y), x, t, clipDenoised);

    /// <summary>
    /// DiT's training loss per sample, (N): x_t = QSample(x0, t, noise); Mse = mean over (C, H, W) of (noise − ε̂)²;
    /// with <see cref="VarianceKind.LearnedRange"/> also Vb = the variational-bound term in bits per dimension
    /// (KL(q(x_{t−1}|x_t,x0) ‖ p_θ) averaged over C,H,W / ln 2, or at t = 0 the discretised decoder NLL),
    /// computed from the model's epsilon DETACHED so that it trains only the variance channels (IDDPM's frozen_out).
    /// Loss = Mse + Vb (Vb is null and Loss = Mse for fixed variances). <paramref name="t"/> holds step indices.
    /// </summary>
    public (Tensor Loss, Tensor Mse, Tensor? Vb) TrainingLosses(DenoiserFn model, Tensor x0, Tensor t, Tensor y, Tensor noise)
    {
        var xt = QSample(x0, t, noise);                       // (N, C, H, W)
        var output = CallModel(model, xt, t, y);              // (N, C or 2C, H, W)
        long c = x0.shape[1];
        var eps = output.narrow(1, 0, c);                     // (N, C, H, W)
        var mse = MeanFlat((noise - eps).Squared());          // (N)
        if (Variance != VarianceKind.LearnedRange) return (mse, mse, null);

        var frozen = cat([eps.detach(), output.narrow(1, c, c)], 1);
        var p = MeanVarianceFromOutput(frozen, xt, t, clipDenoised: false);
        var (trueMean, _, trueLogVar) = QPosteriorMeanVariance(x0, xt, t);
        using var s = new ScalarHolder();
        Scalar ln2 = s.Of(Math.Log(2.0));
        var kl = MeanFlat(GaussianLikelihood.NormalKl(trueMean, trueLogVar, p.Mean, p.LogVariance)) / ln2;
        var decoderNll = -MeanFlat(GaussianLikelihood.DiscretizedGaussianLogLikelihood(x0, p.Mean, s.Of(0.5) * p.LogVariance)) / ln2;
        var vb = where(t == Scalars.Zero, decoderNll, kl);    // (N)
        return (mse.Plus(vb), mse, vb);
    }

    /// <summary>Uniform training step indices in [0, NumTimesteps), (N) int64, drawn from <paramref name="generator"/> (CPU) then moved to <paramref name="device"/>.</summary>
    public Tensor SampleTimesteps(long n, Generator generator, Device device)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "need at least one sample");
        using var cpu = randint(0, NumTimesteps, [n], dtype: ScalarType.Int64, generator: generator);
        return cpu.to(device);
    }

    /// <summary>
    /// One DDPM ancestral step: x_{t−1} = μ_θ + [t ≠ 0]·exp(½·log Σ_θ)·z, z ~ N(0, I) from <paramref name="generator"/>.
    /// </summary>
    public Tensor PSample(DenoiserFn model, Tensor x, Tensor t, Tensor y, Generator generator, bool clipDenoised = true)
    {
        var p = PMeanVariance(model, x, t, y, clipDenoised);
        var noise = Noise(x.shape, x, generator);
        using var half = 0.5.ToScalar();
        return p.Mean.Plus(NonzeroMask(t, x) * (half * p.LogVariance).exp() * noise);
    }

    /// <summary>
    /// One DDIM step: ε = (√(1/ᾱ_t)·x_t − x̂0) / √(1/ᾱ_t − 1), σ = eta·√((1−ᾱ_{t−1})/(1−ᾱ_t))·√(1 − ᾱ_t/ᾱ_{t−1}),
    /// x_{t−1} = √ᾱ_{t−1}·x̂0 + √(1 − ᾱ_{t−1} − σ²)·ε + [t ≠ 0]·σ·z. No noise is drawn when eta = 0.
    /// </summary>
    public Tensor DdimSample(DenoiserFn model, Tensor x, Tensor t, Tensor y, double eta, Generator generator, bool clipDenoised = true)
    {
        if (eta < 0) throw new ArgumentOutOfRangeException(nameof(eta), eta, "eta must be ≥ 0");
        var p = PMeanVariance(model, x, t, y, clipDenoised);
        var eps = (Extract(Schedule.SqrtRecipAlphasCumprod, t, x) * x - p.PredX0) / Extract(Schedule.SqrtRecipm1AlphasCumprod, t, x);
        var alphaBar = Extract(Schedule.AlphasCumprod, t, x);
        var alphaBarPrev = Extract(Schedule.AlphasCumprodPrev, t, x);
        using var etaScalar = eta.ToScalar();
        var one = Scalars.One;
        var sigma = etaScalar * (Scalars.Minus(one, alphaBarPrev) / Scalars.Minus(one, alphaBar)).sqrt() * Scalars.Minus(one, alphaBar / alphaBarPrev).sqrt();
        var next = (p.PredX0 * alphaBarPrev.sqrt()).Plus((Scalars.Minus(one, alphaBarPrev) - sigma.Squared()).sqrt() * eps);
        if (eta == 0) return next;
        return next.Plus(NonzeroMask(t, x) * sigma * Noise(x.shape, x, generator));
    }

    /// <summary>
    /// One DPM-Solver++(2M) step from step i of <see cref="Schedule"/> (all of <paramref name="t"/> equal to i) to step i − 1
    /// (to x̂0 at i = 0): x_next = a·x + b·x̂0 + c·x̂0_prev with the float64 coefficients of
    /// <see cref="DpmSolverMultistepScheduler.UpdateCoefficients"/> (the runtime scheduler's arithmetic), second order when
    /// <paramref name="previousX0"/> (the x̂0 of step i + 1) is given and i > 0. Returns the next sample and this step's x̂0.
    /// </summary>
    public (Tensor Next, Tensor PredX0) DpmSolverStep(DenoiserFn model, Tensor x, Tensor t, Tensor y, Tensor? previousX0, bool clipDenoised = true)
    {
        var p = PMeanVariance(model, x, t, y, clipDenoised);
        int i = (int)t[0].item<long>();
        using var s = new ScalarHolder();
        if (!t.eq(s.Of(i)).all().item<bool>()) throw new ArgumentException("a DPM-Solver++ step takes one step index for the whole batch");
        if (previousX0 is not null) CheckSameShape(previousX0, x, "previousX0", "x");
        var (a, b, c) = DpmSolverMultistepScheduler.UpdateCoefficients(Schedule, i, secondOrder: previousX0 is not null && i > 0);
        var next = (s.Of(a) * x).Plus(s.Of(b) * p.PredX0);
        if (c != 0) next = next.Plus(s.Of(c) * previousX0!);
        return (next, p.PredX0);
    }

    /// <summary>
    /// Runs the reverse process from x_T = <paramref name="noise"/> (N, C, H, W) down to x_0 over every step of
    /// <see cref="Schedule"/>, without gradients. <paramref name="progress"/>(done, total) is called after each step.
    /// Returns x_0 (in [−1, 1] up to rounding when <paramref name="clipDenoised"/>: every sampler's last step returns x̂0).
    /// For DPM-Solver++ the schedule must be respaced to its timesteps (<see cref="DiffusionProcess.SamplingSchedule"/>).
    /// </summary>
    public Tensor SampleLoop(DenoiserFn model, Tensor noise, Tensor y, SamplerKind kind, Generator generator,
        double eta = 0.0, bool clipDenoised = true, Action<int, int>? progress = null)
    {
        if (noise.dim() < 2) throw new ArgumentException($"noise must be (N, C, …), got {TensorShape.Format(noise)}");
        if (y.dim() != 1 || y.shape[0] != noise.shape[0])
            throw new ArgumentException($"labels must be ({noise.shape[0]}), got {TensorShape.Format(y)}");
        using var noGrad = no_grad();
        var x = noise;
        Tensor? previousX0 = null;                            // DPM-Solver++: x̂0 of the step before
        for (int i = NumTimesteps - 1, done = 1; i >= 0; i--, done++)
        {
            using var scope = NewDisposeScope();
            using var step = ((long)i).ToScalar();
            var t = full([noise.shape[0]], step, dtype: ScalarType.Int64, device: noise.device);
            Tensor next;
            switch (kind)
            {
                case SamplerKind.Ddpm: next = PSample(model, x, t, y, generator, clipDenoised); break;
                case SamplerKind.Ddim: next = DdimSample(model, x, t, y, eta, generator, clipDenoised); break;
                case SamplerKind.DpmPlusPlus2M:
                    (next, var predX0) = DpmSolverStep(model, x, t, y, previousX0, clipDenoised);
                    previousX0?.Dispose();
                    previousX0 = scope.MoveToOuter(predX0);
                    break;
                default: throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown sampler");
            }
            next = scope.MoveToOuter(next);
            if (!ReferenceEquals(x, noise)) x.Dispose();
            x = next;
            progress?.Invoke(done, NumTimesteps);
        }
        previousX0?.Dispose();
        return x;
    }

    /// <summary>
    /// Generates samples end to end: <paramref name="process"/> respaced to the <paramref name="steps"/> timesteps of <paramref name="kind"/>
    /// (<see cref="DiffusionProcess.SamplingSchedule"/>), x_T ~ N(0, I) of <paramref name="shape"/> (N, C, H, W) drawn in
    /// float32 from <paramref name="generator"/> (CPU), moved to <paramref name="device"/> and cast to <paramref name="dtype"/>,
    /// classifier-free guidance with <paramref name="cfgScale"/> (1 = none) and <paramref name="nullClass"/>, pred-x0 clipped
    /// to [−1, 1] when the process clips samples. <paramref name="y"/>: (N) labels. Returns x_0 (N, C, H, W) on <paramref name="device"/>.
    /// </summary>
    public static Tensor Sample(DenoiserFn model, DiffusionProcess process, long[] shape, Tensor y, SamplerKind kind, int steps, double cfgScale,
        int nullClass, Generator generator, Device device, Action<int, int>? progress = null, double eta = 0.0, ScalarType dtype = ScalarType.Float32)
    {
        if (shape is not { Length: >= 2 } || shape.Any(d => d < 1))
            throw new ArgumentException($"shape must be (N, C, …) with positive sizes, got ({string.Join(", ", shape ?? [])})", nameof(shape));
        ArgumentNullException.ThrowIfNull(process);
        var diffusion = new GaussianDiffusion(process.SamplingSchedule(kind, steps), process.Variance);
        var guided = ClassifierFreeGuidance.Wrap(model, cfgScale, nullClass);
        using var cpuNoise = randn(shape, dtype: ScalarType.Float32, generator: generator);
        using var noise = cpuNoise.to(dtype, device);
        using var labels = y.to(ScalarType.Int64, device);
        using var x0 = diffusion.SampleLoop(guided, noise, labels, kind, generator, eta, process.ClipSample, progress);
        // The last step returns the clipped x̂0 up to float rounding of the posterior coefficients; make [−1, 1] exact.
        return process.ClipSample ? x0.clamp(Scalars.MinusOne, Scalars.One) : x0.clone();
    }

    (Tensor Mean, Tensor Variance, Tensor LogVariance, Tensor PredX0, Tensor Eps) MeanVarianceFromOutput(
        Tensor output, Tensor x, Tensor t, bool clipDenoised)
    {
        long c = x.shape[1];
        var eps = output.narrow(1, 0, c);                                           // (N, C, H, W)
        Tensor variance, logVariance;
        switch (Variance)
        {
            case VarianceKind.LearnedRange:
                var minLog = Extract(Schedule.PosteriorLogVarianceClipped, t, x);   // (N, 1, 1, 1)
                var maxLog = Extract(Schedule.LogBetas, t, x);
                var frac = output.narrow(1, c, c).Plus(Scalars.One) / Scalars.Two;        // (N, C, H, W)
                logVariance = (frac * maxLog).Plus(Scalars.Minus(Scalars.One, frac) * minLog);
                variance = logVariance.exp();
                break;
            case VarianceKind.FixedSmall:
                variance = Extract(Schedule.PosteriorVariance, t, x);
                logVariance = Extract(Schedule.PosteriorLogVarianceClipped, t, x);
                break;
            case VarianceKind.FixedLarge:
                variance = Extract(Schedule.FixedLargeVariance, t, x);
                logVariance = Extract(Schedule.FixedLargeLogVariance, t, x);
                break;
            default:
                throw new InvalidOperationException($"unknown variance kind {Variance}");
        }
        var predX0 = Extract(Schedule.SqrtRecipAlphasCumprod, t, x) * x - Extract(Schedule.SqrtRecipm1AlphasCumprod, t, x) * eps;
        if (clipDenoised) predX0 = predX0.clamp(Scalars.MinusOne, Scalars.One);
        var (mean, _, _) = QPosteriorMeanVariance(predX0, x, t);
        return (mean, variance, logVariance, predX0, eps);
    }

    /// <summary>Calls the model with original timesteps and checks its output shape.</summary>
    Tensor CallModel(DenoiserFn model, Tensor x, Tensor t, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (x.dim() < 2) throw new ArgumentException($"x must be (N, C, …), got {TensorShape.Format(x)}");
        CheckSteps(t, x);
        using var map = tensor(Schedule.TimestepMap.ToArray().Select(v => (long)v).ToArray(), device: x.device);
        using var original = map.index_select(0, t);
        var output = model(x, original, y);
        long expected = Variance == VarianceKind.LearnedRange ? 2 * x.shape[1] : x.shape[1];
        var want = x.shape.ToArray();
        want[1] = expected;
        if (!output.shape.SequenceEqual(want))
            throw new ArgumentException($"model returned {TensorShape.Format(output)}, expected ({string.Join(", ", want)}) for {Variance} variance");
        return output;
    }

    /// <summary>arr[t] gathered in float64 on x's device, cast to x's dtype, shaped (N, 1, …, 1) to broadcast against x.</summary>
    static Tensor Extract(ReadOnlySpan<double> arr, Tensor t, Tensor x)
    {
        using var table = tensor(arr.ToArray(), dtype: ScalarType.Float64, device: x.device);
        using var gathered = table.index_select(0, t);
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[0] = t.shape[0];
        return gathered.to(x.dtype).view(shape);
    }

    /// <summary>1 where t ≠ 0 else 0, (N, 1, …, 1) in x's dtype.</summary>
    static Tensor NonzeroMask(Tensor t, Tensor x)
    {
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[0] = t.shape[0];
        return (t != Scalars.Zero).to(x.dtype).view(shape);
    }

    /// <summary>N(0, I) of <paramref name="shape"/> drawn in float32 on the CPU generator, then moved to like's device and dtype.</summary>
    static Tensor Noise(long[] shape, Tensor like, Generator generator)
    {
        using var cpu = randn(shape, dtype: ScalarType.Float32, generator: generator);
        return cpu.to(like.dtype, like.device);
    }

    /// <summary>Mean over all dimensions but the first: (N, …) → (N).</summary>
    static Tensor MeanFlat(Tensor x) => x.flatten(1).mean([1]);

    void CheckSteps(Tensor t, Tensor x)
    {
        if (t.dim() != 1 || t.shape[0] != x.shape[0])
            throw new ArgumentException($"t must be ({x.shape[0]}) step indices, got {TensorShape.Format(t)}");
        if (t.dtype != ScalarType.Int64) throw new ArgumentException($"t must be int64 step indices, got {t.dtype}");
        if (t.device_type != x.device_type) throw new ArgumentException($"t is on {t.device}, data on {x.device}");
        long lo = t.min().item<long>(), hi = t.max().item<long>();
        if (lo < 0 || hi >= NumTimesteps) throw new ArgumentOutOfRangeException(nameof(t), $"step indices {lo}..{hi} outside 0..{NumTimesteps - 1}");
    }

    static void CheckSameShape(Tensor a, Tensor b, string nameA, string nameB)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"{nameA} {TensorShape.Format(a)} and {nameB} {TensorShape.Format(b)} must have one shape");
    }
}
