using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Tests.Cpu;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class LinearStackTests
{
    static PackedTernaryLinear Ternary(int outF, int inF, int seed, GemmMode mode, bool bias)
    {
        var rng = new Random(seed);
        var w = PackedTernaryMatrix.FromTrits(TernaryPackingTests.RandomTrits(rng, outF * inF), outF, inF, 0.1f + seed % 7 * 0.05f);
        return new PackedTernaryLinear(w, bias ? TestData.Normal(outF, seed + 1, 0.5f) : null, mode, threads: 2);
    }

    /// <summary>Each part's block of the stacked output equals the part run alone, bit for bit.</summary>
    static void AssertPartsMatch(LinearStack stack, ILinearKernel[] parts, int rows, int seed)
    {
        var x = TestData.Normal(rows * stack.InFeatures, seed, 1f);
        var y = new float[rows * stack.OutFeatures];
        stack.Forward(x, y, rows);
        int at = 0;
        foreach (var p in parts)
        {
            var want = new float[rows * p.OutFeatures];
            p.Forward(x, want, rows);
            Assert.Equal(want, y.AsSpan(at, want.Length).ToArray());
            at += want.Length;
        }
    }

    [Theory]
    [InlineData(GemmMode.Exact)]
    [InlineData(GemmMode.A8)]
    public void FusedTernaryStack_GivesEachLayerItsOwnResult(GemmMode mode)
    {
        foreach (int rows in new[] { 1, 2, 37 })
        {
            ILinearKernel[] parts = [Ternary(48, 130, 1, mode, false), Ternary(17, 130, 2, mode, true), Ternary(64, 130, 3, mode, false)];
            var stack = new LinearStack(parts);
            Assert.Equal(129, stack.OutFeatures);
            AssertPartsMatch(stack, parts, rows, seed: rows);
        }
    }

    [Fact]
    public void MixedStack_RunsEachLayerOnItsOwn()
    {
        var dense = new FloatLinear(TestData.Normal(20 * 130, 5, 0.1f), null, 20, 130, new ParallelOptions());
        ILinearKernel[] parts = [Ternary(48, 130, 1, GemmMode.Exact, true), dense];
        AssertPartsMatch(new LinearStack(parts), parts, rows: 9, seed: 4);
        var e = Assert.Throws<ArgumentException>(() => new LinearStack(parts[0], Ternary(4, 64, 9, GemmMode.Exact, false)));
        Assert.Contains("input width", e.Message);
    }
}
