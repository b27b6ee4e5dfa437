namespace TerDiT.Runtime.Format;

/// <summary>
/// The ternary layout <c>rowquarter-2bit</c>: the TerDiT authors' packed weights (hqq's <c>2bit_u8</c>
/// packing, docs/IMPORT.md); its row of <see cref="TernaryLayouts"/> is <see cref="TernaryLayouts.RowQuarter2Bit"/>.
/// A matrix of <c>rows × cols</c> trits is split into four row quarters of <c>h = ceil(rows / 4)</c> rows;
/// byte <c>(r, c)</c> of the <c>h × cols</c> result holds the codes <c>t + 1</c> of rows <c>r</c>,
/// <c>h + r</c>, <c>2h + r</c>, <c>3h + r</c> at column c in bits 7–6, 5–4, 3–2, 1–0. Rows past
/// <c>rows</c> (only when rows is not a multiple of 4, which the authors' models never have) are zero
/// trits (code 1); the code 3 is invalid.
/// </summary>
public static class RowQuarterPacking
{
    /// <summary>Name of this layout, as a <c>ternary_layout</c> value.</summary>
    public const string LayoutName = "rowquarter-2bit";

    static int Quarter(int rows) => (rows + 3) / 4;

    /// <summary><c>[ceil(rows / 4), cols]</c>; <see cref="ArgumentOutOfRangeException"/> unless rows ≥ 0 and 0 &lt; cols ≤ 2³¹−1.</summary>
    public static long[] PackedShape(long rows, long cols)
    {
        if (cols is <= 0 or > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(cols), cols, "columns must be in 1..2³¹−1");
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        return [(rows + 3) / 4, cols];
    }

    /// <summary>Packs row-major trits; <see cref="ArgumentException"/> on a wrong length or a value outside {-1, 0, 1}.</summary>
    public static byte[] Pack(ReadOnlySpan<sbyte> trits, int rows, int cols)
    {
        if (trits.Length != (long)rows * cols) throw new ArgumentException($"expected {rows}×{cols} = {(long)rows * cols} trits, got {trits.Length}", nameof(trits));
        int h = Quarter(rows);
        var packed = new byte[(long)h * cols];
        for (int r = 0; r < h; r++)
            for (int c = 0; c < cols; c++)
            {
                int b = 0;
                for (int k = 0; k < 4; k++)
                {
                    int row = k * h + r, t = row < rows ? trits[row * cols + c] : 0;
                    if (t is < -1 or > 1) throw new ArgumentException($"trit at row {row}, column {c} is {t}; expected -1, 0 or 1", nameof(trits));
                    b |= (t + 1) << (6 - 2 * k);
                }
                packed[(long)r * cols + c] = (byte)b;
            }
        return packed;
    }

    /// <summary>Reference unpack: row-major trits; <see cref="ArgumentException"/> on bytes <see cref="Validate"/> refuses.</summary>
    public static sbyte[] Unpack(ReadOnlySpan<byte> packed, int rows, int cols)
    {
        if (Validate(packed, rows, cols) is { } error) throw new ArgumentException(error, nameof(packed));
        int h = Quarter(rows);
        var trits = new sbyte[(long)rows * cols];
        for (int r = 0; r < h; r++)
            for (int c = 0; c < cols; c++)
                for (int k = 0; k < 4 && k * h + r < rows; k++)
                    trits[(long)(k * h + r) * cols + c] = (sbyte)((packed[r * cols + c] >> (6 - 2 * k) & 3) - 1);
        return trits;
    }

    /// <summary>
    /// Null when <paramref name="packed"/> is a valid packed <c>rows × cols</c> matrix (exact length, no code 3,
    /// padding rows zero), else what is wrong and where.
    /// </summary>
    public static string? Validate(ReadOnlySpan<byte> packed, int rows, int cols)
    {
        int h = Quarter(rows);
        if (packed.Length != (long)h * cols) return $"{packed.Length} bytes, expected {h}×{cols} for {rows}×{cols} trits";
        for (int r = 0; r < h; r++)
            for (int c = 0; c < cols; c++)
                for (int k = 0; k < 4; k++)
                {
                    int code = packed[r * cols + c] >> (6 - 2 * k) & 3;
                    if (code == 3) return $"byte ({r}, {c}) holds the invalid trit code 3 (row {k * h + r})";
                    if (k * h + r >= rows && code != 1) return $"byte ({r}, {c}) holds a non-zero trit in padding row {k * h + r}";
                }
        return null;
    }
}
