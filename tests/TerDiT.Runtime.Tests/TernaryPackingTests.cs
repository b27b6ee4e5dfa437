using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class TernaryPackingTests
{
    internal static sbyte[] RandomTrits(Random rng, int count)
    {
        var t = new sbyte[count];
        for (int i = 0; i < count; i++) t[i] = (sbyte)rng.Next(-1, 2);
        return t;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 4)]
    [InlineData(3, 31)]
    [InlineData(2, 32)]
    [InlineData(5, 100)]
    [InlineData(4, 127)]
    [InlineData(4, 128)]
    [InlineData(3, 129)]
    [InlineData(7, 257)]
    [InlineData(2, 1536)]
    public void PackUnpack_RoundTrips_AndPadsWithZeroTrits(int rows, int cols)
    {
        var trits = RandomTrits(new Random(rows * 1000 + cols), rows * cols);
        var packed = TernaryPacking.Pack(trits, rows, cols);

        Assert.Equal((cols + 127) / 128 * 32 * rows, packed.Length);
        Assert.Equal(trits, TernaryPacking.Unpack(packed, rows, cols));
        // Every padding column holds code 1 (zero).
        int rowBytes = TernaryPacking.RowBytes(cols);
        for (int r = 0; r < rows; r++)
            for (int c = cols; c < TernaryPacking.PaddedCols(cols); c++)
            {
                var (b, s) = TernaryPacking.Locate(c);
                Assert.Equal(1, packed[r * rowBytes + b] >> s & 3);
            }
    }

    [Fact]
    public void Layout_MatchesTheDocumentedBits()
    {
        // Column 128·b + 32·i + j lives in byte 32·b + j, bits 2i..2i+1, as code t + 1.
        var trits = new sbyte[2 * 300];
        trits[0 * 300 + 0] = 1;     // block 0, i 0, j 0  -> byte 0 bits 0-1 = 2
        trits[0 * 300 + 33] = -1;   // block 0, i 1, j 1  -> byte 1 bits 2-3 = 0
        trits[0 * 300 + 127] = 1;   // block 0, i 3, j 31 -> byte 31 bits 6-7 = 2
        trits[1 * 300 + 130] = -1;  // block 1, i 0, j 2  -> row 1, byte 34 bits 0-1 = 0
        var p = TernaryPacking.Pack(trits, 2, 300);
        int rowBytes = 96;
        Assert.Equal(rowBytes, TernaryPacking.RowBytes(300));
        Assert.Equal(0b01_01_01_10, p[0]);
        Assert.Equal(0b01_01_00_01, p[1]);
        Assert.Equal(0b10_01_01_01, p[31]);
        Assert.Equal(0b01_01_01_00, p[rowBytes + 34]);
        Assert.Equal(TernaryPacking.ZeroByte, p[2]);
    }

    [Fact]
    public void InvalidInputs_ThrowClearExceptions()
    {
        var e = Assert.Throws<ArgumentException>(() => TernaryPacking.Pack(new sbyte[5], 2, 3));
        Assert.Contains("2×3", e.Message);
        e = Assert.Throws<ArgumentException>(() => TernaryPacking.Pack(new sbyte[] { 0, 2, 0 }, 1, 3));
        Assert.Contains("column 1", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TernaryPacking.Pack([], 0, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => TernaryPacking.RowBytes(0));
        Assert.Throws<ArgumentException>(() => TernaryPacking.Unpack(new byte[31], 1, 100));

        var bad = TernaryPacking.Pack(new sbyte[2 * 100], 2, 100);
        bad[32 + 5] = 0b00_11_00_00;  // row 1 holds a code 3
        e = Assert.Throws<ArgumentException>(() => TernaryPacking.Unpack(bad, 2, 100));
        Assert.Contains("code 3", e.Message);
        Assert.Equal(37, TernaryPacking.FindInvalidCode(bad));
        e = Assert.Throws<ArgumentException>(() => new PackedTernaryMatrix(2, 100, 1f, bad));
        Assert.Contains("row 1", e.Message);

        var good = TernaryPacking.Pack(new sbyte[2 * 100], 2, 100);
        Assert.Equal(-1, TernaryPacking.FindInvalidCode(good));
        Assert.Throws<ArgumentException>(() => new PackedTernaryMatrix(2, 100, 1f, good.AsMemory(0, 63)));
        Assert.Throws<ArgumentException>(() => new PackedTernaryMatrix(2, 100, float.NaN, good));
    }

    [Fact]
    public void PackedMatrix_WrapsAMemorySlice()
    {
        var trits = RandomTrits(new Random(3), 3 * 200);
        var packed = TernaryPacking.Pack(trits, 3, 200);
        var file = new byte[packed.Length + 10];   // as if inside a mapped file at offset 10
        packed.CopyTo(file, 10);
        var m = new PackedTernaryMatrix(3, 200, 0.5f, file.AsMemory(10, packed.Length));
        Assert.Equal(64, m.RowBytes);
        Assert.Equal(trits, m.UnpackTrits());
    }
}
