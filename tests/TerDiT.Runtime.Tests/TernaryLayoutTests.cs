using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using Xunit;

namespace TerDiT.Runtime.Tests;

/// <summary>Every row of the ternary layout table meets the same contract; a new row is tested by being added.</summary>
public class TernaryLayoutTests
{
    public static TheoryData<string> Layouts() => [.. TernaryLayouts.All.Select(l => l.Name)];

    /// <summary>Widths around the block sizes a layout may use (4 trits a byte, 32-, 64-, 128- and 256-trit blocks).</summary>
    static readonly int[] Widths = [1, 2, 3, 4, 5, 31, 32, 33, 42, 63, 64, 65, 112, 127, 128, 129, 255, 256, 257, 300];

    [Theory]
    [MemberData(nameof(Layouts))]
    public void PackedShapeMatchesPackAndUnpackInvertsPack(string name)
    {
        var layout = TernaryLayouts.Find(name)!;
        foreach (int rows in new[] { 1, 3, 4, 8 })
            foreach (int cols in Widths)
            {
                var trits = TernaryPackingTests.RandomTrits(new Random(rows * 1000 + cols), rows * cols);
                var packed = layout.Pack(trits, rows, cols);
                long[] shape = layout.PackedShape(rows, cols);
                Assert.Equal(2, shape.Length);
                Assert.Equal(shape[0] * shape[1], packed.Length);
                Assert.Null(layout.Validate(packed, rows, cols));
                Assert.Equal(trits, layout.Unpack(packed, rows, cols));
            }
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void ValidateRefusesWrongLengthsAndUnpackRefusesWhatValidateRefuses(string name)
    {
        var layout = TernaryLayouts.Find(name)!;
        var packed = layout.Pack(new sbyte[3 * 100], 3, 100);
        Assert.NotNull(layout.Validate(packed.AsSpan(1), 3, 100));
        Assert.NotNull(layout.Validate([.. packed, 0], 3, 100));
        // Flip bits one byte at a time: whatever the layout refuses, its reference unpack refuses too.
        for (int i = 0; i < packed.Length; i += 7)
            foreach (byte flip in new byte[] { 0x03, 0x0C, 0x30, 0xC0, 0xFF })
            {
                var bad = (byte[])packed.Clone();
                bad[i] ^= flip;
                if (layout.Validate(bad, 3, 100) is not null)
                    Assert.ThrowsAny<ArgumentException>(() => layout.Unpack(bad, 3, 100));
            }
    }

    [Fact]
    public void TableNamesAreUniqueAndResolve()
    {
        Assert.Equal(TernaryLayouts.All.Count, TernaryLayouts.All.Select(l => l.Name).Distinct().Count());
        Assert.Same(TernaryLayouts.Terdit2Bit128, TernaryLayouts.Find("terdit-2bit-128"));
        Assert.Null(TernaryLayouts.Find("terdit-2bit-256"));
    }

    /// <summary>
    /// terdit-2bit-128 stores every row in whole 32-byte blocks of 128 trits: for widths that are not a
    /// multiple of 128 this is more than 4 trits a byte (42 trits: 32 bytes, not 11), and the format, the
    /// writer's declarations and the kernels' matrix all use this one shape.
    /// </summary>
    [Fact]
    public void Terdit2Bit128PadsRowsToWholeBlocks()
    {
        foreach (int cols in Widths)
        {
            long rowBytes = (cols + 127) / 128 * 32;
            Assert.Equal(new[] { 5L, rowBytes }, TernaryLayouts.Terdit2Bit128.PackedShape(5, cols));
            Assert.Equal(rowBytes, TernaryPacking.RowBytes(cols));
            Assert.Equal(5 * rowBytes, new PackedTernaryMatrix(5, cols, 1f, TernaryPacking.Pack(new sbyte[5 * cols], 5, cols)).Data.Length);
        }
        var config = FormatTestFiles.Odd;
        foreach (var d in TditSchema.Declarations(config, TernaryPacking.LayoutName).Where(d => d.DType == TditDType.U8))
        {
            var spec = ParameterSchema.Enumerate(config).Single(p => p.Name == d.Name);
            Assert.Equal(new[] { spec.Shape[0], (spec.Shape[1] + 127) / 128 * 32 }, d.Shape);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => TernaryLayouts.Terdit2Bit128.PackedShape(1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => TernaryLayouts.Terdit2Bit128.PackedShape(1, 1L << 31));
    }
}
