using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using Xunit;

namespace TerDiT.Runtime.Tests.Cpu;

public class TernaryGemmTests
{
    static readonly int[] Ms = [1, 2, 3, 7, 16, 33];
    static readonly int[] Ks = [4, 8, 36, 100, 257, 1536];
    static readonly int[] Ns = [1, 5, 16, 17, 64];

    public static TheoryData<SimdPath, GemmMode> PathsAndModes()
    {
        var d = new TheoryData<SimdPath, GemmMode>();
        foreach (var p in Enum.GetValues<SimdPath>())
            foreach (var m in Enum.GetValues<GemmMode>()) d.Add(p, m);
        return d;
    }

    sealed record Case(int M, int K, int N, float[] X, sbyte[] Trits, PackedTernaryMatrix W, float[] Bias);

    static Case Make(int m, int k, int n, int seed, float alpha = 0.37f, bool outliers = false)
    {
        var rng = new Random(seed);
        var x = new float[m * k];
        for (int i = 0; i < x.Length; i++) x[i] = Gaussian(rng) * (outliers && rng.Next(64) == 0 ? 20 : 1);
        var trits = TernaryPackingTests.RandomTrits(rng, n * k);
        var bias = new float[n];
        for (int i = 0; i < n; i++) bias[i] = Gaussian(rng);
        return new Case(m, k, n, x, trits, PackedTernaryMatrix.FromTrits(trits, n, k, alpha), bias);
    }

    static float Gaussian(Random rng) => (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));

    /// <summary>alpha · Σ|x||t| per output: the scale float summation errors are relative to.</summary>
    static double AbsSum(Case c, int i, int o)
    {
        double s = 0;
        for (int k = 0; k < c.K; k++) s += Math.Abs(c.X[i * c.K + k] * c.Trits[o * c.K + k]);
        return Math.Abs(c.W.Alpha) * s;
    }

    static double Dense(Case c, int i, int o, bool bias)
    {
        double s = 0;
        for (int k = 0; k < c.K; k++) s += (double)c.X[i * c.K + k] * c.Trits[o * c.K + k];
        return c.W.Alpha * s + (bias ? c.Bias[o] : 0);
    }

    static float[] Run(Case c, GemmMode mode, SimdPath path, bool bias, int threads = 2)
    {
        var y = new float[c.M * c.N];
        TernaryGemm.Multiply(c.X, c.M, c.W, y, bias ? c.Bias : default, mode, new TernaryGemmOptions(threads, path));
        return y;
    }

    static float[] Reference(Case c, GemmMode mode, bool bias)
    {
        var y = new float[c.M * c.N];
        if (mode == GemmMode.Exact) TernaryGemmReference.Exact(c.X, c.M, c.W, y, bias ? c.Bias : default);
        else TernaryGemmReference.A8(c.X, c.M, c.W, y, bias ? c.Bias : default);
        return y;
    }

    [Fact]
    public void ExactReference_EqualsDenseProduct_Within1e5OfTheAbsoluteSum()
    {
        foreach (var (m, k, n) in new[] { (3, 100, 5), (7, 1536, 17), (2, 257, 64) })
        {
            var c = Make(m, k, n, seed: k + n);
            var y = Reference(c, GemmMode.Exact, bias: true);
            for (int i = 0; i < m; i++)
                for (int o = 0; o < n; o++)
                    Assert.True(Math.Abs(y[i * n + o] - Dense(c, i, o, true)) <= 1e-5 * AbsSum(c, i, o) + 1e-6,
                        $"({m},{k},{n}) at [{i},{o}]: {y[i * n + o]} vs {Dense(c, i, o, true)}");
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndModes))]
    public void EveryPath_MatchesTheScalarReference_AcrossShapesAndTails(SimdPath path, GemmMode mode)
    {
        if (!SimdPaths.IsSupported(path))
        {
            var c0 = Make(2, 8, 3, 1);
            Assert.Throws<NotSupportedException>(() => Run(c0, mode, path, true));
            return;
        }
        int seed = 0;
        foreach (int m in Ms)
            foreach (int k in Ks)
                foreach (int n in Ns)
                {
                    bool bias = seed % 2 == 0;
                    var c = Make(m, k, n, ++seed);
                    var y = Run(c, mode, path, bias);
                    var r = Reference(c, mode, bias);
                    for (int i = 0; i < m; i++)
                        for (int o = 0; o < n; o++)
                        {
                            float got = y[i * n + o], want = r[i * n + o];
                            if (mode == GemmMode.A8)
                                Assert.True(got == want, $"{path} A8 ({m},{k},{n}) [{i},{o}]: {got} != {want} (integer accumulation must be exact)");
                            else
                                Assert.True(Math.Abs(got - want) <= 1e-5 * AbsSum(c, i, o) + 1e-6,
                                    $"{path} exact ({m},{k},{n}) [{i},{o}]: {got} vs {want}");
                        }
                }
    }

    [Theory]
    [MemberData(nameof(PathsAndModes))]
    public void Result_DoesNotDependOnThreadCount(SimdPath path, GemmMode mode)
    {
        if (!SimdPaths.IsSupported(path)) return;  // covered by the shape test
        var c = Make(37, 300, 45, 9);
        var one = Run(c, mode, path, true, threads: 1);
        Assert.Equal(one, Run(c, mode, path, true, threads: 3));
        Assert.Equal(one, Run(c, mode, path, true, threads: 0));
    }

    [Fact]
    public void A8_StaysWithinItsQuantizationBound_OfExact()
    {
        // Rounding moves each activation by at most scale/2 = absmax/254, so
        // |y_a8 − y_exact| ≤ alpha · (absmax/254) · Σ_k |t_k| (+ float rounding of the exact sum).
        var c = Make(9, 1536, 40, 5, outliers: true);
        var a8 = Run(c, GemmMode.A8, SimdPaths.Best, false);
        double num = 0, den = 0;
        for (int i = 0; i < c.M; i++)
        {
            float absmax = 0;
            for (int k = 0; k < c.K; k++) absmax = Math.Max(absmax, Math.Abs(c.X[i * c.K + k]));
            for (int o = 0; o < c.N; o++)
            {
                int nnz = 0;
                for (int k = 0; k < c.K; k++) nnz += Math.Abs(c.Trits[o * c.K + k]);
                double exact = Dense(c, i, o, false), err = Math.Abs(a8[i * c.N + o] - exact);
                Assert.True(err <= c.W.Alpha * absmax / 254 * nnz + 1e-5 * AbsSum(c, i, o), $"[{i},{o}] error {err}");
                num += err * err;
                den += exact * exact;
            }
        }
        // Typical error is far below the bound: uniform rounding noise of scale/√12 per term, a
        // relative error of about absmax/(127·√12·σ) ≈ 3% here (absmax ≈ 20σ from the outliers).
        Assert.InRange(Math.Sqrt(num / den), 1e-4, 0.06);
    }

    [Fact]
    public void ZeroTokensIsANoOp_AndZeroRowsGiveBias()
    {
        var c = Make(3, 40, 6, 2);
        TernaryGemm.Multiply([], 0, c.W, [], default, GemmMode.Exact);
        Array.Clear(c.X);
        foreach (var mode in Enum.GetValues<GemmMode>())
            Assert.Equal(Enumerable.Range(0, 3).SelectMany(_ => c.Bias), Run(c, mode, SimdPaths.Best, true));
    }

    [Fact]
    public void InvalidInputs_ThrowClearExceptions()
    {
        var c = Make(2, 10, 3, 4);
        var y = new float[6];
        var e = Assert.Throws<ArgumentException>(() => TernaryGemm.Multiply(new float[19], 2, c.W, y, default, GemmMode.Exact));
        Assert.Contains("x must be (2, 10)", e.Message);
        e = Assert.Throws<ArgumentException>(() => TernaryGemm.Multiply(c.X, 2, c.W, new float[5], default, GemmMode.Exact));
        Assert.Contains("y must be (2, 3)", e.Message);
        e = Assert.Throws<ArgumentException>(() => TernaryGemm.Multiply(c.X, 2, c.W, y, new float[2], GemmMode.A8));
        Assert.Contains("bias", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TernaryGemm.Multiply(c.X, -1, c.W, y, default, GemmMode.Exact));
        Assert.Throws<ArgumentOutOfRangeException>(() => TernaryGemm.Multiply(c.X, 2, c.W, y, default, (GemmMode)7));
        Assert.Throws<ArgumentOutOfRangeException>(() => TernaryGemm.Multiply(c.X, 2, c.W, y, default, GemmMode.Exact, new TernaryGemmOptions(-1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => TernaryGemm.Multiply(c.X, 2, c.W, y, default, GemmMode.Exact, new TernaryGemmOptions(1, (SimdPath)9)));
        Assert.Throws<ArgumentException>(() => TernaryGemmReference.A8(c.X, 2, c.W, new float[5]));
    }

    [Theory]
    [MemberData(nameof(PathsAndModes))]
    public void Stack_GivesEveryPartExactlyItsSingleMatrixResult(SimdPath path, GemmMode mode)
    {
        if (!SimdPaths.IsSupported(path)) return;  // covered by the shape test
        var options = new TernaryGemmOptions(2, path);
        foreach (var (m, k) in new[] { (1, 100), (17, 257), (40, 384) })
        {
            var parts = new[] { 5, 48, 33 }.Select((n, i) => Make(m, k, n, seed: 100 * m + k + i, alpha: 0.2f + 0.3f * i)).ToArray();
            var x = parts[0].X;
            if (m > 1) Array.Clear(x, k, k); // a zero row: A8 blocks holding one take the element-wise path
            var stack = new StackedTernaryMatrix(parts.Select(p => p.W).ToArray());
            Assert.Equal(86, stack.Rows);
            var y = new float[m * stack.Rows];
            TernaryGemm.Multiply(x, m, stack, y, parts.SelectMany(p => p.Bias).ToArray(), mode, options);
            for (int i = 0; i < parts.Length; i++)
            {
                var want = new float[m * parts[i].N];
                TernaryGemm.Multiply(x, m, parts[i].W, want, parts[i].Bias, mode, options);
                Assert.Equal(want, y.AsSpan(m * stack.RowOffset(i), want.Length).ToArray());
            }
        }
    }

    [Fact]
    public void Stack_RejectsMismatchedShapes()
    {
        var a = Make(2, 100, 3, 1).W;
        var e = Assert.Throws<ArgumentException>(() => new StackedTernaryMatrix(a, Make(2, 128, 3, 2).W));
        Assert.Contains("share K", e.Message);
        Assert.Throws<ArgumentException>(() => new StackedTernaryMatrix());
        var stack = new StackedTernaryMatrix(a, a);
        e = Assert.Throws<ArgumentException>(() => TernaryGemm.Multiply(new float[200], 2, stack, new float[6], default, GemmMode.Exact));
        Assert.Contains("y must be (2, 6)", e.Message);
    }

    [Theory]
    [InlineData(GemmMode.Exact)]
    [InlineData(GemmMode.A8)]
    public void ATokensResult_DoesNotDependOnHowManyTokensShareTheCall(GemmMode mode)
    {
        // Few-token calls take other kernels (narrow tables, weight decoding); a token's bits must
        // still equal those it gets inside a large batch (the sampler relies on it).
        var c = Make(40, 1536, 70, 11);
        var all = Run(c, mode, SimdPaths.Best, true);
        foreach (int m in new[] { 1, 2, 3, 4, 5, 8, 9, 17 })
        {
            var y = new float[m * c.N];
            TernaryGemm.Multiply(c.X.AsSpan(0, m * c.K), m, c.W, y, c.Bias, mode, new TernaryGemmOptions(2));
            Assert.Equal(all.AsSpan(0, m * c.N).ToArray(), y);
        }
    }
}
