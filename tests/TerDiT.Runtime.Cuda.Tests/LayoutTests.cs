using Xunit;

namespace TerDiT.Runtime.Cuda.Tests;

/// <summary>The host-side specification of the GPU weight layout.</summary>
public class LayoutTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(33, 100)]
    [InlineData(128, 64)]
    [InlineData(200, 257)]
    public void EveryWeightHasItsOwnTwoBitsAndPaddingIsZero(int rows, int cols)
    {
        int kp = GpuTernaryLayout.PaddedCols(cols);
        long bytes = GpuTernaryLayout.Bytes(rows, cols);
        Assert.Equal((long)GpuTernaryLayout.PaddedRows(rows) * kp / 4, bytes);
        var seen = new HashSet<(long, int)>();
        for (int n = 0; n < GpuTernaryLayout.PaddedRows(rows); n++)
            for (int k = 0; k < kp; k++)
            {
                var (b, s) = GpuTernaryLayout.Locate(kp, n, k);
                Assert.InRange(b, 0, bytes - 1);
                Assert.True(seen.Add((b, s)), $"row {n}, input {k} shares its bits");
            }
        Assert.Equal(bytes * 4, seen.Count); // a bijection: exactly 2 bits a weight

        var trits = TestData.Trits(rows * cols, rows + cols);
        var packed = GpuTernaryLayout.Pack(trits, rows, cols);
        for (int n = 0; n < GpuTernaryLayout.PaddedRows(rows); n++)
            for (int k = 0; k < kp; k++)
            {
                var (b, s) = GpuTernaryLayout.Locate(kp, n, k);
                int code = packed[b] >> s & 3;
                Assert.Equal(n < rows && k < cols ? trits[n * cols + k] + 1 : 0, code);
            }
    }

    [Fact]
    public void AWarpLaneReadsTheBFragmentsOfItsMmaTiles()
    {
        // Lane 5 (group 1, thread 1 of its quad): its first word holds row 1 of the unit, inputs 4..7 in bytes 0..3 at bits 0..1.
        for (int i = 0; i < 4; i++) Assert.Equal((5 * 16 + i, 0), GpuTernaryLayout.Locate(64, 1, 4 + i));
        // Register 1 (bits 2..3) is the second half of the k32 step (+16), register 2 the next k32 step (+32).
        Assert.Equal((5 * 16, 2), GpuTernaryLayout.Locate(64, 1, 20));
        Assert.Equal((5 * 16, 4), GpuTernaryLayout.Locate(64, 1, 36));
        // Word 3 of the lane: rows 24..31.
        Assert.Equal((5 * 16 + 12, 0), GpuTernaryLayout.Locate(64, 25, 4));
    }
}
