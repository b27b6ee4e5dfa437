using System.Runtime.Intrinsics.X86;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Ops;
using Xunit;

namespace TerDiT.Runtime.Tests.Cpu;

public class TernarySwiGluTests
{
    sealed record Ffn(int M, int K, int F, int D, float[] X, StackedTernaryMatrix W13, PackedTernaryMatrix W2);

    static Ffn Make(int m, int k, int f, int d, int seed)
    {
        var rng = new Random(seed);
        var x = new float[m * k];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * (rng.Next(64) == 0 ? 20 : 1);
        PackedTernaryMatrix W(int rows, int cols, float alpha) => PackedTernaryMatrix.FromTrits(TernaryPackingTests.RandomTrits(rng, rows * cols), rows, cols, alpha);
        return new Ffn(m, k, f, d, x, new StackedTernaryMatrix(W(f, k, 0.031f), W(f, k, 0.047f)), W(d, f, 0.023f));
    }

    /// <summary>The unfused sequence the model otherwise runs: [w1; w3] x, SwiGluGate, w2.</summary>
    static float[] ThreeSteps(Ffn c, GemmMode mode, TernaryGemmOptions options)
    {
        var ag = new float[2 * c.M * c.F];
        TernaryGemm.Multiply(c.X, c.M, c.W13, ag, default, mode, options);
        Elementwise.SwiGluGate(ag.AsSpan(0, c.M * c.F), ag.AsSpan(c.M * c.F), ag);
        var y = new float[c.M * c.D];
        TernaryGemm.Multiply(ag.AsSpan(0, c.M * c.F), c.M, c.W2, y, default, mode, options);
        return y;
    }

    /// <summary>Whether the fused kernel runs on <paramref name="path"/> (null: the best one): AVX-512 or AVX2 transposes.</summary>
    static bool FusionAvailable(SimdPath? path) => (path ?? SimdPaths.Best) switch
    {
        SimdPath.V512 => Avx512F.IsSupported && SimdPaths.IsSupported(SimdPath.V512),
        SimdPath.V256 => Avx2.IsSupported && SimdPaths.IsSupported(SimdPath.V256),
        _ => false,
    };

    public static TheoryData<int, int, int, int, int, GemmMode, SimdPath?> Shapes()
    {
        var d = new TheoryData<int, int, int, int, int, GemmMode, SimdPath?>();
        foreach (var path in new SimdPath?[] { null, SimdPath.V256 })
            foreach (var mode in Enum.GetValues<GemmMode>())
            {
                d.Add(512, 384, 1024, 384, 1, mode, path);  // TerDiT-S at batch 2
                d.Add(512, 384, 1024, 384, 2, mode, path);
                d.Add(100, 100, 48, 17, 2, mode, path);     // token tail, K and F padded to 128, a row tail past 16
                d.Add(37, 257, 256, 64, 1, mode, path);
                d.Add(64, 128, 16, 5, 2, mode, path);
                d.Add(64, 128, mode == GemmMode.A8 ? 1024 : 2048, 8, 2, mode, path); // the largest F within MaxFusedGateBytes at 512 bits
            }
        return d;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Fused_EqualsTheThreeStepSequence_BitForBit(int m, int k, int f, int d, int threads, GemmMode mode, SimdPath? path)
    {
        if (path is SimdPath p && !SimdPaths.IsSupported(p)) return; // that width is switched off in this run
        var c = Make(m, k, f, d, seed: m + k + f + d);
        Array.Clear(c.X, 3 * k, k);                 // a zero token: zero gate (A8: scale 0)
        c.X[5 * k + 7] = float.NaN;                 // a poisoned token: NaN outputs (A8: like the scalar quantizer's)
        var options = new TernaryGemmOptions(threads, path);
        var y = new float[m * d];
        Array.Fill(y, -7f);
        bool fused = TernaryGemm.TrySwiGlu(c.X, m, c.W13, c.W2, y, mode, options);
        Assert.Equal(FusionAvailable(path), fused);
        if (!fused)
        {
            Assert.All(y, v => Assert.Equal(-7f, v)); // nothing written
            return;
        }
        var want = ThreeSteps(c, mode, options);
        Assert.Equal(want, y);
        Assert.All(Enumerable.Range(0, d), j => Assert.True(float.IsNaN(y[5 * d + j])));
        Assert.All(Enumerable.Range(0, d), j => Assert.Equal(0f, y[3 * d + j]));
        Assert.Contains(y, v => v != 0 && float.IsFinite(v));
    }

    [Theory]
    [InlineData(4, 128, 32, 8, 1, SimdPath.V512, GemmMode.A8)]    // few tokens: the GEMV path is faster
    [InlineData(8, 128, 32, 8, 1, SimdPath.V512, GemmMode.Exact)] // few tokens: narrower tables
    [InlineData(40, 128, 32, 8, 4, null, GemmMode.A8)]            // 2–3 blocks for 4 threads: the unfused GEMMs split rows
    [InlineData(64, 128, 24, 8, 1, null, GemmMode.Exact)]         // F not a multiple of 16
    [InlineData(64, 128, 32, 8, 1, SimdPath.V128, GemmMode.A8)]   // no in-register transposes at 128 bits
    [InlineData(64, 128, 1040, 8, 1, SimdPath.V512, GemmMode.A8)] // a block's w1/w3 sums past MaxFusedGateBytes
    [InlineData(64, 128, 2064, 8, 1, SimdPath.V512, GemmMode.Exact)]
    public void DeclinesWhereFusionIsNotTheFastPath_AndWritesNothing(int m, int k, int f, int d, int threads, SimdPath? path, GemmMode mode)
    {
        var c = Make(m, k, f, d, seed: 3);
        var y = new float[m * d];
        Array.Fill(y, -7f);
        if (path is SimdPath p && !SimdPaths.IsSupported(p)) return; // that width is switched off in this run
        Assert.False(TernaryGemm.TrySwiGlu(c.X, m, c.W13, c.W2, y, mode, new TernaryGemmOptions(threads, path)));
        Assert.All(y, v => Assert.Equal(-7f, v));
    }

    [Fact]
    public void MismatchedShapes_ThrowClearExceptions()
    {
        var c = Make(32, 128, 32, 8, seed: 4);
        var e = Assert.Throws<ArgumentException>(() => TernaryGemm.TrySwiGlu(c.X, 32, new StackedTernaryMatrix(c.W13.Parts[0]), c.W2, new float[32 * 8], GemmMode.A8));
        Assert.Contains("w1, w3 (F, K) and w2 (D, F)", e.Message);
        var w2Wide = PackedTernaryMatrix.FromTrits(new sbyte[8 * 64], 8, 64, 1f);
        Assert.Throws<ArgumentException>(() => TernaryGemm.TrySwiGlu(c.X, 32, c.W13, w2Wide, new float[32 * 8], GemmMode.A8));
        e = Assert.Throws<ArgumentException>(() => TernaryGemm.TrySwiGlu(c.X, 31, c.W13, c.W2, new float[31 * 8], GemmMode.A8));
        Assert.Contains("x must be (31, 128)", e.Message);
        e = Assert.Throws<ArgumentException>(() => TernaryGemm.TrySwiGlu(c.X, 32, c.W13, c.W2, new float[32 * 7], GemmMode.A8));
        Assert.Contains("y must be (32, 8)", e.Message);
    }
}
