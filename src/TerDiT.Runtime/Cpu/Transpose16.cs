using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TerDiT.Runtime.Cpu;

/// <summary>
/// In-register 16×16 transpose of 32-bit elements with AVX-512 (64 shuffles for 256 elements,
/// against 256 scalar stores), used by <see cref="TernaryGemm"/> to move activations into and
/// results out of the token-lane layout of <see cref="LutKernel"/>. Callers check
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
        Vector512<float>* t = stackalloc Vector512<float>[16];
        for (int p = 0; p < 8; p++)
        {
            t[2 * p] = Avx512F.UnpackLow(rows[2 * p], rows[2 * p + 1]);
            t[2 * p + 1] = Avx512F.UnpackHigh(rows[2 * p], rows[2 * p + 1]);
        }
        // Stage 2: 64-bit interleave; u[4q + c] has, in 128-bit lane l, column 4l + c of rows 4q..4q+3.
        Vector512<float>* u = stackalloc Vector512<float>[16];
        for (int q = 0; q < 4; q++)
        {
            Vector512<double> a = t[4 * q].AsDouble(), b = t[4 * q + 2].AsDouble(), c = t[4 * q + 1].AsDouble(), d = t[4 * q + 3].AsDouble();
            u[4 * q] = Avx512F.UnpackLow(a, b).AsSingle();
            u[4 * q + 1] = Avx512F.UnpackHigh(a, b).AsSingle();
            u[4 * q + 2] = Avx512F.UnpackLow(c, d).AsSingle();
            u[4 * q + 3] = Avx512F.UnpackHigh(c, d).AsSingle();
        }
        // Stages 3–4: transpose the 4×4 grid of 128-bit lanes of u[c], u[4+c], u[8+c], u[12+c]:
        // column 4l + c gets lane l of each.
        for (int c = 0; c < 4; c++)
        {
            Vector512<float> a = u[c], b = u[4 + c], cc = u[8 + c], d = u[12 + c];
            Vector512<float> e = Avx512F.Shuffle4x128(a, b, 0x88), f = Avx512F.Shuffle4x128(a, b, 0xDD);
            Vector512<float> g = Avx512F.Shuffle4x128(cc, d, 0x88), h = Avx512F.Shuffle4x128(cc, d, 0xDD);
            cols[c] = Avx512F.Shuffle4x128(e, g, 0x88);
            cols[4 + c] = Avx512F.Shuffle4x128(f, h, 0x88);
            cols[8 + c] = Avx512F.Shuffle4x128(e, g, 0xDD);
            cols[12 + c] = Avx512F.Shuffle4x128(f, h, 0xDD);
        }
    }
}
