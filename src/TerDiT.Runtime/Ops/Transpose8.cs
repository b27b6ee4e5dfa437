using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TerDiT.Runtime.Ops;

/// <summary>
/// In-register 8×8 transpose of 32-bit elements with AVX (24 shuffles for 64 elements), the 256-bit
/// counterpart of <see cref="Transpose16"/>, used by <see cref="FloatGemm"/> and the CPU ternary GEMM
/// where AVX-512 is absent. Callers check <see cref="Avx2.IsSupported"/>.
/// </summary>
internal static unsafe class Transpose8
{
    /// <summary><c>cols[j][i] = rows[i][j]</c> for i, j in [0, 8); the two arrays of 8 vectors must not overlap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run(Vector256<float>* rows, Vector256<float>* cols)
    {
        // Stage 1: 32-bit interleave of row pairs; stage 2: 64-bit shuffles give, per 128-bit lane l,
        // column 4l + c of 4 rows; stage 3: the two row quads' lanes are joined.
        Quad(rows, out var s0, out var s1, out var s2, out var s3);
        Quad(rows + 4, out var s4, out var s5, out var s6, out var s7);
        cols[0] = Avx.Permute2x128(s0, s4, 0x20);
        cols[1] = Avx.Permute2x128(s1, s5, 0x20);
        cols[2] = Avx.Permute2x128(s2, s6, 0x20);
        cols[3] = Avx.Permute2x128(s3, s7, 0x20);
        cols[4] = Avx.Permute2x128(s0, s4, 0x31);
        cols[5] = Avx.Permute2x128(s1, s5, 0x31);
        cols[6] = Avx.Permute2x128(s2, s6, 0x31);
        cols[7] = Avx.Permute2x128(s3, s7, 0x31);
    }

    /// <summary>Rows r[0..4): s_c holds column c of the 4 rows in its low lane and column 4 + c in its high lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Quad(Vector256<float>* r, out Vector256<float> s0, out Vector256<float> s1, out Vector256<float> s2, out Vector256<float> s3)
    {
        Vector256<float> t0 = Avx.UnpackLow(r[0], r[1]), t1 = Avx.UnpackHigh(r[0], r[1]);
        Vector256<float> t2 = Avx.UnpackLow(r[2], r[3]), t3 = Avx.UnpackHigh(r[2], r[3]);
        s0 = Avx.Shuffle(t0, t2, 0x44);
        s1 = Avx.Shuffle(t0, t2, 0xEE);
        s2 = Avx.Shuffle(t1, t3, 0x44);
        s3 = Avx.Shuffle(t1, t3, 0xEE);
    }
}
