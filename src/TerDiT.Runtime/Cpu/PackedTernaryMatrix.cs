using TerDiT.Runtime.Format;

namespace TerDiT.Runtime.Cpu;

/// <summary>
/// A ternary weight matrix <c>alpha · W_t</c>, <c>W_t</c> in {-1, 0, 1} of shape (Rows, Cols) =
/// (N_out, K), stored in the 2-bit layout of <see cref="TernaryPacking"/>. <see cref="Data"/> may
/// point into a memory-mapped file; its length and codes (no code 3 anywhere, padding included)
/// are validated once at construction, so kernels never meet an invalid code.
/// </summary>
public sealed class PackedTernaryMatrix
{
    /// <summary>Output features N.</summary>
    public int Rows { get; }

    /// <summary>Input features K.</summary>
    public int Cols { get; }

    /// <summary>The per-tensor scale alpha.</summary>
    public float Alpha { get; }

    /// <summary>Packed bytes, <c>Rows · RowBytes</c> long.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>Bytes of one packed row: <c>ceil(Cols / 128) · 32</c>.</summary>
    public int RowBytes { get; }

    /// <summary>Wraps packed bytes; throws when the length does not match the shape or alpha is not finite.</summary>
    public PackedTernaryMatrix(int rows, int cols, float alpha, ReadOnlyMemory<byte> data)
    {
        long expected = TernaryPacking.PackedBytes(rows, cols);
        if (data.Length != expected)
            throw new ArgumentException($"packed ternary matrix {rows}×{cols} needs {expected} bytes, got {data.Length}", nameof(data));
        if (!float.IsFinite(alpha)) throw new ArgumentException($"alpha must be finite, got {alpha}", nameof(alpha));
        long bad = TernaryPacking.FindInvalidCode(data.Span);
        if (bad >= 0)
            throw new ArgumentException($"packed byte {bad} (row {bad / TernaryPacking.RowBytes(cols)}) holds the invalid trit code 3", nameof(data));
        Rows = rows;
        Cols = cols;
        Alpha = alpha;
        Data = data;
        RowBytes = TernaryPacking.RowBytes(cols);
    }

    /// <summary>Packs row-major trits (Rows × Cols) with scale <paramref name="alpha"/>.</summary>
    public static PackedTernaryMatrix FromTrits(ReadOnlySpan<sbyte> trits, int rows, int cols, float alpha) =>
        new(rows, cols, alpha, TernaryPacking.Pack(trits, rows, cols));

    /// <summary>The row-major trits (reference unpack).</summary>
    public sbyte[] UnpackTrits() => TernaryPacking.Unpack(Data.Span, Rows, Cols);
}
