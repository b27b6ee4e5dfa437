using TerDiT.Runtime.Diffusion;
using TerDiT.Runtime.Model;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class SamplingTests
{
    [Fact]
    public void NoiseIsStandardNormalAndAddressable()
    {
        var a = new float[200_000];
        GaussianNoise.Fill(7, 3, a);
        double mean = a.Average(v => (double)v), var = a.Sum(v => (v - mean) * (v - mean)) / a.Length;
        double fourth = a.Sum(v => Math.Pow(v - mean, 4)) / a.Length / (var * var);
        Assert.InRange(mean, -0.01, 0.01);        // 4.5 standard errors
        Assert.InRange(var, 0.985, 1.015);
        Assert.InRange(fourth, 2.9, 3.1);          // kurtosis of a normal
        Assert.InRange(a.Count(v => Math.Abs(v) > 1.96f) / (double)a.Length, 0.047, 0.053);

        var slice = new float[1001];
        GaussianNoise.Fill(7, 3, slice, first: 12_345); // odd start: inside a Box–Muller pair
        Assert.Equal(a.AsSpan(12_345, 1001).ToArray(), slice);

        var other = new float[1000];
        GaussianNoise.Fill(7, 4, other);
        Assert.True(TestData.RelativeError(other, a.AsSpan(0, 1000)) > 1);
        GaussianNoise.Fill(8, 3, other);
        Assert.True(TestData.RelativeError(other, a.AsSpan(0, 1000)) > 1);
    }

    /// <summary>DiT's diffusion for a model with or without the learned-range variance channels.</summary>
    internal static DiffusionProcess Dit(bool learnSigma) => new(DiffusionSchedule.Linear(), learnSigma ? VarianceKind.LearnedRange : VarianceKind.FixedLarge);

    /// <summary>An oracle that knows x0: ε = (x_t − √ᾱ_t·x0) / √(1 − ᾱ_t) at ORIGINAL timestep t.</summary>
    static Denoiser Oracle(float[] x0, int per, bool learnSigma, List<int>? seen = null)
    {
        var acp = DiffusionSchedule.Linear().AlphasCumprod.ToArray();
        return (x, t, y, output) =>
        {
            int outPer = learnSigma ? 2 * per : per;
            for (int j = 0; j < t.Length; j++)
            {
                seen?.Add(t[j]);
                for (int e = 0; e < per; e++)
                    output[j * outPer + e] = (float)((x[j * per + e] - Math.Sqrt(acp[t[j]]) * x0[j * per + e]) / Math.Sqrt(1 - acp[t[j]]));
                if (learnSigma) output.Slice(j * outPer + per, per).Fill(0.3f);
            }
        };
    }

    [Theory]
    [InlineData(SamplerKind.Ddim, 50)]
    [InlineData(SamplerKind.Ddim, 7)]
    [InlineData(SamplerKind.Ddpm, 25)]
    public void OracleEpsilonRecoversX0(SamplerKind kind, int steps)
    {
        int n = 2, c = 3, size = 4, per = c * size * size;
        var x0 = TestData.Normal(n * per, 1).Select(v => 0.95f * MathF.Tanh(v)).ToArray();
        var seen = new List<int>();
        var sampler = new DiffusionSampler(Oracle(x0, per, learnSigma: true, seen), c, size, Dit(learnSigma: true), nullClass: 9);
        var result = sampler.Sample([1, 2], kind, steps, guidance: 1, seed: 5);
        TestData.AssertClose(x0, result, 0, 2e-5);
        // The model saw the original timesteps of the respaced schedule, highest first, no CFG doubling.
        var expectedSteps = DiffusionSchedule.SpacedTimesteps(1000, steps).Reverse().SelectMany(t => new[] { t, t });
        Assert.Equal(expectedSteps, seen);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(25)]
    public void OracleEpsilonRecoversX0WithDpmSolver(int steps)
    {
        int n = 2, c = 3, size = 4, per = c * size * size;
        var x0 = TestData.Normal(n * per, 2).Select(v => 0.95f * MathF.Tanh(v)).ToArray();
        var seen = new List<int>();
        var sampler = new DiffusionSampler(Oracle(x0, per, learnSigma: true, seen), c, size, Dit(learnSigma: true), nullClass: 9);
        var result = sampler.Sample([1, 2], SamplerKind.DpmPlusPlus2M, steps, guidance: 1, seed: 5);
        // Every x̂0 is x0, so every step stays on x0's trajectory and the last returns x0: float rounding only.
        TestData.AssertClose(x0, result, 0, 2e-5);
        var scheduler = Dit(learnSigma: true).CreateScheduler(SamplerKind.DpmPlusPlus2M);
        scheduler.SetTimesteps(steps);
        Assert.Equal(scheduler.Timesteps.ToArray().SelectMany(t => new[] { t, t }), seen);
    }

    [Fact]
    public void GuidanceCombinesEpsilonAndTakesVarianceFromConditionalHalf()
    {
        int c = 1, size = 2, per = c * size * size;
        var labelsSeen = new List<int[]>();
        // ε_c = 0.2 + 0.1·label, ε_u = −0.3 (label 9 = null); variance values 0.5 (cond) / −0.5 (uncond).
        Denoiser model = (x, t, y, output) =>
        {
            labelsSeen.Add(y.ToArray());
            for (int j = 0; j < t.Length; j++)
            {
                output.Slice(j * 2 * per, per).Fill(y[j] == 9 ? -0.3f : 0.2f + 0.1f * y[j]);
                output.Slice(j * 2 * per + per, per).Fill(y[j] == 9 ? -0.5f : 0.5f);
            }
        };
        var sampler = new DiffusionSampler(model, c, size, Dit(learnSigma: true), nullClass: 9);
        // One DDIM step (t = 0, ᾱ_prev = 1) returns x̂0 = clip(√(1/ᾱ)·x_T − √(1/ᾱ − 1)·ε).
        var result = sampler.Sample([1, 3], SamplerKind.Ddim, steps: 1, guidance: 4, seed: 11, firstImage: 5);
        Assert.Equal([1, 3, 9, 9], labelsSeen.Single());
        var s = DiffusionSchedule.Linear();
        for (int j = 0; j < 2; j++)
        {
            var xT = new float[per];
            GaussianNoise.Fill(11, (ulong)(5 + j) << 20, xT);
            float eps = -0.3f + 4 * (0.2f + 0.1f * (j == 0 ? 1 : 3) - -0.3f);
            for (int e = 0; e < per; e++)
            {
                double expected = Math.Clamp(Math.Sqrt(1 / s.AlphasCumprod[0]) * xT[e] - Math.Sqrt(1 / s.AlphasCumprod[0] - 1) * eps, -1, 1);
                Assert.Equal(expected, result[j * per + e], 5);
            }
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DdpmStepAddsNoiseWithTheModelsVariance(bool learnSigma)
    {
        int c = 2, size = 2, per = c * size * size;
        var inputs = new List<float[]>();
        // ε = 0.1, variance values v = 0.3: the first of two steps gives x_1 = μ + exp(½·log Σ)·z, seen as the second call's input.
        Denoiser model = (x, t, y, output) =>
        {
            inputs.Add(x.ToArray());
            int outPer = learnSigma ? 2 * per : per;
            for (int j = 0; j < t.Length; j++)
            {
                output.Slice(j * outPer, per).Fill(0.1f);
                if (learnSigma) output.Slice(j * outPer + per, per).Fill(0.3f);
            }
        };
        new DiffusionSampler(model, c, size, Dit(learnSigma), nullClass: 5).Sample([2], SamplerKind.Ddpm, steps: 2, guidance: 1, seed: 3, firstImage: 1);
        var s = DiffusionSchedule.Linear().Respace(2);
        float[] xT = new float[per], z = new float[per];
        GaussianNoise.Fill(3, 1UL << 20, xT);
        GaussianNoise.Fill(3, (1UL << 20) + 2, z);
        double frac = (0.3 + 1) / 2;
        double logVar = learnSigma ? frac * s.LogBetas[1] + (1 - frac) * s.PosteriorLogVarianceClipped[1] : s.FixedLargeLogVariance[1];
        for (int e = 0; e < per; e++)
        {
            double x0 = Math.Clamp(s.SqrtRecipAlphasCumprod[1] * xT[e] - s.SqrtRecipm1AlphasCumprod[1] * 0.1, -1, 1);
            double expected = s.PosteriorMeanCoef1[1] * x0 + s.PosteriorMeanCoef2[1] * xT[e] + Math.Exp(0.5 * logVar) * z[e];
            Assert.Equal(expected, inputs[1][e], 5);
        }
    }

    [Fact]
    public void SamplingIsDeterministicAndIndependentOfThreadsAndBatchSplit()
    {
        var (weights, _) = ModelTestWeights.Random(ModelTests.Small, 21);
        var c = ModelTests.Small;
        float[] Run(int threads, int[] labels, long first, SamplerKind kind, ulong seed)
        {
            var model = new RuntimeModel(weights, new RuntimeOptions { Threads = threads });
            return new DiffusionSampler(model.Forward, c.InChannels, c.InputSize, DiffusionProcess.For(c), c.NullClass)
                .Sample(labels, kind, steps: 6, guidance: 2.5, seed, first);
        }
        foreach (var kind in new[] { SamplerKind.Ddpm, SamplerKind.Ddim, SamplerKind.DpmPlusPlus2M })
        {
            var one = Run(1, [0, 3, 4], 0, kind, 42);
            Assert.Equal(one, Run(2, [0, 3, 4], 0, kind, 42));
            Assert.All(one, v => Assert.InRange(v, -1f, 1f));
            var split = Run(2, [0], 0, kind, 42).Concat(Run(2, [3, 4], 1, kind, 42)).ToArray();
            Assert.Equal(one, split);
            Assert.True(TestData.RelativeError(Run(2, [0, 3, 4], 0, kind, 43), one) > 0.1);
        }
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        var sampler = new DiffusionSampler((x, t, y, o) => { }, 1, 2, Dit(learnSigma: false), 3);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Sample([0], SamplerKind.Ddim, 0, 1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Sample([0], SamplerKind.Ddim, 10, -1, 1));
        Assert.Throws<ArgumentException>(() => sampler.Sample([], SamplerKind.Ddim, 10, 1, 1));
    }
}
