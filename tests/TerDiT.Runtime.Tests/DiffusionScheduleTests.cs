using TerDiT.Runtime.Diffusion;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class DiffusionScheduleTests
{
    static readonly DiffusionSchedule Dit = DiffusionSchedule.Linear();

    /// <summary>ᾱ_t recomputed independently, as exp(Σ log(1 − β_s)).</summary>
    static double AlphaBar(DiffusionSchedule s, int t)
    {
        double logSum = 0;
        for (int i = 0; i <= t; i++) logSum += Math.Log(1 - s.Betas[i]);
        return Math.Exp(logSum);
    }

    [Fact]
    public void LinearBetasRunFrom1e4To002()
    {
        Assert.Equal(1000, Dit.NumTimesteps);
        Assert.Equal(1e-4, Dit.Betas[0], 1e-18);
        Assert.Equal(0.02, Dit.Betas[999], 1e-18);
        for (int i = 1; i < 1000; i++) Assert.Equal((0.02 - 1e-4) / 999, Dit.Betas[i] - Dit.Betas[i - 1], 1e-15);
        Assert.Equal(Enumerable.Range(0, 1000), Dit.TimestepMap.ToArray());
    }

    [Fact]
    public void AlphasCumprodDecreaseToTheKnownEndValue()
    {
        for (int i = 1; i < 1000; i++) Assert.True(Dit.AlphasCumprod[i] < Dit.AlphasCumprod[i - 1]);
        Assert.Equal(1 - 1e-4, Dit.AlphasCumprod[0], 1e-15);
        Assert.Equal(4.03583e-5, Dit.AlphasCumprod[999], 1e-9);
        foreach (int t in new[] { 0, 1, 250, 500, 999 })
        {
            Assert.Equal(AlphaBar(Dit, t), Dit.AlphasCumprod[t], AlphaBar(Dit, t) * 1e-12);
            Assert.Equal(t == 0 ? 1.0 : AlphaBar(Dit, t - 1), Dit.AlphasCumprodPrev[t], 1e-12);
        }
        Assert.Equal(0.0, Dit.AlphasCumprodNext[999]);
        Assert.Equal(Dit.AlphasCumprod[1], Dit.AlphasCumprodNext[0]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(500)]
    [InlineData(999)]
    public void PosteriorCoefficientsMatchTheirFormulas(int t)
    {
        double ab = AlphaBar(Dit, t), abPrev = AlphaBar(Dit, t - 1), beta = Dit.Betas[t];
        double var = beta * (1 - abPrev) / (1 - ab);
        Assert.Equal(var, Dit.PosteriorVariance[t], var * 1e-10);
        Assert.Equal(Math.Log(var), Dit.PosteriorLogVarianceClipped[t], 1e-10);
        Assert.Equal(beta * Math.Sqrt(abPrev) / (1 - ab), Dit.PosteriorMeanCoef1[t], 1e-10);
        Assert.Equal((1 - abPrev) * Math.Sqrt(1 - beta) / (1 - ab), Dit.PosteriorMeanCoef2[t], 1e-10);
        Assert.Equal(Math.Sqrt(ab), Dit.SqrtAlphasCumprod[t], 1e-12);
        Assert.Equal(Math.Sqrt(1 - ab), Dit.SqrtOneMinusAlphasCumprod[t], 1e-12);
        Assert.Equal(1 / Math.Sqrt(ab), Dit.SqrtRecipAlphasCumprod[t], 1e-8);
        Assert.Equal(Math.Sqrt(1 / ab - 1), Dit.SqrtRecipm1AlphasCumprod[t], 1e-8);
        Assert.Equal(Math.Log(beta), Dit.LogBetas[t], 1e-12);
        Assert.Equal(beta, Dit.FixedLargeVariance[t]);
        // E[x_{t-1} | x0] = √ᾱ_{t-1}·x0 must equal coef1·x0 + coef2·E[x_t | x0] = (coef1 + coef2·√ᾱ_t)·x0.
        Assert.Equal(Math.Sqrt(abPrev), Dit.PosteriorMeanCoef1[t] + Dit.PosteriorMeanCoef2[t] * Math.Sqrt(ab), 1e-10);
    }

    [Fact]
    public void StepZeroIsClippedToStepOne()
    {
        Assert.Equal(0.0, Dit.PosteriorVariance[0]);
        Assert.Equal(Math.Log(Dit.PosteriorVariance[1]), Dit.PosteriorLogVarianceClipped[0]);
        Assert.Equal(Dit.PosteriorVariance[1], Dit.FixedLargeVariance[0]);
        Assert.Equal(1.0, Dit.PosteriorMeanCoef1[0], 1e-12); // x_{-1} is x0 itself
        Assert.Equal(0.0, Dit.PosteriorMeanCoef2[0]);
    }

    [Fact]
    public void TenStepsAreMultiplesOf111()
    {
        Assert.Equal(Enumerable.Range(0, 10).Select(i => 111 * i), DiffusionSchedule.SpacedTimesteps(1000, 10));
    }

    // Stride (T−1)/(n−1) = q + r/(n−1) with n−1 odd, so i·stride is never a half-integer and step i = q·i + round(r·i/(n−1)).
    [Theory]
    [InlineData(250, 4, 3)]   // 999/249 = 4 + 3/249
    [InlineData(50, 20, 19)]  // 999/49 = 20 + 19/49
    [InlineData(100, 10, 9)]  // 999/99 = 10 + 9/99
    public void SpacingFollowsTheFractionalStride(int count, int q, int r)
    {
        var steps = DiffusionSchedule.SpacedTimesteps(1000, count);
        Assert.Equal(count, steps.Length);
        for (int i = 0; i < count; i++) Assert.Equal(q * i + (int)Math.Round(r * i / (double)(count - 1)), steps[i]);
        Assert.Equal(999, steps[^1]);
    }

    [Fact]
    public void SpacingPinnedTables()
    {
        Assert.Equal([0, 20, 41, 61, 82, 102, 122, 143], DiffusionSchedule.SpacedTimesteps(1000, 50)[..8]);
        Assert.Equal([0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44], DiffusionSchedule.SpacedTimesteps(1000, 250)[..12]);
        Assert.Equal([991, 995, 999], DiffusionSchedule.SpacedTimesteps(1000, 250)[^3..]);
        Assert.Equal([0], DiffusionSchedule.SpacedTimesteps(1000, 1));
        Assert.Equal(Enumerable.Range(0, 1000), DiffusionSchedule.SpacedTimesteps(1000, 1000));
    }

    [Fact]
    public void HalfwayPositionsRoundToEvenLikePython()
    {
        // stride 1.25: 0, 1.25, 2.5, 3.75, 5 → round(2.5) = 2 in Python (not 3).
        Assert.Equal([0, 1, 2, 4, 5], DiffusionSchedule.SpacedTimesteps(6, 5));
        // stride 2.5: 0, 2.5, 5, 7.5, 10 → 2 and 8.
        Assert.Equal([0, 2, 5, 8, 10], DiffusionSchedule.SpacedTimesteps(11, 5));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    [InlineData(1001)]
    public void ImpossibleSpacingIsRefused(int count)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => DiffusionSchedule.SpacedTimesteps(1000, count));
        Assert.Contains("cannot divide", e.Message);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(250)]
    public void RespacingKeepsTheCumulativeProductsAtKeptSteps(int count)
    {
        var spaced = Dit.Respace(count);
        Assert.Equal(count, spaced.NumTimesteps);
        Assert.Equal(DiffusionSchedule.SpacedTimesteps(1000, count), spaced.TimestepMap.ToArray());
        for (int j = 0; j < count; j++)
        {
            int k = spaced.TimestepMap[j];
            Assert.Equal(Dit.AlphasCumprod[k], spaced.AlphasCumprod[j], Dit.AlphasCumprod[k] * 1e-12);
            double prev = j == 0 ? 1.0 : Dit.AlphasCumprod[spaced.TimestepMap[j - 1]];
            Assert.Equal(1 - Dit.AlphasCumprod[k] / prev, spaced.Betas[j], 1e-15);
        }
        Assert.Equal(Dit.Betas[0], spaced.Betas[0], 1e-15); // 1 − (1 − β0) loses the low bits
        // Coarser steps must have larger betas than a single original step.
        Assert.True(spaced.Betas[count - 1] > Dit.Betas[999]);
    }

    [Fact]
    public void RespacingToAllStepsReproducesTheBetas()
    {
        var full = Dit.Respace(1000);
        for (int i = 0; i < 1000; i++) Assert.Equal(Dit.Betas[i], full.Betas[i], 1e-14);
    }

    [Fact]
    public void RespacingASpacedScheduleComposesTheMaps()
    {
        var twice = Dit.Respace(100).Respace(10);
        var spaced100 = DiffusionSchedule.SpacedTimesteps(1000, 100);
        Assert.Equal(DiffusionSchedule.SpacedTimesteps(100, 10).Select(i => spaced100[i]), twice.TimestepMap.ToArray());
        for (int j = 0; j < 10; j++)
            Assert.Equal(Dit.AlphasCumprod[twice.TimestepMap[j]], twice.AlphasCumprod[j], 1e-15);
    }

    [Fact]
    public void InvalidBetasAndMapsAreRefused()
    {
        Assert.Contains("outside (0, 1]", Assert.Throws<ArgumentException>(() => new DiffusionSchedule([0.1, 0.0])).Message);
        Assert.Contains("outside (0, 1]", Assert.Throws<ArgumentException>(() => new DiffusionSchedule([double.NaN])).Message);
        Assert.Contains("at least one", Assert.Throws<ArgumentException>(() => new DiffusionSchedule([])).Message);
        Assert.Contains("2 entries for 3", Assert.Throws<ArgumentException>(() => new DiffusionSchedule([0.1, 0.1, 0.1], [0, 1])).Message);
        Assert.Contains("strictly increasing", Assert.Throws<ArgumentException>(() => new DiffusionSchedule([0.1, 0.1], [3, 3])).Message);
    }
}
