using TerDiT.Runtime.Ops;
using Xunit;

namespace TerDiT.Runtime.Tests;

/// <summary>Deterministic random test data and error measures shared by the runtime tests.</summary>
static class TestData
{
    public static float[] Normal(int n, int seed, float std = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++)
            a[i] = std * (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return a;
    }

    /// <summary>‖a − b‖ / ‖b‖.</summary>
    public static double RelativeError(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(b.Length, a.Length);
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            den += (double)b[i] * b[i];
        }
        return Math.Sqrt(num / Math.Max(den, 1e-30));
    }

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relTol, double absTol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs((double)expected[i] - actual[i]);
            if (!(diff <= absTol + relTol * Math.Abs(expected[i])))
                Assert.Fail($"element {i}: expected {expected[i]}, got {actual[i]} (|diff| {diff:E3})");
        }
    }
}

public class OpsTests
{
    static readonly ParallelOptions TwoThreads = new() { MaxDegreeOfParallelism = 2 };

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(5, 3, 7)]
    [InlineData(6, 16, 16)]
    [InlineData(7, 33, 17)]
    [InlineData(13, 64, 31)]
    [InlineData(50, 70, 150)]
    [InlineData(97, 128, 257)]
    public void GemmMatchesReferenceOnEveryTail(int m, int k, int n)
    {
        float[] a = TestData.Normal(m * k, 1), b = TestData.Normal(k * n, 2), expected = new float[m * n];
        ReferenceOps.MatMul(a, b, expected, m, k, n);

        var packed = new float[FloatGemm.PackedLength(k, n)];
        FloatGemm.PackRowMajor(b, k, n, n, packed);
        var c = new float[m * n];
        FloatGemm.Multiply(a, k, m, k, packed, n, c, n);
        TestData.AssertClose(expected, c, 1e-5, 1e-5 * Math.Sqrt(k));

        // B given transposed (a linear layer's (out, in) weight) and the parallel split agree bit for bit.
        var bt = new float[n * k];
        for (int r = 0; r < k; r++) for (int j = 0; j < n; j++) bt[j * k + r] = b[r * n + j];
        var packedT = new float[packed.Length];
        FloatGemm.PackTransposed(bt, n, k, k, packedT);
        Assert.Equal(packed, packedT);
        var cp = new float[m * n];
        FloatGemm.MultiplyParallel(a, k, m, k, packedT, n, cp, n, TwoThreads);
        Assert.Equal(c, cp);
    }

    [Fact]
    public void GemmHonoursStrides()
    {
        int m = 9, k = 5, n = 18, lda = 8, ldc = 21;
        float[] a = TestData.Normal(m * lda, 3), b = TestData.Normal(k * n, 4);
        var dense = new float[m * k];
        for (int i = 0; i < m; i++) for (int r = 0; r < k; r++) dense[i * k + r] = a[i * lda + r];
        var expected = new float[m * n];
        ReferenceOps.MatMul(dense, b, expected, m, k, n);
        var packed = new float[FloatGemm.PackedLength(k, n)];
        FloatGemm.PackRowMajor(b, k, n, n, packed);
        var c = Enumerable.Repeat(42f, m * ldc).ToArray();
        FloatGemm.Multiply(a, lda, m, k, packed, n, c, ldc);
        for (int i = 0; i < m; i++)
        {
            TestData.AssertClose(expected.AsSpan(i * n, n), c.AsSpan(i * ldc, n), 1e-5, 1e-5);
            Assert.All(c.AsSpan(i * ldc + n, ldc - n).ToArray(), v => Assert.Equal(42f, v)); // padding untouched
        }
    }

    [Fact]
    public void GemmRejectsShortBuffers()
    {
        var e = Assert.Throws<ArgumentException>(() => FloatGemm.Multiply(new float[5], 3, 2, 3, new float[16 * 3], 4, new float[8], 4));
        Assert.Contains("A holds 5", e.Message);
    }

    public static TheoryData<int> Lengths => new() { 1, 2, 7, 8, 15, 16, 17, 31, 33, 64, 100, 257, 1000 };

    [Theory, MemberData(nameof(Lengths))]
    public void NormsMatchReference(int dim)
    {
        int rows = 3;
        float[] x = TestData.Normal(rows * dim, dim), w = TestData.Normal(dim, 7), bias = TestData.Normal(dim, 8);
        var expected = new float[x.Length];
        var actual = new float[x.Length];
        ReferenceOps.RmsNorm(x, w, expected, dim, 1e-5f);
        Norms.RmsNorm(x, w, actual, dim, 1e-5f);
        TestData.AssertClose(expected, actual, 1e-5, 1e-6);

        ReferenceOps.LayerNorm(x, w, bias, expected, dim, 1e-5f);
        Norms.LayerNorm(x, w, bias, actual, dim, 1e-5f);
        TestData.AssertClose(expected, actual, 1e-4, 1e-5);

        ReferenceOps.LayerNorm(x, [], [], expected, dim, 1e-6f);
        x.CopyTo(actual, 0);
        Norms.LayerNorm(actual, [], [], actual, dim, 1e-6f); // in place
        TestData.AssertClose(expected, actual, 1e-4, 1e-5);
    }

    [Theory, MemberData(nameof(Lengths))]
    public void ElementwiseOpsMatchReference(int dim)
    {
        int rows = 4;
        float[] x = TestData.Normal(rows * dim, dim, 3f), b = TestData.Normal(rows * dim, dim + 1),
            shift = TestData.Normal(dim, 5), scale = TestData.Normal(dim, 6);
        var expected = new float[x.Length];
        var actual = (float[])x.Clone();

        ReferenceOps.Silu(x, expected);
        Elementwise.Silu(actual, actual);
        TestData.AssertClose(expected, actual, 1e-5, 1e-6);

        ReferenceOps.SwiGluGate(x, b, expected);
        Elementwise.SwiGluGate(x, b, actual);
        TestData.AssertClose(expected, actual, 1e-5, 1e-6);

        ReferenceOps.Modulate(x, shift, scale, expected, dim);
        Elementwise.Modulate(x, shift, scale, actual, dim);
        TestData.AssertClose(expected, actual, 1e-5, 1e-6);

        x.CopyTo(expected, 0);
        x.CopyTo(actual, 0);
        ReferenceOps.GatedResidual(expected, scale, b, dim);
        Elementwise.GatedResidual(actual, scale, b, dim);
        TestData.AssertClose(expected, actual, 1e-5, 1e-6);

        x.CopyTo(expected, 0);
        x.CopyTo(actual, 0);
        ReferenceOps.ScaledSoftmax(expected, dim, 0.37f);
        Elementwise.ScaledSoftmax(actual, dim, 0.37f);
        TestData.AssertClose(expected, actual, 1e-5, 1e-7);
        for (int r = 0; r < rows; r++) Assert.Equal(1.0, actual.AsSpan(r * dim, dim).ToArray().Sum(v => (double)v), 1e-5);
    }

    [Fact]
    public void SiluIsAccurateOverAWideRange()
    {
        var x = Enumerable.Range(0, 2001).Select(i => -100f + 0.1f * i).ToArray(); // −100 … 100
        float[] expected = new float[x.Length], actual = new float[x.Length];
        ReferenceOps.Silu(x, expected);
        Elementwise.Silu(x, actual);
        TestData.AssertClose(expected, actual, 1e-6, 1e-30);
        var ones = Enumerable.Repeat(1f, x.Length).ToArray();
        Elementwise.SwiGluGate(x, ones, actual);
        TestData.AssertClose(expected, actual, 1e-6, 1e-30);
    }

    [Fact]
    public void RmsNormModulate_GivesTheBitsOfRmsNormThenModulate()
    {
        foreach (int dim in new[] { 7, 16, 40, 384 })
        {
            int rows = 5;
            var x = TestData.Normal(rows * dim, dim, 2f);
            var w = TestData.Normal(dim, dim + 1, 0.3f);
            var shift = TestData.Normal(dim, dim + 2, 0.5f);
            var scale = TestData.Normal(dim, dim + 3, 0.5f);
            float[] expected = new float[x.Length], actual = new float[x.Length];
            Norms.RmsNorm(x, w, expected, dim, 1e-5f);
            Elementwise.Modulate(expected, shift, scale, expected, dim);
            Norms.RmsNormModulate(x, w, shift, scale, actual, dim, 1e-5f);
            Assert.Equal(expected, actual);
            var reference = new float[x.Length];
            ReferenceOps.RmsNorm(x, w, reference, dim, 1e-5f);
            ReferenceOps.Modulate(reference, shift, scale, reference, dim);
            TestData.AssertClose(reference, actual, 1e-5, 1e-6);
        }
        Assert.Throws<ArgumentException>(() => Norms.RmsNormModulate(new float[8], new float[4], new float[4], new float[3], new float[8], 4, 1e-5f));
    }

    [Fact]
    public void ScaledExpRows_IsTheSoftmaxBeforeDivision_WithItsRowSums()
    {
        foreach (int dim in new[] { 5, 16, 37, 256 })
        {
            int rows = 3;
            var x = TestData.Normal(rows * dim, dim, 3f);
            float[] expected = (float[])x.Clone(), actual = (float[])x.Clone(), sums = new float[rows];
            ReferenceOps.ScaledSoftmax(expected, dim, 0.37f);
            Elementwise.ScaledExpRows(actual, dim, 0.37f, sums);
            for (int r = 0; r < rows; r++)
            {
                var row = actual.AsSpan(r * dim, dim).ToArray();
                Assert.Equal(1f, row.Max(), 1e-6f);                                  // exp(0) at the row max
                Assert.Equal(row.Sum(v => (double)v), sums[r], 1e-5 * sums[r]);
                for (int i = 0; i < dim; i++)
                    Assert.True(Math.Abs(row[i] / sums[r] - expected[r * dim + i]) <= 1e-5 * expected[r * dim + i] + 1e-7, $"dim {dim} [{r},{i}]");
            }
        }
        Assert.Throws<ArgumentException>(() => Elementwise.ScaledExpRows(new float[8], 4, 1f, new float[1]));
    }

    [Fact]
    public void SoftmaxExponentialIsAccurateOverItsWholeRange()
    {
        // One row spanning scaled values 0 … −120: every float exponent, underflow to 0 below −87.
        int dim = 1203;
        var x = Enumerable.Range(0, dim).Select(i => -0.1f * i).ToArray();
        var actual = (float[])x.Clone();
        Elementwise.ScaledSoftmax(actual, dim, 1f);
        double sum = x.Sum(v => Math.Exp(v));
        for (int i = 0; i < dim; i++)
        {
            double expected = Math.Exp(x[i]) / sum;
            if (x[i] < -87f) Assert.True(actual[i] < 1e-37, $"element {i}: {actual[i]}");
            else Assert.True(Math.Abs(actual[i] - expected) <= 1e-6 * expected, $"element {i}: expected {expected}, got {actual[i]}");
        }
    }

    [Theory]
    [InlineData(1, 2, 1)]
    [InlineData(5, 6, 2)]
    [InlineData(9, 8, 3)]
    [InlineData(64, 32, 4)]
    [InlineData(17, 18, 2)]
    public void RopeMatchesReference(int tokens, int headDim, int heads)
    {
        int dim = heads * headDim;
        float[] x = TestData.Normal(tokens * dim, tokens), expected = (float[])x.Clone();
        ReferenceOps.Rope(expected, dim, headDim);
        new RopeTable(tokens, headDim).Apply(x, dim);
        TestData.AssertClose(expected, x, 1e-5, 1e-6);
    }

    [Fact]
    public void RopeRotatesAdjacentPairsByPositionTimesFrequency()
    {
        // One head of 4 dims at position 3: pair 0 turns by 3 rad, pair 1 by 3/100 rad.
        var x = new float[4 * 4];
        x.AsSpan(12, 4).Fill(1f);
        x[0] = 1f;
        new RopeTable(4, 4).Apply(x, 4);
        Assert.Equal(MathF.Cos(3) - MathF.Sin(3), x[12], 5);
        Assert.Equal(MathF.Sin(3) + MathF.Cos(3), x[13], 5);
        Assert.Equal(MathF.Cos(0.03f) - MathF.Sin(0.03f), x[14], 5);
        Assert.Equal(1f, x[0]); // position 0 is not rotated
    }

    [Theory]
    [InlineData(1, 1, 1, 2, 1)]
    [InlineData(2, 7, 2, 4, 1)]
    [InlineData(3, 16, 4, 8, 2)]
    [InlineData(2, 37, 3, 12, 2)]
    [InlineData(1, 64, 4, 32, 2)]
    public void AttentionMatchesReferenceAndIgnoresThreadCount(int images, int tokens, int heads, int headDim, int workers)
    {
        int n = images * tokens * heads * headDim;
        float[] q = TestData.Normal(n, 1, 2f), k = TestData.Normal(n, 2, 2f), v = TestData.Normal(n, 3);
        float[] expected = new float[n], actual = new float[n], single = new float[n];
        ReferenceOps.Attention(q, k, v, expected, images, tokens, heads, headDim);
        new Attention(tokens, heads, headDim, workers).Forward(q, k, v, actual, images);
        TestData.AssertClose(expected, actual, 1e-4, 1e-5);
        new Attention(tokens, heads, headDim, 1).Forward(q, k, v, single, images);
        Assert.Equal(single, actual);
    }

    [Theory]
    [InlineData(1, 1, 1, 2, 1)]
    [InlineData(2, 7, 2, 4, 1)]
    [InlineData(3, 16, 4, 8, 2)]
    [InlineData(2, 37, 3, 12, 2)]
    [InlineData(1, 64, 4, 32, 2)]
    [InlineData(1, 256, 2, 48, 2)]
    [InlineData(1, 256, 2, 64, 2)]
    public void Int16AttentionStaysWithinItsQuantizationErrorAndIgnoresThreadCount(int images, int tokens, int heads, int headDim, int workers)
    {
        int n = images * tokens * heads * headDim;
        float[] q = TestData.Normal(n, 1, 2f), k = TestData.Normal(n, 2, 2f), v = TestData.Normal(n, 3);
        float[] expected = new float[n], actual = new float[n], single = new float[n];
        ReferenceOps.Attention(q, k, v, expected, images, tokens, heads, headDim);
        new Attention(tokens, heads, headDim, workers, AttentionArithmetic.Int16).Forward(q, k, v, actual, images);
        // Expected error: the scores move by about hd·Δq·|k| (codes of ≥ 12 bits a token), the
        // numerators by half a code in pv ≈ √(2³¹/T) (sum of T of them ~ √T/(√12·pv) ≈ 1.6e-3 at
        // T = 256); measured 2.0e-3 at T = 256 and ≤ 5e-4 at T ≤ 64, checked at twice that.
        Assert.InRange(TestData.RelativeError(actual, expected), 0, tokens >= 256 ? 4e-3 : 1e-3);
        TestData.AssertClose(expected, actual, 0, 2e-2);
        new Attention(tokens, heads, headDim, 1, AttentionArithmetic.Int16).Forward(q, k, v, single, images);
        Assert.Equal(single, actual);
    }
}
