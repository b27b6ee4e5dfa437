using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TerDiT.Runtime.Ops;

/// <summary>
/// In-register 16×16 transpose of 32-bit elements with AVX-512 (64 shuffles for 256 elements,
/// against 256 scalar stores), used by <see cref="FloatGemm"/> to pack panels and by the CPU
/// ternary GEMM to move activations into and results out of its token-lane layout. Callers check
/// <see cref="Avx512F.IsSupported"/>.
/// </summary>
internal static unsafe class Transpose16
{
    /// <summary>
    /// <c>cols[j][i] = rows[i][j]</c> for i, j in [0, 16): <paramref name="rows"/> and
    /// <paramref name="cols"/> hold 16 vectors each and must not overlap.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run(Vector512<float>* rows, Vector512<float>* cols)
    {
        // Stage 1: 32-bit interleave of row pairs; t[2p], t[2p+1] = lo/hi(rows[2p], rows[2p+1]).
        // Stage 2: 64-bit interleave; u[4q + c] has, in 128-bit lane l, column 4l + c of rows 4q..4q+3.
        // Locals, not stack arrays, so the whole transpose stays in registers and inlines.
        Quad(rows, out var u0, out var u1, out var u2, out var u3);
        Quad(rows + 4, out var u4, out var u5, out var u6, out var u7);
        Quad(rows + 8, out var u8, out var u9, out var u10, out var u11);
        Quad(rows + 12, out var u12, out var u13, out var u14, out var u15);
        // Stages 3–4: transpose the 4×4 grid of 128-bit lanes of u[c], u[4+c], u[8+c], u[12+c]:
        // column 4l + c gets lane l of each.
        Lanes(u0, u4, u8, u12, cols);
        Lanes(u1, u5, u9, u13, cols + 1);
        Lanes(u2, u6, u10, u14, cols + 2);
        Lanes(u3, u7, u11, u15, cols + 3);
    }

    /// <summary>Stages 1–2 for rows r[0..4): u_c holds, in 128-bit lane l, column 4l + c of the 4 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Quad(Vector512<float>* r, out Vector512<float> u0, out Vector512<float> u1, out Vector512<float> u2, out Vector512<float> u3)
    {
        Vector512<double> t0 = Avx512F.UnpackLow(r[0], r[1]).AsDouble(), t1 = Avx512F.UnpackHigh(r[0], r[1]).AsDouble();
        Vector512<double> t2 = Avx512F.UnpackLow(r[2], r[3]).AsDouble(), t3 = Avx512F.UnpackHigh(r[2], r[3]).AsDouble();
        u0 = Avx512F.UnpackLow(t0, t2).AsSingle();
        u1 = Avx512F.UnpackHigh(t0, t2).AsSingle();
        u2 = Avx512F.UnpackLow(t1, t3).AsSingle();
        u3 = Avx512F.UnpackHigh(t1, t3).AsSingle();
    }

    /// <summary>Stages 3–4 for one c: cols[4l] (relative to <paramref name="cols"/>) = lane l of a, b, cc, d.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Lanes(Vector512<float> a, Vector512<float> b, Vector512<float> cc, Vector512<float> d, Vector512<float>* cols)
    {
        Vector512<float> e = Avx512F.Shuffle4x128(a, b, 0x88), f = Avx512F.Shuffle4x128(a, b, 0xDD);
        Vector512<float> g = Avx512F.Shuffle4x128(cc, d, 0x88), h = Avx512F.Shuffle4x128(cc, d, 0xDD);
        cols[0] = Avx512F.Shuffle4x128(e, g, 0x88);
        cols[4] = Avx512F.Shuffle4x128(f, h, 0x88);
        cols[8] = Avx512F.Shuffle4x128(e, g, 0xDD);
        cols[12] = Avx512F.Shuffle4x128(f, h, 0xDD);
    }
}
