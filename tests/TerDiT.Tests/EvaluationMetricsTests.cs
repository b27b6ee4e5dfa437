using TerDiT.Evaluation;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

/// <summary>FID, matrix square root and precision/recall on synthetic feature matrices (no CNN).</summary>
public class EvaluationMetricsTests
{
    /// <summary>(n, d) float64 standard normal features from a local generator, times per-dimension scales.</summary>
    static Tensor Gaussian(int n, int d, ulong seed, double scale = 1)
    {
        using var g = new Generator(seed);
        return randn([n, d], float64, generator: g) * scale;
    }

    static double Fid(Tensor a, Tensor b) => FrechetDistance.Compute(a, b);

    [Fact]
    public void FidOfASetWithItselfIsZero()
    {
        using var x = Gaussian(600, 24, 1) + 3;
        using var cov = FeatureStatistics.FromFeatures(x);
        double trace = cov.Covariance.trace().item<double>();
        Assert.True(Math.Abs(Fid(x, x)) < 1e-9 * trace, $"FID(x, x) = {Fid(x, x)}");
    }

    [Fact]
    public void FidIsSymmetric()
    {
        using var a = Gaussian(500, 16, 2);
        using var b = Gaussian(400, 16, 3, 1.5) + 0.3;
        double ab = Fid(a, b), ba = Fid(b, a);
        Assert.True(ab > 1, $"FID {ab} should be clearly positive");
        Assert.Equal(ab, ba, ab * 1e-9);
    }

    [Fact]
    public void ShiftingASetAddsTheSquaredShift()
    {
        using var x = Gaussian(300, 10, 4);
        using var g = new Generator(5);
        using var delta = randn(10, float64, generator: g);
        double expected = delta.square().sum().item<double>();
        Assert.Equal(expected, Fid(x, x + delta), expected * 1e-8);
    }

    [Fact]
    public void FidGrowsWithNoise()
    {
        using var x = Gaussian(800, 12, 6);
        using var noise = Gaussian(800, 12, 7);
        var fids = new[] { 0.1, 0.5, 1.0, 2.0 }.Select(s => { using var y = x + noise * s; return Fid(x, y); }).ToArray();
        Assert.True(fids[0] > 1e-4, $"noise must raise FID above 0, got {fids[0]}");
        for (int i = 1; i < fids.Length; i++) Assert.True(fids[i] > 1.5 * fids[i - 1], $"FIDs not increasing: {string.Join(", ", fids)}");
    }

    [Fact]
    public void DiagonalGaussiansMatchTheClosedForm()
    {
        double[] m1 = [0, 1, -2, 0.5], m2 = [1, 1, 0, -0.5], a = [1, 4, 0.25, 2], b = [9, 1, 0.25, 0.5];
        using var mu1 = tensor(m1); using var mu2 = tensor(m2);
        using var c1 = diag(tensor(a)); using var c2 = diag(tensor(b));
        double expected = m1.Zip(m2).Sum(p => (p.First - p.Second) * (p.First - p.Second))
                        + a.Zip(b).Sum(p => Math.Pow(Math.Sqrt(p.First) - Math.Sqrt(p.Second), 2));
        Assert.Equal(expected, FrechetDistance.Compute(mu1, c1, mu2, c2), 1e-12);
    }

    [Fact]
    public void NonCommutingTwoByTwoMatchesTheClosedForm()
    {
        // For 2×2 PSD M: tr √M = √(tr M + 2√det M), and Σ1^½ Σ2 Σ1^½ has trace tr(Σ1Σ2) and determinant det Σ1 · det Σ2.
        double[,] s1 = { { 2, 0.7 }, { 0.7, 1 } }, s2 = { { 0.5, -0.3 }, { -0.3, 3 } };
        double tr12 = 0, det1 = s1[0, 0] * s1[1, 1] - s1[0, 1] * s1[1, 0], det2 = s2[0, 0] * s2[1, 1] - s2[0, 1] * s2[1, 0];
        for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) tr12 += s1[i, j] * s2[j, i];
        double expected = 0.25 + 4 + (s1[0, 0] + s1[1, 1]) + (s2[0, 0] + s2[1, 1]) - 2 * Math.Sqrt(tr12 + 2 * Math.Sqrt(det1 * det2));
        using var mu1 = tensor(new double[] { 0, 0 }); using var mu2 = tensor(new double[] { 0.5, -2 });
        using var c1 = tensor(s1); using var c2 = tensor(s2);
        Assert.Equal(expected, FrechetDistance.Compute(mu1, c1, mu2, c2), 1e-12);
    }

    [Fact]
    public void FeatureMatricesWithExactMomentsMatchTheClosedForm()
    {
        // Features whose sample mean is μ and sample covariance is Q·diag(a)·Qᵀ exactly (Q a random rotation),
        // so FID = |μ1 − μ2|² + Σ(√a − √b)²: tests statistics and the eigen path on non-diagonal matrices.
        const int n = 400, d = 8;
        using var g = new Generator(11);
        using var q = linalg.qr(randn([d, d], float64, generator: g)).Q;
        var a = Enumerable.Range(0, d).Select(i => 0.2 + i * 0.7).ToArray();
        var b = Enumerable.Range(0, d).Select(i => 3.0 / (1 + i)).ToArray();
        using var mu1 = randn(d, float64, generator: g); using var mu2 = randn(d, float64, generator: g);
        Tensor WithMoments(double[] variances, Tensor mean, ulong seed)
        {
            using var scope = NewDisposeScope();
            var z = Gaussian(n, d, seed);
            z = z - z.mean([0]);
            var (values, vectors) = linalg.eigh(z.t().matmul(z) / (n - 1));
            var white = z.matmul((vectors / values.sqrt()).matmul(vectors.t())); // sample covariance I
            var x = white.matmul((q * tensor(variances).sqrt()).t()) + mean;    // sample covariance Q diag(v) Qᵀ
            return scope.MoveToOuter(x);
        }
        using var x1 = WithMoments(a, mu1, 12);
        using var x2 = WithMoments(b, mu2, 13);
        double expected = (mu1 - mu2).square().sum().item<double>() + a.Zip(b).Sum(p => Math.Pow(Math.Sqrt(p.First) - Math.Sqrt(p.Second), 2));
        Assert.Equal(expected, Fid(x1, x2), expected * 1e-9);
    }

    [Fact]
    public void SqrtOfAPositiveDefiniteMatrixSquaresBack()
    {
        using var bm = Gaussian(40, 40, 20);
        using var a = bm.matmul(bm.t()) + 0.1 * eye(40, dtype: float64);
        using var s = FrechetDistance.SqrtPsd(a);
        double scale = a.abs().max().item<double>();
        Assert.True((s.matmul(s) - a).abs().max().item<double>() < 1e-10 * scale, "S·S ≠ A");
        Assert.True((s - s.t()).abs().max().item<double>() == 0, "S not symmetric");
        Assert.True(linalg.eigvalsh(s).min().item<double>() > 0, "S not positive definite");
    }

    [Fact]
    public void SqrtOfARankDeficientMatrixSquaresBack()
    {
        using var bm = Gaussian(30, 6, 21); // rank 6 of 30
        using var a = bm.matmul(bm.t());
        using var s = FrechetDistance.SqrtPsd(a);
        Assert.True((s.matmul(s) - a).abs().max().item<double>() < 1e-8 * a.abs().max().item<double>(), "S·S ≠ A");
    }

    [Fact]
    public void SqrtOfAKnownMatrix()
    {
        // [[2, 1], [1, 2]] has eigenvalues 3 and 1: √ = ½·[[√3 + 1, √3 − 1], [√3 − 1, √3 + 1]].
        using var a = tensor(new double[,] { { 2, 1 }, { 1, 2 } });
        using var s = FrechetDistance.SqrtPsd(a);
        double r3 = Math.Sqrt(3);
        Assert.Equal((r3 + 1) / 2, s[0, 0].item<double>(), 1e-14);
        Assert.Equal((r3 - 1) / 2, s[0, 1].item<double>(), 1e-14);
        Assert.Equal((r3 + 1) / 2, s[1, 1].item<double>(), 1e-14);
    }

    [Fact]
    public void PrecisionAndRecallOfIdenticalSetsAreOne()
    {
        using var x = Gaussian(300, 16, 30);
        var (p, r) = ManifoldPrecisionRecall.Compute(x, x);
        Assert.Equal((1.0, 1.0), (p, r));
    }

    [Fact]
    public void FarAwayFakesHaveZeroPrecisionAndRecall()
    {
        using var real = Gaussian(300, 16, 31);
        using var fake = Gaussian(300, 16, 32) + 50;
        Assert.Equal((0.0, 0.0), ManifoldPrecisionRecall.Compute(real, fake));
    }

    [Fact]
    public void PrecisionDropsWhenFakesMoveAway()
    {
        using var real = Gaussian(400, 8, 33);
        var precisions = new[] { 0.0, 1.0, 2.0, 4.0 }.Select(shift =>
        {
            using var fake = Gaussian(400, 8, 34) + shift;
            return ManifoldPrecisionRecall.Compute(real, fake).Precision;
        }).ToArray();
        Assert.True(precisions[0] > 0.8, $"same-distribution precision {precisions[0]}");
        for (int i = 1; i < precisions.Length; i++) Assert.True(precisions[i] < precisions[i - 1], $"precisions {string.Join(", ", precisions)}");
        Assert.True(precisions[^1] < 0.05, $"precision at shift 4 is {precisions[^1]}");
    }

    [Fact]
    public void HandComputedOneDimensionalExample()
    {
        // k = 1. Real {0, 1, 2, 10}: radii 1, 1, 1, 8. Fake {0.5, 5, 20}: radii 4.5, 4.5, 15.
        // Precision: 0.5 (in ball of 0), 5 (|5 − 10| ≤ 8), 20 (|20 − 10| > 8) → 2/3.
        // Recall: 0, 1, 2 within 4.5 of 0.5; 10 within 15 of 20 → 1.
        using var real = tensor(new double[] { 0, 1, 2, 10 }).unsqueeze(1);
        using var fake = tensor(new double[] { 0.5, 5, 20 }).unsqueeze(1);
        foreach (int block in new[] { 1, 2, 1024 }) // blocking with tails gives the same answer
        {
            var (p, r) = ManifoldPrecisionRecall.Compute(real, fake, k: 1, blockSize: block);
            Assert.Equal(2.0 / 3, p, 1e-15);
            Assert.Equal(1.0, r);
        }
    }

    [Fact]
    public void BadShapesAreRefusedWithAMessage()
    {
        using var x = Gaussian(10, 4, 40);
        using var y = Gaussian(10, 5, 41);
        Assert.Contains("equal D", Assert.Throws<ArgumentException>(() => ManifoldPrecisionRecall.Compute(x, y)).Message);
        Assert.Contains("more than k", Assert.Throws<ArgumentException>(() => ManifoldPrecisionRecall.Compute(x, x, k: 10)).Message);
        Assert.Contains("feature dimensions differ", Assert.Throws<ArgumentException>(() => Fid(x, y)).Message);
        using var one = Gaussian(1, 4, 42);
        Assert.Contains("N ≥ 2", Assert.Throws<ArgumentException>(() => FeatureStatistics.FromFeatures(one)).Message);
    }

    [Fact]
    public void EvalResultRoundTripsThroughJson()
    {
        var r = new EvalResult(12.5, 0.75, 0.5, 0.875, 1000, 10000, 1000, 3);
        var json = r.ToJson();
        Assert.Contains("\"Fid\": 12.5", json);
        Assert.Equal(r, EvalResult.FromJson(json));
        Assert.Throws<FormatException>(() => EvalResult.FromJson("{ not json"));
    }
}
