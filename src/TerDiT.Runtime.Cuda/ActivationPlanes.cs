using System.Runtime.InteropServices;

namespace TerDiT.Runtime.Cuda;

/// <summary>
/// Quantized activations as the ternary GEMMs read them: <see cref="Terms"/> int8 planes (Terms, RowCapacity,
/// PaddedCols) row-major, a float scale per row and the int32 sum of each plane's row codes (Terms, RowCapacity).
/// One term is the A8 mode; three the exact mode (<c>x = scale · (q0 + q1/254 + q2/254²)</c>).
/// Row capacity is a multiple of 128 so that every GEMM tile reads inside the buffer.
/// </summary>
public sealed class ActivationPlanes : IDisposable
{
    public int Terms { get; }
    public int RowCapacity { get; }
    public int PaddedCols { get; }
    internal DeviceBuffer<sbyte> Codes { get; }
    internal DeviceBuffer<float> Scales { get; }
    internal DeviceBuffer<int> RowSums { get; }

    public ActivationPlanes(CudaDevice device, int terms, int rows, int cols)
    {
        if (terms is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(terms), terms, "1 (a8) or 3 (exact) planes");
        Terms = terms;
        RowCapacity = GpuTernaryLayout.PaddedRows(rows);
        PaddedCols = GpuTernaryLayout.PaddedCols(cols);
        Codes = new DeviceBuffer<sbyte>(device, (long)terms * RowCapacity * PaddedCols);
        Scales = new DeviceBuffer<float>(device, RowCapacity);
        RowSums = new DeviceBuffer<int>(device, (long)terms * RowCapacity);
        Codes.Fill(0);
    }

    internal PlaneArgs Args => new(Codes.Pointer, Scales.Pointer, RowSums.Pointer, RowCapacity, PaddedCols, Terms);

    public void Dispose()
    {
        Codes.Dispose();
        Scales.Dispose();
        RowSums.Dispose();
    }
}

/// <summary>The kernels' <c>PlaneArgs</c> struct (same field order and layout).</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct PlaneArgs(ulong Planes, ulong Scales, ulong RowSums, int RowCapacity, int PaddedCols, int Terms);

/// <summary>The kernels' <c>EpilogueArgs</c> struct (same field order and layout).</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct EpilogueArgs(ulong Y, int Ldy, ulong Alpha, ulong Bias, ulong Gate, int GateStride, int Tokens);
