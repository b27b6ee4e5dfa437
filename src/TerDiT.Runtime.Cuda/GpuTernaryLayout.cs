namespace TerDiT.Runtime.Cuda;

/// <summary>
/// The GPU layout of ternary weights (docs/CUDA.md): 2-bit codes <c>t + 1</c> (0 in padding) in 512-byte units
/// of 32 output rows × 64 inputs, units stored row-unit-major (<c>[rows / 32][cols / 64]</c>). In a unit, lane l of
/// a warp owns bytes [16 l, 16 l + 16) = four little-endian 32-bit words; word nt, byte i, bits 2r..2r+1 hold the
/// code of row <c>8 nt + l / 4</c> and input <c>32 (r / 2) + 16 (r % 2) + 4 (l % 4) + i</c> of the unit: exactly
/// the B fragments of <c>mma.sync.m16n8k32</c> for four 8-row tiles and two 32-input steps, each register one
/// shift and one AND away. Rows are padded to <see cref="RowAlign"/>, inputs to <see cref="UnitCols"/>.
/// This class is the host-side specification (sizes and a reference packer); the GPU packs with the
/// <c>repack_ternary</c> kernel, tested equal to <see cref="Pack"/>.
/// </summary>
public static class GpuTernaryLayout
{
    public const int UnitRows = 32, UnitCols = 64, UnitBytes = 512;

    /// <summary>Row padding: the widest block tile of the GEMM kernels (128 outputs).</summary>
    public const int RowAlign = 128;

    public static int PaddedRows(int rows) => checked((rows + RowAlign - 1) / RowAlign * RowAlign);
    public static int PaddedCols(int cols) => checked((cols + UnitCols - 1) / UnitCols * UnitCols);

    /// <summary>Bytes of a rows × cols matrix in this layout (2 bits a weight, padding included).</summary>
    public static long Bytes(int rows, int cols) => (long)PaddedRows(rows) * PaddedCols(cols) / 4;

    /// <summary>Byte offset and bit shift of row n, input k.</summary>
    public static (long Byte, int Shift) Locate(int paddedCols, int n, int k)
    {
        int nu = n / UnitRows, nin = n % UnitRows, ku = k / UnitCols, kin = k % UnitCols;
        int nt = nin >> 3, reg = (kin >> 5) * 2 + ((kin >> 4) & 1), t = (kin >> 2) & 3, i = kin & 3;
        int lane = (nin & 7) * 4 + t;
        long unit = (long)nu * (paddedCols / UnitCols) + ku;
        return (unit * UnitBytes + lane * 16 + nt * 4 + i, 2 * reg);
    }

    /// <summary>Reference packer: row-major trits (rows × cols, each −1, 0 or +1) into this layout.</summary>
    public static byte[] Pack(ReadOnlySpan<sbyte> trits, int rows, int cols)
    {
        if (rows <= 0 || cols <= 0) throw new ArgumentOutOfRangeException(nameof(rows), $"shape must be positive, got {rows}×{cols}");
        if (trits.Length != (long)rows * cols) throw new ArgumentException($"expected {rows}×{cols} trits, got {trits.Length}", nameof(trits));
        int kp = PaddedCols(cols);
        var packed = new byte[Bytes(rows, cols)];
        for (int n = 0; n < rows; n++)
            for (int k = 0; k < cols; k++)
            {
                int t = trits[n * cols + k];
                if (t is < -1 or > 1) throw new ArgumentException($"trit at row {n}, column {k} is {t}", nameof(trits));
                var (b, s) = Locate(kp, n, k);
                packed[b] |= (byte)((t + 1) << s);
            }
        return packed;
    }
}
