namespace TerDiT.Runtime.Format;

/// <summary>Shape of the U8 tensor holding a <c>rows × cols</c> ternary matrix; throws <see cref="ArgumentOutOfRangeException"/> for sizes the layout cannot hold.</summary>
public delegate long[] TernaryPackedShape(long rows, long cols);

/// <summary>Row-major trits (<c>rows × cols</c>, each −1, 0 or +1) → packed bytes; <see cref="ArgumentException"/> on a wrong length or value.</summary>
public delegate byte[] TernaryPack(ReadOnlySpan<sbyte> trits, int rows, int cols);

/// <summary>Reference unpack: packed bytes → row-major trits; <see cref="ArgumentException"/> on bytes that <see cref="TernaryValidate"/> refuses.</summary>
public delegate sbyte[] TernaryUnpack(ReadOnlySpan<byte> packed, int rows, int cols);

/// <summary>Null when the bytes are a valid packed <c>rows × cols</c> matrix, else what is wrong and where (one line).</summary>
public delegate string? TernaryValidate(ReadOnlySpan<byte> packed, int rows, int cols);

/// <summary>
/// One row of the ternary layout table (<see cref="TernaryLayouts"/>): how a matrix of trits is stored
/// in a <c>.tdit</c> file's U8 tensor. A file names its row in the <c>ternary_layout</c> metadata;
/// <see cref="TditFile.Open"/> and <see cref="TditWriter"/> look it up, check every ternary tensor's
/// shape against <see cref="PackedShape"/> and its bytes with <see cref="Validate"/>.
/// </summary>
/// <param name="Name">The <c>ternary_layout</c> value.</param>
/// <param name="PackedShape">U8 tensor shape of a <c>rows × cols</c> matrix.</param>
/// <param name="Pack">Trits → bytes (the writer's side).</param>
/// <param name="Unpack">Bytes → trits: the layout's specification, which any fast reader is tested against.</param>
/// <param name="Validate">Checks bytes from a file before anything reads them as trits.</param>
public sealed record TernaryLayout(string Name, TernaryPackedShape PackedShape, TernaryPack Pack, TernaryUnpack Unpack, TernaryValidate Validate);

/// <summary>
/// The ternary layouts this code reads and writes, one row each. Adding a layout is adding a row
/// here (its functions in a file of their own beside <see cref="TernaryPacking"/>); the table test
/// (<c>TernaryLayoutTests</c>) then checks it like every other row, and the CPU runtime reads it by
/// unpacking it once into <see cref="Terdit2Bit128"/>, the layout its kernels use in place.
/// </summary>
public static class TernaryLayouts
{
    /// <summary><c>terdit-2bit-128</c>: 2-bit codes <c>t + 1</c>, rows in 32-byte blocks of 128 trits (<see cref="TernaryPacking"/>).</summary>
    public static readonly TernaryLayout Terdit2Bit128 = new(TernaryPacking.LayoutName, TernaryPacking.PackedShape,
        TernaryPacking.Pack, TernaryPacking.Unpack, TernaryPacking.Validate);

    /// <summary><c>rowquarter-2bit</c>: the TerDiT authors' packing, four row quarters a byte (<see cref="RowQuarterPacking"/>).</summary>
    public static readonly TernaryLayout RowQuarter2Bit = new(RowQuarterPacking.LayoutName, RowQuarterPacking.PackedShape,
        RowQuarterPacking.Pack, RowQuarterPacking.Unpack, RowQuarterPacking.Validate);

    /// <summary>Every row, by name.</summary>
    public static IReadOnlyList<TernaryLayout> All { get; } = [Terdit2Bit128, RowQuarter2Bit];

    /// <summary>The row named <paramref name="name"/>, or null when this code does not know it.</summary>
    public static TernaryLayout? Find(string name) => All.FirstOrDefault(l => l.Name == name);

    /// <summary>The row named <paramref name="name"/>; <paramref name="error"/>'s exception when there is none.</summary>
    internal static TernaryLayout Get(string? name, Func<string, Exception> error)
    {
        if (name is null) throw error("a ternary model needs a ternary_layout");
        return Find(name) ?? throw error($"ternary_layout '{name}' is not supported by this reader (known: {string.Join(", ", All.Select(l => l.Name))})");
    }
}
