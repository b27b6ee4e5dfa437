using TerDiT.Diffusion;
using TerDiT.Runtime.Diffusion;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class DiffusionTests
{
    static readonly DiffusionSchedule Dit = DiffusionSchedule.Linear();

    static double Value(Tensor t) => t.to(ScalarType.Float64).item<double>();

    [Fact]
    public void QSampleIsTheClosedFormPerSample()
    {
        var d = new GaussianDiffusion(Dit);
        var g = new Generator(1);
        var x0 = randn([4, 2, 3, 3], dtype: ScalarType.Float64, generator: g);
        var noise = randn([4, 2, 3, 3], dtype: ScalarType.Float64, generator: g);
        long[] ts = [0, 17, 500, 999];
        var xt = d.QSample(x0, tensor(ts), noise);
        for (int i = 0; i < 4; i++)
        {
            double ab = Dit.AlphasCumprod[(int)ts[i]];
            var expected = Math.Sqrt(ab) * x0[i] + Math.Sqrt(1 - ab) * noise[i];
            Assert.True(xt[i].allclose(expected, rtol: 0, atol: 1e-12), $"sample {i}");
        }
    }

    [Theory]
    [InlineData(50)]
    [InlineData(300)]
    [InlineData(999)]
    public void QSampleStatisticsMatchTheMarginal(int step)
    {
        const int n = 40000;
        var d = new GaussianDiffusion(Dit);
        var g = new Generator(7);
        var x0 = tensor(new[] { 0.7, -0.3 }).view(1, 1, 1, 2).expand(n, 1, 1, 2);
        var noise = randn([n, 1, 1, 2], dtype: ScalarType.Float64, generator: g);
        var xt = d.QSample(x0, full([n], step, dtype: ScalarType.Int64), noise);
        double ab = Dit.AlphasCumprod[step], sd = Math.Sqrt(1 - ab);
        for (int k = 0; k < 2; k++)
        {
            var col = xt.select(3, k).flatten();
            double target = Math.Sqrt(ab) * new[] { 0.7, -0.3 }[k];
            Assert.InRange(Value(col.mean()), target - 4 * sd / Math.Sqrt(n), target + 4 * sd / Math.Sqrt(n));
            Assert.InRange(Value(col.std()) / sd, 1 - 4 * Math.Sqrt(0.5 / n), 1 + 4 * Math.Sqrt(0.5 / n));
        }
    }

    [Fact]
    public void PosteriorMatchesTheDirectFormulas()
    {
        var d = new GaussianDiffusion(Dit);
        var g = new Generator(3);
        var x0 = randn([4, 1, 2, 2], dtype: ScalarType.Float64, generator: g);
        var xt = randn([4, 1, 2, 2], dtype: ScalarType.Float64, generator: g);
        long[] ts = [0, 1, 500, 999];
        var (mean, variance, logVar) = d.QPosteriorMeanVariance(x0, xt, tensor(ts));
        Assert.Equal([4L, 1, 2, 2], mean.shape);
        Assert.Equal([4L, 1, 1, 1], variance.shape);
        for (int i = 0; i < 4; i++)
        {
            int t = (int)ts[i];
            // ᾱ recomputed from the betas here, not taken from the schedule.
            double ab = 1, abPrev = 1;
            for (int s = 0; s <= t; s++) { abPrev = ab; ab *= 1 - Dit.Betas[s]; }
            double beta = Dit.Betas[t];
            var expectedMean = beta * Math.Sqrt(abPrev) / (1 - ab) * x0[i] + (1 - abPrev) * Math.Sqrt(1 - beta) / (1 - ab) * xt[i];
            Assert.True(mean[i].allclose(expectedMean, rtol: 1e-9, atol: 1e-9), $"mean at t={t}");
            double var = beta * (1 - abPrev) / (1 - ab);
            Assert.Equal(var, Value(variance[i]), 1e-12);
            double var1 = Dit.Betas[1] * (1 - Dit.AlphasCumprod[0]) / (1 - Dit.AlphasCumprod[1]);
            Assert.Equal(Math.Log(t == 0 ? var1 : var), Value(logVar[i]), 1e-9);
        }
    }

    [Theory]
    [InlineData(-1.0)]
    [InlineData(1.0)]
    [InlineData(0.2)]
    public void LearnedRangeInterpolatesBetweenPosteriorAndBetaLogVariance(double v)
    {
        var d = new GaussianDiffusion(Dit, VarianceKind.LearnedRange);
        var x0 = full([3, 2, 2, 2], 0.25, dtype: ScalarType.Float64);
        long[] ts = [0, 10, 900];
        var x = randn([3, 2, 2, 2], dtype: ScalarType.Float64, generator: new Generator(5));
        var p = d.PMeanVariance(DiffusionTestModels.Oracle(x0, learnedSigma: true, v), x, tensor(ts), zeros(3, dtype: ScalarType.Int64));
        Assert.Equal([3L, 2, 2, 2], p.LogVariance.shape);
        for (int i = 0; i < 3; i++)
        {
            int t = (int)ts[i];
            double frac = (v + 1) / 2;
            double expected = frac * Math.Log(Dit.Betas[t]) + (1 - frac) * Dit.PosteriorLogVarianceClipped[t];
            Assert.True(p.LogVariance[i].allclose(full([2, 2, 2], expected, dtype: ScalarType.Float64), rtol: 0, atol: 1e-12), $"t={t}");
            Assert.True(p.Variance[i].allclose(p.LogVariance[i].exp()));
        }
        if (v == -1.0) Assert.Equal(Math.Log(Dit.PosteriorVariance[10]), Value(p.LogVariance[1, 0, 0, 0]), 1e-12);
        if (v == 1.0) Assert.Equal(Math.Log(Dit.Betas[900]), Value(p.LogVariance[2, 0, 0, 0]), 1e-12);
    }

    [Theory]
    [InlineData(VarianceKind.FixedSmall)]
    [InlineData(VarianceKind.FixedLarge)]
    public void FixedVariancesUseTheirTables(VarianceKind kind)
    {
        var d = new GaussianDiffusion(Dit, kind);
        var x0 = full([2, 1, 2, 2], 0.25, dtype: ScalarType.Float64);
        var x = randn([2, 1, 2, 2], dtype: ScalarType.Float64, generator: new Generator(5));
        var p = d.PMeanVariance(DiffusionTestModels.Oracle(x0, learnedSigma: false), x, tensor(new long[] { 0, 400 }), zeros(2, dtype: ScalarType.Int64));
        double var0 = kind == VarianceKind.FixedSmall ? 0.0 : Dit.PosteriorVariance[1];
        double var400 = kind == VarianceKind.FixedSmall ? Dit.PosteriorVariance[400] : Dit.Betas[400];
        Assert.Equal(var0, Value(p.Variance[0]), 1e-15);
        Assert.Equal(var400, Value(p.Variance[1]), 1e-15);
        Assert.Equal(Math.Log(Dit.PosteriorVariance[1]), Value(p.LogVariance[0]), 1e-12); // both clip step 0 to β̃_1
        Assert.Equal(Math.Log(var400), Value(p.LogVariance[1]), 1e-12);
    }

    [Fact]
    public void PredictedX0IsExactForTheOracleAndClippedOnRequest()
    {
        var d = new GaussianDiffusion(Dit);
        var g = new Generator(11);
        var x0 = 1.5 * randn([2, 1, 4, 4], dtype: ScalarType.Float64, generator: g); // partly outside [−1, 1]
        var t = tensor(new long[] { 3, 700 });
        var xt = d.QSample(x0, t, randn([2, 1, 4, 4], dtype: ScalarType.Float64, generator: g));
        var y = zeros(2, dtype: ScalarType.Int64);
        var oracle = DiffusionTestModels.Oracle(x0, learnedSigma: true);
        var raw = d.PMeanVariance(oracle, xt, t, y, clipDenoised: false);
        Assert.True(raw.PredX0.allclose(x0, rtol: 0, atol: 1e-9));
        var (trueMean, _, _) = d.QPosteriorMeanVariance(x0, xt, t);
        Assert.True(raw.Mean.allclose(trueMean, rtol: 0, atol: 1e-9));
        var clipped = d.PMeanVariance(oracle, xt, t, y, clipDenoised: true);
        Assert.True(clipped.PredX0.allclose(x0.clamp(-1, 1), rtol: 0, atol: 1e-9));
        Assert.True(Value(x0.abs().max()) > 1.2); // the clip was exercised
    }

    [Fact]
    public void BadArgumentsAreExplained()
    {
        var d = new GaussianDiffusion(Dit, VarianceKind.LearnedRange);
        var x = zeros(2, 3, 4, 4);
        DenoiserFn epsOnly = (xx, t, y) => zeros_like(xx);
        var e = Assert.Throws<ArgumentException>(() => d.PMeanVariance(epsOnly, x, tensor(new long[] { 1, 2 }), zeros(2, dtype: ScalarType.Int64)));
        Assert.Contains("expected (2, 6, 4, 4)", e.Message);
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => d.QSample(x, tensor(new long[] { 1, 1000 }), x));
        Assert.Contains("outside 0..999", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => d.QSample(x, tensor(new int[] { 1, 2 }), x));
        Assert.Contains("int64", e3.Message);
        var e4 = Assert.Throws<ArgumentException>(() => d.SampleLoop(epsOnly, x, zeros(3, dtype: ScalarType.Int64), SamplerKind.Ddim, new Generator(1)));
        Assert.Contains("labels must be (2)", e4.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ClassifierFreeGuidance.Wrap(epsOnly, double.NaN, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => GaussianDiffusion.Sample(epsOnly, DiffusionTestModels.Dit, [1, 1, 2, 2], zeros(1, dtype: ScalarType.Int64), SamplerKind.Ddim, 0, 1.0, 10, new Generator(1), CPU));
    }

    [Fact]
    public void TrainingTimestepsAreUniformAndSeeded()
    {
        var d = new GaussianDiffusion(Dit);
        var a = d.SampleTimesteps(20000, new Generator(42), CPU);
        var b = d.SampleTimesteps(20000, new Generator(42), CPU);
        Assert.True(a.eq(b).all().item<bool>());
        Assert.Equal(ScalarType.Int64, a.dtype);
        Assert.Equal(0, a.min().item<long>());
        Assert.Equal(999, a.max().item<long>());
        Assert.InRange(Value(a.to(ScalarType.Float64).mean()), 499.5 - 4 * 288.7 / Math.Sqrt(20000), 499.5 + 4 * 288.7 / Math.Sqrt(20000));
    }
}
