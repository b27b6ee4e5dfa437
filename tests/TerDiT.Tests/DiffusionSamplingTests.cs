using TerDiT.Diffusion;
using TerDiT.Runtime.Diffusion;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class DiffusionSamplingTests(ITestOutputHelper output)
{
    static double Value(Tensor t) => t.to(ScalarType.Float64).item<double>();

    [Theory]
    [InlineData(ScalarType.Float64, 1e-9)]
    [InlineData(ScalarType.Float32, 1e-4)]
    public void DdimWithTheOracleRecoversX0AndPassesOriginalTimesteps(ScalarType dtype, double tol)
    {
        var d = new GaussianDiffusion(DiffusionSchedule.Linear().Respace(50));
        var g = new Generator(21);
        var x0 = (rand([3, 2, 4, 4], dtype: ScalarType.Float64, generator: g) * 1.8 - 0.9).to(dtype);
        var noise = randn([3, 2, 4, 4], generator: g).to(dtype);
        var seen = new List<long[]>();
        var x = d.SampleLoop(DiffusionTestModels.Oracle(x0, learnedSigma: true, v: 0.3, seen), noise, zeros(3, dtype: ScalarType.Int64), SamplerKind.Ddim, g);
        Assert.Equal(dtype, x.dtype);
        Assert.True(Value((x - x0).abs().max()) < tol, $"max error {Value((x - x0).abs().max())}");
        var expected = DiffusionSchedule.SpacedTimesteps(1000, 50).Reverse().ToArray();
        Assert.Equal(expected, seen.Select(s => (int)s[0]).ToArray());
        Assert.All(seen, s => Assert.True(s.All(v => v == s[0])));
    }

    [Fact]
    public void DdpmWithTheOracleEndsAtX0()
    {
        var d = new GaussianDiffusion(DiffusionSchedule.Linear().Respace(25));
        var g = new Generator(22);
        var x0 = rand([2, 1, 4, 4], generator: g) * 1.8f - 0.9f;
        var x = d.SampleLoop(DiffusionTestModels.Oracle(x0, learnedSigma: true, v: 0.0), randn([2, 1, 4, 4], generator: g), zeros(2, dtype: ScalarType.Int64), SamplerKind.Ddpm, g);
        Assert.True(Value((x - x0).abs().max()) < 1e-4);
    }

    [Theory]
    [InlineData(ScalarType.Float64, 1e-9)]
    [InlineData(ScalarType.Float32, 1e-4)]
    public void DpmSolverWithTheOracleRecoversX0AtItsTimesteps(ScalarType dtype, double tol)
    {
        var schedule = DiffusionTestModels.Dit.SamplingSchedule(SamplerKind.DpmPlusPlus2M, 10);
        var d = new GaussianDiffusion(schedule);
        var g = new Generator(23);
        var x0 = (rand([3, 2, 4, 4], dtype: ScalarType.Float64, generator: g) * 1.8 - 0.9).to(dtype);
        var seen = new List<long[]>();
        var x = d.SampleLoop(DiffusionTestModels.Oracle(x0, learnedSigma: true, v: 0.3, seen), randn([3, 2, 4, 4], generator: g).to(dtype),
            zeros(3, dtype: ScalarType.Int64), SamplerKind.DpmPlusPlus2M, g);
        // Every x̂0 is x0, so each step stays on x0's trajectory and the last returns x0: rounding only.
        Assert.True(Value((x - x0).abs().max()) < tol, $"max error {Value((x - x0).abs().max())}");
        Assert.Equal([999, 899, 799, 699, 599, 500, 400, 300, 200, 100], seen.Select(s => (int)s[0]).ToArray());
    }

    /// <summary>
    /// Reference: for N(m, s²) data and its exact noise predictor every step is affine in x_t plus Gaussian noise,
    /// x_{t−1} = A·x_t + B + σ·z, so the final mean and variance follow exactly from x_T ~ N(0, 1).
    /// </summary>
    static (double Mean, double Var) ReferenceMoments(DiffusionSchedule s, double m, double sd, SamplerKind kind, VarianceKind variance, double v, double eta)
    {
        double mean = 0, var = 1;
        for (int j = s.NumTimesteps - 1; j >= 0; j--)
        {
            double ab = s.AlphasCumprod[j], abPrev = s.AlphasCumprodPrev[j];
            double k = Math.Sqrt(1 - ab) / (ab * sd * sd + 1 - ab);               // ε̂ = k·(x − √ᾱ·m)
            double p = 1 / Math.Sqrt(ab) - Math.Sqrt(1 / ab - 1) * k;             // x̂0 = p·x + q
            double q = Math.Sqrt(1 / ab - 1) * k * Math.Sqrt(ab) * m;
            double a, b, sigma2;
            if (kind == SamplerKind.Ddpm)
            {
                double c1 = s.PosteriorMeanCoef1[j], c2 = s.PosteriorMeanCoef2[j];
                a = c1 * p + c2; b = c1 * q;
                double frac = (v + 1) / 2;
                double logVar = variance switch
                {
                    VarianceKind.LearnedRange => frac * Math.Log(s.Betas[j]) + (1 - frac) * s.PosteriorLogVarianceClipped[j],
                    VarianceKind.FixedSmall => s.PosteriorLogVarianceClipped[j],
                    _ => s.FixedLargeLogVariance[j],
                };
                sigma2 = j == 0 ? 0 : Math.Exp(logVar);
            }
            else
            {
                sigma2 = eta * eta * (1 - abPrev) / (1 - ab) * (1 - ab / abPrev);
                double ce = Math.Sqrt(1 - abPrev - sigma2);
                a = Math.Sqrt(abPrev) * p + ce * k; b = Math.Sqrt(abPrev) * q - ce * k * Math.Sqrt(ab) * m;
                if (j == 0) sigma2 = 0;
            }
            mean = a * mean + b;
            var = a * a * var + sigma2;
        }
        return (mean, var);
    }

    [Theory]
    [InlineData(SamplerKind.Ddpm, VarianceKind.FixedSmall, 0.0, 0.0)]
    [InlineData(SamplerKind.Ddpm, VarianceKind.FixedLarge, 0.0, 0.0)]
    [InlineData(SamplerKind.Ddpm, VarianceKind.LearnedRange, 0.5, 0.0)]
    [InlineData(SamplerKind.Ddim, VarianceKind.LearnedRange, 0.0, 0.0)]
    [InlineData(SamplerKind.Ddim, VarianceKind.LearnedRange, 0.0, 1.0)]
    public void SamplesOfGaussianDataHaveTheReferenceMoments(SamplerKind kind, VarianceKind variance, double v, double eta)
    {
        const double m = 0.3, sd = 0.5;
        const int n = 16384;
        var schedule = DiffusionSchedule.Linear().Respace(20);
        var d = new GaussianDiffusion(schedule, variance);
        var g = new Generator(23);
        var model = DiffusionTestModels.GaussianData(m, sd, variance == VarianceKind.LearnedRange, v);
        var x = d.SampleLoop(model, randn([n / 4, 1, 2, 2], dtype: ScalarType.Float64, generator: g), zeros(n / 4, dtype: ScalarType.Int64), kind, g, eta, clipDenoised: false);
        var (refMean, refVar) = ReferenceMoments(schedule, m, sd, kind, variance, v, eta);
        double mean = Value(x.mean()), var = Value(x.var());
        output.WriteLine($"{kind} {variance} v={v} eta={eta}: sample {mean:F4} / {var:F4}, reference {refMean:F4} / {refVar:F4}");
        Assert.InRange(mean, refMean - 4 * Math.Sqrt(refVar / n), refMean + 4 * Math.Sqrt(refVar / n));
        Assert.InRange(var / refVar, 1 - 4 * Math.Sqrt(2.0 / n), 1 + 4 * Math.Sqrt(2.0 / n));
        // The reference recursion itself converges to the data distribution with all 1000 steps.
        var (fullMean, fullVar) = ReferenceMoments(DiffusionSchedule.Linear(), m, sd, kind, variance, v, eta);
        output.WriteLine($"  reference over 1000 steps {fullMean:F5} / {fullVar:F5}");
        Assert.InRange(fullMean, m - 1e-3, m + 1e-3);
        Assert.InRange(fullVar, sd * sd * 0.98, sd * sd * 1.02);
    }

    [Fact]
    public void ConvenienceSampleIsSeededBoundedAndReportsProgress()
    {
        var x0 = full([2, 1, 4, 4], 0.4f);
        x0[1] = full([1, 4, 4], 1.3f); // outside the data range: the result must still lie in [−1, 1]
        var calls = new List<(int, int)>();
        var oracle = DiffusionTestModels.Oracle(x0, learnedSigma: true);
        var a = GaussianDiffusion.Sample(oracle, DiffusionTestModels.Dit, [2, 1, 4, 4], tensor(new long[] { 3, 5 }), SamplerKind.Ddim, 10, 1.0, 10, new Generator(9), CPU, (i, n) => calls.Add((i, n)));
        Assert.Equal([2L, 1, 4, 4], a.shape);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (i, 10)), calls);
        Assert.True(Value((a[0] - 0.4).abs().max()) < 1e-4);
        Assert.True(Value((a[1] - 1.0).abs().max()) < 1e-6);
        DenoiserFn noisy = (x, t, y) => cat([0.5 * x, zeros_like(x)], 1);
        var b1 = GaussianDiffusion.Sample(noisy, DiffusionTestModels.Dit, [2, 1, 4, 4], tensor(new long[] { 3, 5 }), SamplerKind.Ddpm, 10, 4.0, 10, new Generator(9), CPU);
        var b2 = GaussianDiffusion.Sample(noisy, DiffusionTestModels.Dit, [2, 1, 4, 4], tensor(new long[] { 3, 5 }), SamplerKind.Ddpm, 10, 4.0, 10, new Generator(9), CPU);
        var b3 = GaussianDiffusion.Sample(noisy, DiffusionTestModels.Dit, [2, 1, 4, 4], tensor(new long[] { 3, 5 }), SamplerKind.Ddpm, 10, 4.0, 10, new Generator(10), CPU);
        Assert.True(b1.eq(b2).all().item<bool>());
        Assert.False(b1.eq(b3).all().item<bool>());
        Assert.True(Value(b1.abs().max()) <= 1.0);
    }
}
