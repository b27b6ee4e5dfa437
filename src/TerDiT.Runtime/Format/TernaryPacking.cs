namespace TerDiT.Runtime.Format;

/// <summary>
/// The ternary layout <c>terdit-2bit-128</c> (docs/FORMAT.md, docs/TERNARY-LAYOUT.md), the one the CPU
/// kernels read in place; its row of <see cref="TernaryLayouts"/> is <see cref="TernaryLayouts.Terdit2Bit128"/>.
/// A matrix of <c>rows × cols</c> trits in {-1, 0, +1} is stored row by row; each row is
/// <c>ceil(cols / 128)</c> blocks of 32 bytes. In block <c>b</c>, bits <c>2i..2i+1</c> of byte <c>j</c>
/// (i in 0..3, j in 0..31) hold the code <c>t + 1</c> (0, 1 or 2; 3 is invalid) of the trit in column
/// <c>128·b + 32·i + j</c>. Columns past <c>cols</c> are zero trits (code 1). Exactly 2 bits a weight
/// plus the padding.
/// </summary>
public static class TernaryPacking
{
    /// <summary>
    /// Name of this layout, stored as a packed model's <c>ternary_layout</c> metadata: 2-bit codes
    /// <c>t + 1</c>, rows in blocks of 128 trits (32 bytes) interleaved by 32.
    /// </summary>
    public const string LayoutName = "terdit-2bit-128";

    /// <summary>Trits in one block.</summary>
    public const int BlockTrits = 128;

    /// <summary>Bytes in one block (4 trits a byte).</summary>
    public const int BlockBytes = 32;

    /// <summary>A byte of four zero trits (code 1 in every field).</summary>
    public const byte ZeroByte = 0b01_01_01_01;

    /// <summary>Bytes of one packed row of <paramref name="cols"/> trits (whole blocks).</summary>
    public static int RowBytes(int cols)
    {
        if (cols <= 0) throw new ArgumentOutOfRangeException(nameof(cols), cols, "columns must be positive");
        return checked((cols + BlockTrits - 1) / BlockTrits * BlockBytes);
    }

    /// <summary>
    /// Shape of the U8 tensor holding a <c>rows × cols</c> matrix: <c>[rows, ceil(cols / 128) · 32]</c>
    /// (<see cref="RowBytes"/> per row). Throws <see cref="ArgumentOutOfRangeException"/> unless
    /// 0 &lt; cols ≤ <see cref="int.MaxValue"/> and rows ≥ 0.
    /// </summary>
    public static long[] PackedShape(long rows, long cols)
    {
        if (cols is <= 0 or > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(cols), cols, "columns must be in 1..2³¹−1");
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        return [rows, (cols + BlockTrits - 1) / BlockTrits * BlockBytes];
    }

    /// <summary>Columns of a packed row including the zero padding: a multiple of <see cref="BlockTrits"/>.</summary>
    public static int PaddedCols(int cols) => RowBytes(cols) * 4;

    /// <summary>Total packed bytes of a <c>rows × cols</c> matrix.</summary>
    public static long PackedBytes(int rows, int cols)
    {
        if (rows <= 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "rows must be positive");
        return (long)rows * RowBytes(cols);
    }

    /// <summary>Byte index within a packed row and bit shift of column <paramref name="col"/>.</summary>
    public static (int Byte, int Shift) Locate(int col) =>
        ((col >> 7) * BlockBytes + (col & 31), ((col >> 5) & 3) * 2);

    /// <summary>
    /// Packs row-major trits (<c>rows × cols</c>, each -1, 0 or +1) into the layout above.
    /// Throws <see cref="ArgumentException"/> on a wrong length or a value outside {-1, 0, 1}.
    /// </summary>
    public static byte[] Pack(ReadOnlySpan<sbyte> trits, int rows, int cols)
    {
        long total = PackedBytes(rows, cols);
        if (trits.Length != (long)rows * cols)
            throw new ArgumentException($"expected {rows}×{cols} = {(long)rows * cols} trits, got {trits.Length}", nameof(trits));
        if (total > Array.MaxLength) throw new ArgumentException($"packed matrix of {total} bytes is too large for one array");
        int rowBytes = RowBytes(cols);
        var packed = new byte[total];
        for (int r = 0; r < rows; r++)
        {
            var dst = packed.AsSpan(r * rowBytes, rowBytes);
            dst.Fill(ZeroByte);
            var src = trits.Slice(r * cols, cols);
            for (int c = 0; c < cols; c++)
            {
                int t = src[c];
                if (t is < -1 or > 1)
                    throw new ArgumentException($"trit at row {r}, column {c} is {t}; expected -1, 0 or 1", nameof(trits));
                var (b, s) = Locate(c);
                dst[b] = (byte)(dst[b] & ~(3 << s) | (t + 1) << s);
            }
        }
        return packed;
    }

    /// <summary>
    /// Reference unpack: the row-major trits of a packed <c>rows × cols</c> matrix (padding dropped).
    /// Throws <see cref="ArgumentException"/> on a wrong length or an invalid code 3.
    /// </summary>
    public static sbyte[] Unpack(ReadOnlySpan<byte> packed, int rows, int cols)
    {
        long total = PackedBytes(rows, cols);
        if (packed.Length != total)
            throw new ArgumentException($"expected {total} packed bytes for {rows}×{cols} trits, got {packed.Length}", nameof(packed));
        int rowBytes = RowBytes(cols);
        var trits = new sbyte[(long)rows * cols];
        for (int r = 0; r < rows; r++)
        {
            var src = packed.Slice(r * rowBytes, rowBytes);
            for (int c = 0; c < cols; c++)
            {
                var (b, s) = Locate(c);
                int code = src[b] >> s & 3;
                if (code == 3) throw new ArgumentException($"invalid trit code 3 at row {r}, column {c}", nameof(packed));
                trits[(long)r * cols + c] = (sbyte)(code - 1);
            }
        }
        return trits;
    }

    /// <summary>
    /// Null when <paramref name="packed"/> is a valid packed <c>rows × cols</c> matrix (exact length,
    /// no code 3 anywhere, padding included), else what is wrong and where.
    /// </summary>
    public static string? Validate(ReadOnlySpan<byte> packed, int rows, int cols)
    {
        long total = PackedBytes(rows, cols);
        if (packed.Length != total) return $"{packed.Length} bytes, expected {total} for {rows}×{cols} trits";
        long bad = FindInvalidCode(packed);
        return bad < 0 ? null : $"byte {bad} (row {bad / RowBytes(cols)}) holds the invalid trit code 3";
    }

    /// <summary>Index of the first byte holding the invalid code 3 in any field, or -1.</summary>
    public static long FindInvalidCode(ReadOnlySpan<byte> packed)
    {
        // A field is 3 when both of its bits are set: (v & v >> 1) has bit 2i set.
        var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(packed);
        for (int i = 0; i < words.Length; i++)
        {
            ulong v = words[i];
            if ((v & v >> 1 & 0x5555_5555_5555_5555UL) != 0) return FirstInvalid(packed, i * 8L);
        }
        return FirstInvalid(packed, words.Length * 8L);
    }

    static long FirstInvalid(ReadOnlySpan<byte> packed, long from)
    {
        for (long i = from; i < packed.Length; i++)
        {
            int v = packed[(int)i];
            if ((v & v >> 1 & 0x55) != 0) return i;
        }
        return -1;
    }
}
