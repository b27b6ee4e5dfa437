using TerDiT.Runtime.Config;
using TerDiT.Runtime.Diffusion;
using TerDiT.Runtime.Format;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class SchedulerTests
{
    static readonly DiffusionSchedule Dit = DiffusionSchedule.Linear();

    static Scheduler Create(SamplerKind kind, int steps, bool clip = true, VarianceKind variance = VarianceKind.LearnedRange)
    {
        var scheduler = new DiffusionProcess(Dit, variance, clip).CreateScheduler(kind);
        scheduler.SetTimesteps(steps);
        return scheduler;
    }

    // Timestep tables printed by diffusers (DDIMScheduler with timestep_spacing="linspace";
    // DPMSolverMultistepScheduler with its defaults), beta_schedule="linear", 1e-4..0.02, 1000 steps.
    public static TheoryData<int, int[]> DdimTables => new()
    {
        { 1, [0] },
        { 5, [999, 749, 500, 250, 0] },
        { 7, [999, 832, 666, 500, 333, 166, 0] },
        { 10, [999, 888, 777, 666, 555, 444, 333, 222, 111, 0] },
        { 15, [999, 928, 856, 785, 714, 642, 571, 500, 428, 357, 285, 214, 143, 71, 0] },
        { 20, [999, 946, 894, 841, 789, 736, 684, 631, 578, 526, 473, 421, 368, 315, 263, 210, 158, 105, 53, 0] },
        { 25, [999, 957, 916, 874, 832, 791, 749, 708, 666, 624, 583, 541, 500, 458, 416, 375, 333, 291, 250, 208, 166, 125, 83, 42, 0] },
        { 50, [999, 979, 958, 938, 917, 897, 877, 856, 836, 816, 795, 775, 754, 734, 714, 693, 673, 652, 632, 612, 591, 571, 550, 530, 510,
               489, 469, 449, 428, 408, 387, 367, 347, 326, 306, 285, 265, 245, 224, 204, 183, 163, 143, 122, 102, 82, 61, 41, 20, 0] },
    };

    public static TheoryData<int, int[]> DpmTables => new()
    {
        { 1, [999] },
        { 2, [999, 500] },
        { 3, [999, 666, 333] },
        { 5, [999, 799, 599, 400, 200] },
        { 10, [999, 899, 799, 699, 599, 500, 400, 300, 200, 100] },
        { 15, [999, 932, 866, 799, 733, 666, 599, 533, 466, 400, 333, 266, 200, 133, 67] },
        { 20, [999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 500, 450, 400, 350, 300, 250, 200, 150, 100, 50] },
        { 25, [999, 959, 919, 879, 839, 799, 759, 719, 679, 639, 599, 559, 519, 480, 440, 400, 360, 320, 280, 240, 200, 160, 120, 80, 40] },
        { 50, [999, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719, 699, 679, 659, 639, 619, 599, 579, 559, 539, 519,
               500, 480, 460, 440, 420, 400, 380, 360, 340, 320, 300, 280, 260, 240, 220, 200, 180, 160, 140, 120, 100, 80, 60, 40, 20] },
    };

    [Theory]
    [MemberData(nameof(DdimTables))]
    public void DdimAndDdpmCallTheModelAtIddpmsSpacedTimesteps(int steps, int[] expected)
    {
        Assert.Equal(expected, Create(SamplerKind.Ddim, steps).Timesteps.ToArray());
        Assert.Equal(expected, Create(SamplerKind.Ddpm, steps).Timesteps.ToArray());
    }

    [Theory]
    [MemberData(nameof(DpmTables))]
    public void DpmSolverCallsTheModelAtDiffusersLinspaceTimesteps(int steps, int[] expected)
    {
        var scheduler = Create(SamplerKind.DpmPlusPlus2M, steps);
        Assert.Equal(expected, scheduler.Timesteps.ToArray());
        // The step schedule ends in x_0: ᾱ after the last (lowest) timestep is 1.
        Assert.Equal(1.0, scheduler.StepSchedule.AlphasCumprodPrev[0]);
    }

    [Fact]
    public void DpmSolverTakesUpTo999DistinctSteps()
    {
        var all = Create(SamplerKind.DpmPlusPlus2M, 999).Timesteps.ToArray();
        Assert.Equal(Enumerable.Range(1, 999).Reverse(), all);    // diffusers: 999, 998, …, 1
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(SamplerKind.DpmPlusPlus2M, 1000));
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(SamplerKind.DpmPlusPlus2M, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(SamplerKind.Ddim, 1001));
        var process = DiffusionProcess.For(Presets.Get("TerDiT-Tiny"), new TditDiffusion { Steps = 500 });
        Assert.Equal((499, 500, 500), (process.MaxSteps(SamplerKind.DpmPlusPlus2M), process.MaxSteps(SamplerKind.Ddim), process.MaxSteps(SamplerKind.Ddpm)));
    }

    [Fact]
    public void SamplerNamesListEverySamplerOnce()
    {
        Assert.Equal(["ddim", "ddpm", "dpm++2m"], SamplerNames.All);
        Assert.Contains(SamplerNames.Default, SamplerNames.All);
        Assert.Equal(Enum.GetValues<SamplerKind>().Order(), SamplerNames.All.Select(n => SamplerNames.Find(n)!.Value).Order());
        Assert.Null(SamplerNames.Find("DDIM"));                    // names are exact
        Assert.InRange(SamplerNames.DefaultSteps, 1, DiffusionProcess.For(Presets.Get("TerDiT-S")).MaxSteps(SamplerKind.DpmPlusPlus2M));
    }

    /// <summary>x_t, ε and v of 6 elements, x̂0 of some outside [−1, 1] (to exercise the clipping).</summary>
    static (float[] X, float[] Eps, float[] V) KnownInput() =>
        ([0.9f, -1.7f, 0.05f, 2.4f, -0.3f, 1.1f], [0.2f, -0.8f, 1.3f, 0.1f, -0.05f, 0.6f], [-1f, -0.4f, 0f, 0.3f, 0.9f, 1f]);

    static double X0(DiffusionSchedule s, int i, double x, double eps, bool clip)
    {
        double ab = s.AlphasCumprod[i], x0 = (x - Math.Sqrt(1 - ab) * eps) / Math.Sqrt(ab); // Ho et al. eq. (15)
        return clip ? Math.Clamp(x0, -1, 1) : x0;
    }

    /// <summary>
    /// Closed forms are evaluated here from ᾱ alone; the schedulers' own float64 arithmetic differs only by rounding
    /// (ε re-derived from x̂0, products of square roots) and stores float: 1e-6 relative (above 1) is 16 float steps.
    /// </summary>
    static void AssertNear(double expected, float actual) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-6 * Math.Max(1, Math.Abs(expected)), $"expected {expected}, got {actual}");

    [Theory]
    [InlineData(10, 0, true)]
    [InlineData(10, 3, true)]
    [InlineData(10, 3, false)]
    [InlineData(1, 0, true)]
    public void DdimStepIsItsClosedForm(int steps, int stepsTaken, bool clip)
    {
        var (x, eps, _) = KnownInput();
        var scheduler = Create(SamplerKind.Ddim, steps, clip);
        var sample = x.ToArray();
        var ignored = new float[x.Length];
        for (int k = 0; k < stepsTaken; k++) scheduler.Step(new ModelOutput(eps), scheduler.Timesteps[k], ignored); // advance
        var s = scheduler.StepSchedule;
        int i = steps - 1 - stepsTaken, t = scheduler.Timesteps[stepsTaken];
        Assert.Equal(s.TimestepMap[i], t);
        var predX0 = new float[x.Length];
        scheduler.Step(new ModelOutput(eps), t, sample, predX0);
        double abPrev = i == 0 ? 1 : Dit.AlphasCumprod[s.TimestepMap[i - 1]];
        for (int k = 0; k < x.Length; k++)
        {
            double x0 = X0(Dit, t, x[k], eps[k], clip);
            double epsHat = (x[k] - Math.Sqrt(Dit.AlphasCumprod[t]) * x0) / Math.Sqrt(1 - Dit.AlphasCumprod[t]);
            AssertNear(Math.Sqrt(abPrev) * x0 + Math.Sqrt(1 - abPrev) * epsHat, sample[k]); // DDIM eq. (12), σ = 0
            AssertNear(x0, predX0[k]);
        }
    }

    [Theory]
    [InlineData(VarianceKind.LearnedRange)]
    [InlineData(VarianceKind.FixedSmall)]
    [InlineData(VarianceKind.FixedLarge)]
    public void DdpmStepIsThePosteriorMeanPlusScaledNoise(VarianceKind variance)
    {
        var (x, eps, v) = KnownInput();
        var scheduler = Create(SamplerKind.Ddpm, 10, clip: true, variance);
        float[] z = [0.5f, -1.2f, 0.3f, 2f, -0.7f, 0.1f], sample = x.ToArray();
        int t = scheduler.Timesteps[0], tPrev = scheduler.Timesteps[1];          // 999 → 888
        scheduler.Step(new ModelOutput(eps, variance == VarianceKind.LearnedRange ? v : default), t, sample, noise: n => z.CopyTo(n));
        double ab = Dit.AlphasCumprod[t], abPrev = Dit.AlphasCumprod[tPrev], beta = 1 - ab / abPrev;
        double posteriorVar = beta * (1 - abPrev) / (1 - ab);
        for (int k = 0; k < x.Length; k++)
        {
            double x0 = X0(Dit, t, x[k], eps[k], clip: true);
            double mean = beta * Math.Sqrt(abPrev) / (1 - ab) * x0 + (1 - abPrev) * Math.Sqrt(1 - beta) / (1 - ab) * x[k]; // Ho et al. eq. (7)
            double frac = (v[k] + 1) / 2;
            double logVar = variance switch
            {
                VarianceKind.LearnedRange => frac * Math.Log(beta) + (1 - frac) * Math.Log(posteriorVar), // IDDPM eq. (15)
                VarianceKind.FixedSmall => Math.Log(posteriorVar),
                _ => Math.Log(beta),
            };
            AssertNear(mean + Math.Exp(0.5 * logVar) * z[k], sample[k]);
        }
    }

    [Fact]
    public void DdpmLastStepIsNoiseFreeAndNeedsNoNoise()
    {
        var (x, eps, v) = KnownInput();
        var scheduler = Create(SamplerKind.Ddpm, 1);
        var sample = x.ToArray();
        scheduler.Step(new ModelOutput(eps, v), 0, sample);                    // no noise source: none asked for
        for (int k = 0; k < x.Length; k++) AssertNear(X0(Dit, 0, x[k], eps[k], clip: true), sample[k]);
        var two = Create(SamplerKind.Ddpm, 2);
        Assert.Throws<InvalidOperationException>(() => two.Step(new ModelOutput(eps, v), 999, x.ToArray()));
    }

    /// <summary>λ = log(α/σ) of ᾱ.</summary>
    static double Lambda(double ab) => Math.Log(Math.Sqrt(ab) / Math.Sqrt(1 - ab));

    [Fact]
    public void DpmSolverStepsAreTheFirstOrderUpdateThenAlgorithm2()
    {
        var (x, eps, _) = KnownInput();
        float[] eps2 = eps.Select(e => -0.5f * e + 0.1f).ToArray();
        var scheduler = Create(SamplerKind.DpmPlusPlus2M, 10, clip: false);
        var sample = x.ToArray();
        var x0First = new float[x.Length];
        // Step 1, 999 → 899: first order, which is DDIM: x = α_t·x̂0 + σ_t·ε.
        scheduler.Step(new ModelOutput(eps), 999, sample, x0First);
        double ab999 = Dit.AlphasCumprod[999], ab899 = Dit.AlphasCumprod[899], ab799 = Dit.AlphasCumprod[799];
        for (int k = 0; k < x.Length; k++)
        {
            AssertNear(Math.Sqrt(ab899) * X0(Dit, 999, x[k], eps[k], false) + Math.Sqrt(1 - ab899) * eps[k], sample[k]);
        }
        // Step 2, 899 → 799: the 2M update with r = h_1/h_2 and D = (1 + 1/(2r))·x̂0_899 − 1/(2r)·x̂0_999.
        var before = sample.ToArray();
        scheduler.Step(new ModelOutput(eps2), 899, sample);
        double h1 = Lambda(ab899) - Lambda(ab999), h2 = Lambda(ab799) - Lambda(ab899), r = h1 / h2;
        for (int k = 0; k < x.Length; k++)
        {
            double x0 = X0(Dit, 899, before[k], eps2[k], false);
            double d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0First[k];
            double expected = Math.Sqrt((1 - ab799) / (1 - ab899)) * before[k] - Math.Sqrt(ab799) * (Math.Exp(-h2) - 1) * d;
            AssertNear(expected, sample[k]);
        }
    }

    [Fact]
    public void DpmSolverLastStepReturnsPredictedX0()
    {
        var (x, eps, _) = KnownInput();
        foreach (bool clip in new[] { true, false })
        {
            var scheduler = Create(SamplerKind.DpmPlusPlus2M, 1, clip);
            var sample = x.ToArray();
            scheduler.Step(new ModelOutput(eps), 999, sample);
            for (int k = 0; k < x.Length; k++) AssertNear(X0(Dit, 999, x[k], eps[k], clip), sample[k]);
        }
    }

    [Fact]
    public void FirstOrderDpmSolverCoefficientsAreDdim()
    {
        var s = Dit.Respace(10);
        for (int i = 1; i < 10; i++)
        {
            double ab = s.AlphasCumprod[i], abPrev = s.AlphasCumprodPrev[i];
            var (a, b, c) = DpmSolverMultistepScheduler.UpdateCoefficients(s, i, secondOrder: false);
            // DDIM: x' = √ᾱ'·x̂0 + √(1 − ᾱ')·(x − √ᾱ·x̂0)/√(1 − ᾱ) = a·x + b·x̂0.
            Assert.Equal(Math.Sqrt(1 - abPrev) / Math.Sqrt(1 - ab), a, 1e-12);
            Assert.Equal(Math.Sqrt(abPrev) - Math.Sqrt(1 - abPrev) * Math.Sqrt(ab) / Math.Sqrt(1 - ab), b, 1e-12);
            Assert.Equal(0.0, c);
        }
        Assert.Equal((0.0, 1.0, 0.0), DpmSolverMultistepScheduler.UpdateCoefficients(s, 0, secondOrder: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => DpmSolverMultistepScheduler.UpdateCoefficients(s, 9, secondOrder: true));
    }

    /// <summary>
    /// The exact ε of Gaussian data x0_k ~ N(m_k, 0.5²), m_k = 0.5·sin k, at original timestep t, in double: a smooth
    /// model whose probability-flow ODE has the closed-form solution of <see cref="ExactOdeSolution"/>.
    /// </summary>
    static double GaussianDataEpsilon(int t, double x, int k)
    {
        double a = Dit.AlphasCumprod[t], s2 = 0.25;
        return Math.Sqrt(1 - a) * (x - Math.Sqrt(a) * 0.5 * Math.Sin(k)) / (a * s2 + 1 - a);
    }

    /// <summary>x_T of the ODE comparisons: 1.3·sin(k + 1).</summary>
    static float[] OdeStart(int n) => Enumerable.Range(0, n).Select(k => (float)(1.3 * Math.Sin(k + 1))).ToArray();

    /// <summary>The ODE's x_0 from x_T (at t = 999): x_t = √ᾱ_t·m + √(ᾱ_t·s² + 1 − ᾱ_t)·z with z fixed, and x_0 = m + s·z.</summary>
    static double ExactOdeSolution(double xT, int k)
    {
        double a = Dit.AlphasCumprod[999], m = 0.5 * Math.Sin(k);
        return m + 0.5 * (xT - Math.Sqrt(a) * m) / Math.Sqrt(a * 0.25 + 1 - a);
    }

    static float[] SolveGaussianDataOde(SamplerKind kind, int steps)
    {
        var scheduler = Create(kind, steps, clip: false);
        var x = OdeStart(8);
        var eps = new float[x.Length];
        foreach (int t in scheduler.Timesteps.ToArray())
        {
            for (int k = 0; k < x.Length; k++) eps[k] = (float)GaussianDataEpsilon(t, x[k], k);
            scheduler.Step(new ModelOutput(eps), t, x);
        }
        return x;
    }

    /// <summary>
    /// Full DPM-Solver++(2M) runs on the Gaussian-data model against diffusers' DPMSolverMultistepScheduler (defaults,
    /// "dpmsolver++", order 2, linear betas 1e-4..0.02) fed the same model: its final samples, printed to 7 decimals.
    /// diffusers keeps ᾱ and σ in float32 (relative error ~1e-7 each, amplified by the ≈ 1/√ᾱ_999 ≈ 157 of the first
    /// x̂0), so 2e-5 absolute; a wrong timestep table, order switch or coefficient moves the result by more than 1e-3.
    /// </summary>
    [Theory]
    [InlineData(1, new[] { 0.0017264f, 0.4226205f, 0.4549358f, 0.0689887f, -0.3803810f, -0.4800361f, -0.1383434f, 0.3305417f })]
    [InlineData(2, new[] { 0.0778265f, 0.5046455f, 0.4674952f, 0.0005321f, -0.4669202f, -0.5050883f, -0.0788807f, 0.4198495f })]
    [InlineData(3, new[] { 0.1708087f, 0.6048945f, 0.4828434f, -0.0831316f, -0.5726758f, -0.5357046f, -0.0062090f, 0.5289951f })]
    [InlineData(5, new[] { 0.2957800f, 0.7396340f, 0.5034719f, -0.1955799f, -0.7148163f, -0.5768541f, 0.0914653f, 0.6756918f })]
    [InlineData(10, new[] { 0.4413557f, 0.8965883f, 0.5275016f, -0.3265676f, -0.8803920f, -0.6247880f, 0.2052431f, 0.8465746f })]
    [InlineData(25, new[] { 0.5336410f, 0.9960869f, 0.5427346f, -0.4096052f, -0.9853558f, -0.6551750f, 0.2773706f, 0.9549032f })]
    public void DpmSolverMatchesDiffusers(int steps, float[] diffusers) =>
        TestData.AssertClose(diffusers, SolveGaussianDataOde(SamplerKind.DpmPlusPlus2M, steps), 0, 2e-5);

    [Fact]
    public void DpmSolverConvergesToTheOdeSolutionFasterThanDdim()
    {
        double Error(SamplerKind kind, int steps)
        {
            var x = SolveGaussianDataOde(kind, steps);
            var xT = OdeStart(x.Length);
            return Enumerable.Range(0, x.Length).Max(k => Math.Abs(x[k] - ExactOdeSolution(xT[k], k)));
        }
        // Both solve the same ODE; DDIM is its first-order solver (error ∝ 1/n: 7.2e-2 at 25 steps, 3.6e-2 at 50),
        // DPM-Solver++(2M) second order (1.6e-2 at 25, 3.0e-4 at 50, where float32 storage starts to dominate).
        double ddim25 = Error(SamplerKind.Ddim, 25), ddim50 = Error(SamplerKind.Ddim, 50);
        double dpm25 = Error(SamplerKind.DpmPlusPlus2M, 25), dpm50 = Error(SamplerKind.DpmPlusPlus2M, 50);
        Assert.InRange(ddim50 / ddim25, 0.4, 0.6);
        Assert.True(dpm25 < ddim50, $"DPM-Solver++ 25 steps: {dpm25:E3}, DDIM 50 steps: {ddim50:E3}");
        Assert.True(dpm50 < ddim50 / 20, $"DPM-Solver++ 50 steps: {dpm50:E3}, DDIM: {ddim50:E3}");
    }

    [Theory]
    [InlineData(SamplerKind.Ddpm)]
    [InlineData(SamplerKind.Ddim)]
    [InlineData(SamplerKind.DpmPlusPlus2M)]
    public void StepsMustFollowTheTimestepsAndSetTimestepsStartsOver(SamplerKind kind)
    {
        var (x, eps, v) = KnownInput();
        var scheduler = Create(kind, 4);
        var t = scheduler.Timesteps.ToArray();
        NoiseSource zero = n => n.Clear();
        Assert.Throws<InvalidOperationException>(() => scheduler.Step(new ModelOutput(eps, v), t[1], x.ToArray(), noise: zero));
        Assert.Throws<ArgumentException>(() => scheduler.Step(new ModelOutput(eps[..5], v), t[0], x.ToArray(), noise: zero));
        var first = x.ToArray();
        scheduler.Step(new ModelOutput(eps, v), t[0], first, noise: zero);
        scheduler.SetTimesteps(4);
        var again = x.ToArray();
        scheduler.Step(new ModelOutput(eps, v), t[0], again, noise: zero);
        Assert.Equal(first, again);
        foreach (int ti in t[1..]) scheduler.Step(new ModelOutput(eps, v), ti, again, noise: zero);
        Assert.Throws<InvalidOperationException>(() => scheduler.Step(new ModelOutput(eps, v), 0, again, noise: zero));
    }

    [Fact]
    public void TheProcessFollowsTheConfigAndTheFilesDiffusionRecord()
    {
        var config = new TerDiTConfig { HiddenSize = 32, Depth = 1, NumHeads = 2 };
        var dit = DiffusionProcess.For(config);
        Assert.Equal(VarianceKind.LearnedRange, dit.Variance);
        Assert.Equal(Dit.AlphasCumprod.ToArray(), dit.Schedule.AlphasCumprod.ToArray());
        Assert.Equal(VarianceKind.FixedLarge, DiffusionProcess.For(config with { LearnSigma = false }).Variance);

        var other = DiffusionProcess.For(config, new TditDiffusion { Steps = 500, BetaStart = 1e-4, BetaEnd = 0.02 });
        Assert.Equal(DiffusionSchedule.Linear(500).Betas.ToArray(), other.Schedule.Betas.ToArray());
        Assert.Equal(2e-4, other.Schedule.Betas[0], 1e-18);                  // DiT's linear schedule scales by 1000/T
        var ddim = other.CreateScheduler(SamplerKind.Ddim);
        ddim.SetTimesteps(5);
        Assert.Equal([499, 374, 250, 125, 0], ddim.Timesteps.ToArray());

        var e = Assert.Throws<ArgumentException>(() => DiffusionProcess.For(config, new TditDiffusion { Schedule = "cosine" }));
        Assert.Contains("'cosine' is not supported", e.Message);

        // Pixel models clip x̂0, latent models do not; every scheduler of the process follows it.
        Assert.True(dit.ClipSample);
        var latent = DiffusionProcess.For(config, latent: true);
        Assert.False(latent.ClipSample);
        Assert.All(Enum.GetValues<SamplerKind>(), kind => Assert.False(latent.CreateScheduler(kind).ClipSample));
        Assert.All(Enum.GetValues<SamplerKind>(), kind => Assert.True(dit.CreateScheduler(kind).ClipSample));
    }

    [Theory]
    [InlineData(SamplerKind.Ddim)]
    [InlineData(SamplerKind.Ddpm)]
    [InlineData(SamplerKind.DpmPlusPlus2M)]
    public void ALatentProcessSamplesWithoutClippingThroughTheSamplingLoop(SamplerKind kind)
    {
        // A model whose ε is −2·x_t: x̂0 = (√(1/ᾱ) + 2√(1/ᾱ − 1))·x_t, far outside [−1, 1] for x_t ~ N(0, 1), so clipping decides
        // every step. The pixel process's samples stay in [−1, 1]; the latent process's leave it (the loop does not clamp).
        Denoiser model = (x, t, y, o) => { for (int k = 0; k < x.Length; k++) o[k] = -2 * x[k]; };
        var config = new TerDiTConfig { HiddenSize = 32, Depth = 1, NumHeads = 2, LearnSigma = false };
        float[] Run(bool latent) => new DiffusionSampler(model, 1, 4, DiffusionProcess.For(config, latent: latent), 10)
            .Sample([0, 1], kind, steps: 3, guidance: 1.5, seed: 2);
        Assert.All(Run(latent: false), v => Assert.InRange(v, -1f, 1f));
        Assert.Contains(Run(latent: true), v => Math.Abs(v) > 1.5f);
    }
}
