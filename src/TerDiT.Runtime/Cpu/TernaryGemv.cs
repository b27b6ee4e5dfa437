using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TerDiT.Runtime.Cpu;

/// <summary>
/// The few-token A8 path of <see cref="TernaryGemm"/> (AVX-512, M ≤ <see cref="MaxTokens"/>, e.g. the
/// adaLN linear on one conditioning row per image): a lookup table of 32 token lanes would leave
/// most lanes empty, so instead each packed 32-byte block is decoded to trits as floats (shift,
/// mask, zero-extend, <c>vpermps</c> from {−1, 0, 1}) and multiplied into per-token accumulators.
/// The quantized activations are small integers, so every product and partial sum is an integer
/// below 2²⁴ and exact in float: the result is bit-identical to the integer reference. (Exact mode
/// does not use it: float sums in another order would make a token's bits depend on M.)
/// </summary>
internal static unsafe class TernaryGemv
{
    public const int MaxTokens = 4;

    /// <summary>A8 sums stay exact in float while <c>K · 127 &lt; 2²⁴</c>.</summary>
    public const int MaxA8Cols = (1 << 24) / 127;

    /// <summary>
    /// Rows [n0, n1) for all <paramref name="m"/> ≤ 4 tokens: <paramref name="xs"/> holds the tokens'
    /// quantized codes as (m, kp) floats zero-padded to the packed width kp;
    /// <c>sums[(n − n0) · 4 + t] = Σ_k (c_k − 1) · xs[t, k]</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows(float* xs, int m, int kp, byte* w, int rowBytes, int n0, int n1, float* sums)
    {
        var trits = Vector512.Create(-1f, 0f, 1f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f);
        var three = Vector256.Create((byte)3);
        float* x1 = xs + (m > 1 ? kp : 0), x2 = xs + (m > 2 ? 2 * kp : 0), x3 = xs + (m > 3 ? 3 * kp : 0);
        for (int n = n0; n < n1; n++)
        {
            byte* row = w + (nint)n * rowBytes;
            // Four accumulators a token (fields i even/odd × column halves) hide the FMA latency.
            Vector512<float> a0 = default, b0 = default, c0 = default, d0 = default, a1 = default, b1 = default, c1 = default, d1 = default;
            Vector512<float> a2 = default, b2 = default, c2 = default, d2 = default, a3 = default, b3 = default, c3 = default, d3 = default;
            for (int b = 0; b < rowBytes; b += 32)
            {
                var bytes = Vector256.Load(row + b).AsUInt16();
                for (int i = 0; i < 4; i += 2)
                {
                    var (lo, hi) = Decode(bytes, i, trits, three);
                    var (lo2, hi2) = Decode(bytes, i + 1, trits, three);
                    nint c = b * 4 + 32 * i, e = c + 32;
                    a0 = Vector512.FusedMultiplyAdd(lo, Vector512.Load(xs + c), a0);
                    b0 = Vector512.FusedMultiplyAdd(hi, Vector512.Load(xs + c + 16), b0);
                    c0 = Vector512.FusedMultiplyAdd(lo2, Vector512.Load(xs + e), c0);
                    d0 = Vector512.FusedMultiplyAdd(hi2, Vector512.Load(xs + e + 16), d0);
                    if (m > 1)
                    {
                        a1 = Vector512.FusedMultiplyAdd(lo, Vector512.Load(x1 + c), a1);
                        b1 = Vector512.FusedMultiplyAdd(hi, Vector512.Load(x1 + c + 16), b1);
                        c1 = Vector512.FusedMultiplyAdd(lo2, Vector512.Load(x1 + e), c1);
                        d1 = Vector512.FusedMultiplyAdd(hi2, Vector512.Load(x1 + e + 16), d1);
                    }
                    if (m > 2)
                    {
                        a2 = Vector512.FusedMultiplyAdd(lo, Vector512.Load(x2 + c), a2);
                        b2 = Vector512.FusedMultiplyAdd(hi, Vector512.Load(x2 + c + 16), b2);
                        c2 = Vector512.FusedMultiplyAdd(lo2, Vector512.Load(x2 + e), c2);
                        d2 = Vector512.FusedMultiplyAdd(hi2, Vector512.Load(x2 + e + 16), d2);
                    }
                    if (m > 3)
                    {
                        a3 = Vector512.FusedMultiplyAdd(lo, Vector512.Load(x3 + c), a3);
                        b3 = Vector512.FusedMultiplyAdd(hi, Vector512.Load(x3 + c + 16), b3);
                        c3 = Vector512.FusedMultiplyAdd(lo2, Vector512.Load(x3 + e), c3);
                        d3 = Vector512.FusedMultiplyAdd(hi2, Vector512.Load(x3 + e + 16), d3);
                    }
                }
            }
            float* s = sums + (nint)(n - n0) * MaxTokens;
            s[0] = Vector512.Sum((a0 + b0) + (c0 + d0));
            s[1] = Vector512.Sum((a1 + b1) + (c1 + d1));
            s[2] = Vector512.Sum((a2 + b2) + (c2 + d2));
            s[3] = Vector512.Sum((a3 + b3) + (c3 + d3));
        }
    }

    /// <summary>Trits of field i (columns 32·i + [0, 32) of the block) as two vectors of 16 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static (Vector512<float> Lo, Vector512<float> Hi) Decode(Vector256<ushort> bytes, int i, Vector512<float> trits, Vector256<byte> three)
    {
        var codes = Vector256.ShiftRightLogical(bytes, (byte)(2 * i)).AsByte() & three;
        return (Avx512F.PermuteVar16x32(trits, Avx512F.ConvertToVector512Int32(codes.GetLower())),
                Avx512F.PermuteVar16x32(trits, Avx512F.ConvertToVector512Int32(codes.GetUpper())));
    }
}
