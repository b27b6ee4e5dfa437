using TerDiT.Runtime.Cpu;

namespace TerDiT.Runtime.Cuda;

/// <summary>
/// Ternary weights on the GPU in <see cref="GpuTernaryLayout"/> with a per-row scale (each part's alpha) and an
/// optional bias: one or more packed matrices of the same input width stacked into one (e.g. wq, wk, wv), or two
/// interleaved in groups of 8 rows (w1, w3: the fused SwiGLU epilogue finds both halves in one thread).
/// </summary>
public sealed class DeviceTernaryMatrix : IDisposable
{
    /// <summary>Stacked rows (the GEMM's N).</summary>
    public int Rows { get; }
    /// <summary>Inputs K.</summary>
    public int Cols { get; }
    public int PaddedRows => GpuTernaryLayout.PaddedRows(Rows);
    public int PaddedCols => GpuTernaryLayout.PaddedCols(Cols);
    /// <summary>Rows of w1 and w3 alternate in groups of 8.</summary>
    public bool Interleaved { get; }
    internal DeviceBuffer<uint> Codes { get; }
    internal DeviceBuffer<float> Alpha { get; }
    internal DeviceBuffer<float>? Bias { get; }

    /// <summary>Device bytes held (codes, scales, bias).</summary>
    public long Bytes => Codes.Bytes + Alpha.Bytes + (Bias?.Bytes ?? 0);

    /// <summary>
    /// Uploads <paramref name="parts"/> (same Cols) into one matrix, repacked on the GPU from their file layout;
    /// <paramref name="interleave"/> needs exactly two parts of equal rows. <paramref name="bias"/> has Rows floats.
    /// </summary>
    public DeviceTernaryMatrix(CudaOps ops, IReadOnlyList<PackedTernaryMatrix> parts, bool interleave = false, float[]? bias = null)
    {
        if (parts.Count == 0) throw new ArgumentException("no ternary matrices to upload");
        int cols = parts[0].Cols, rows = parts.Sum(p => p.Rows);
        if (parts.Any(p => p.Cols != cols)) throw new ArgumentException("stacked ternary matrices must have the same input width");
        if (interleave && (parts.Count != 2 || parts[0].Rows != parts[1].Rows))
            throw new ArgumentException("interleaving needs two matrices of the same shape");
        if (bias != null && bias.Length != rows) throw new ArgumentException($"bias has {bias.Length} elements, the matrix {rows} rows");
        (Rows, Cols, Interleaved) = (rows, cols, interleave);

        Codes = new DeviceBuffer<uint>(ops.Device, GpuTernaryLayout.Bytes(rows, cols) / 4);
        var alpha = new float[PaddedRows];
        try
        {
            Codes.Fill(0);
            for (int p = 0, row0 = 0; p < parts.Count; row0 += parts[p].Rows, p++)
            {
                ops.RepackTernary(parts[p], Codes, PaddedCols, p, interleave);
                for (int r = 0; r < parts[p].Rows; r++)
                    alpha[interleave ? (r >> 3) * 16 + p * 8 + (r & 7) : row0 + r] = parts[p].Alpha;
            }
            Alpha = DeviceBuffer<float>.From(ops.Device, alpha);
            Bias = bias == null ? null : DeviceBuffer<float>.From(ops.Device, bias);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Codes.Dispose();
        Alpha?.Dispose();
        Bias?.Dispose();
    }
}
