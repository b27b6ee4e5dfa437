using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TerDiT.Runtime.Ops;

/// <summary>
/// Integer matrix product <c>C (M, N) = A (M, K) · B (K, N)</c> of int16 codes into int32, for the
/// A8 attention (<see cref="Attention"/>). B is packed in pairs of rows: panel <c>p</c> holds columns
/// <c>[16p, 16p+16)</c> as <see cref="Pairs"/>(K) rows of 16 int32, the lane for column j of pair r being
/// <c>(B[2r+1, j] &lt;&lt; 16) | (ushort)B[2r, j]</c> — the operand of <c>vpmaddwd</c>, which multiplies
/// 16 such lanes by a broadcast pair (A[i, 2r], A[i, 2r+1]) and adds each product pair. A missing
/// row 2r+1 (odd K) and the padding columns of the last panel are zero.
/// Arithmetic is exact as long as every dot product and every pair of products fits in int32 —
/// callers choose their code ranges for that (<see cref="CodeLimit"/>); the AVX2 kernel and the
/// scalar <see cref="MultiplyReference"/> then give the same integers.
/// </summary>
public static unsafe class Int16Gemm
{
    /// <summary>Columns of B per packed panel.</summary>
    public const int PanelWidth = 16;
    const int RowBlock = 6;

    /// <summary>Pairs of rows a K-row operand is packed into.</summary>
    public static int Pairs(int k) => (k + 1) / 2;

    /// <summary>Int32 lanes a packed B of <paramref name="k"/> rows and <paramref name="n"/> columns occupies.</summary>
    public static int PackedLength(int k, int n) => (n + PanelWidth - 1) / PanelWidth * Pairs(k) * PanelWidth;

    /// <summary>
    /// The largest code c such that a sum of <paramref name="terms"/> products of two codes in
    /// [−c, c] stays within int32: <c>floor(√((2³¹ − 1) / terms))</c>, at most 32767.
    /// </summary>
    public static int CodeLimit(int terms)
    {
        if (terms <= 0) throw new ArgumentException($"term count must be positive, got {terms}");
        return (int)Math.Min(32767, Math.Floor(Math.Sqrt(int.MaxValue / (double)terms)));
    }

    /// <summary>
    /// Quantizes a B (K, N) given as <see cref="FloatGemm"/> panels (from <see cref="FloatGemm.PackRowMajor"/>
    /// or <see cref="FloatGemm.PackTransposed"/>) into packed int16 pairs, one scale per column:
    /// <c>code = round_half_even(B[r, j] · limit / absmax_j)</c>, <c>scales[j] = absmax_j / limit</c>
    /// (0 for an all-zero column, whose codes are 0). <paramref name="scales"/> gets one entry per
    /// panel lane, padding columns included (0).
    /// </summary>
    public static void PackPanels(ReadOnlySpan<float> floatPanels, int k, int n, int limit, Span<int> packed, Span<float> scales)
    {
        int panels = (n + PanelWidth - 1) / PanelWidth;
        if (k <= 0 || n <= 0) throw new ArgumentException($"matrix dimensions must be positive, got K={k}, N={n}");
        if (limit <= 0 || limit > 32767) throw new ArgumentException($"code limit must be in [1, 32767], got {limit}");
        if (floatPanels.Length < FloatGemm.PackedLength(k, n)) throw new ArgumentException($"float panels hold {floatPanels.Length} floats, {FloatGemm.PackedLength(k, n)} needed");
        if (packed.Length < PackedLength(k, n)) throw new ArgumentException($"packed buffer holds {packed.Length} lanes, {PackedLength(k, n)} needed");
        if (scales.Length < panels * PanelWidth) throw new ArgumentException($"scales hold {scales.Length} floats, {panels * PanelWidth} needed");
        int pairs = Pairs(k);
        var vlimit = Vector512.Create((float)limit);
        var low = Vector512.Create(0xFFFF);
        fixed (float* pf = floatPanels, ps = scales)
        fixed (int* pp = packed)
            for (int p = 0; p < panels; p++)
            {
                float* src = pf + (nint)p * k * PanelWidth;
                var absmax = Vector512<float>.Zero;
                for (int r = 0; r < k; r++) absmax = Vector512.Max(absmax, Vector512.Abs(Vector512.Load(src + (nint)r * PanelWidth)));
                var nonzero = Vector512.GreaterThan(absmax, Vector512<float>.Zero);
                var inverse = Vector512.ConditionalSelect(nonzero, vlimit / absmax, Vector512<float>.Zero);
                (absmax / vlimit).Store(ps + p * PanelWidth);
                int* dst = pp + (nint)p * pairs * PanelWidth;
                for (int r = 0; r < pairs; r++)
                {
                    var lo = Code(Vector512.Load(src + (nint)2 * r * PanelWidth), inverse);
                    var hi = 2 * r + 1 < k ? Code(Vector512.Load(src + (nint)(2 * r + 1) * PanelWidth), inverse) : Vector512<int>.Zero;
                    (Vector512.ShiftLeft(hi, 16) | (lo & low)).Store(dst + (nint)r * PanelWidth);
                }
            }
    }

    /// <summary>
    /// Quantizes an A (M, K), row-major with stride <paramref name="ldx"/>, into int16 codes with one
    /// scale per row: <c>codes[i, k] = round_half_even(x[i, k] · limit / absmax_i)</c>,
    /// <c>scales[i] = absmax_i / limit</c> (0 for an all-zero row); codes rows have stride
    /// <paramref name="ldc"/> ≥ 2·Pairs(K), the code past an odd K is 0.
    /// </summary>
    public static void QuantizeRows(ReadOnlySpan<float> x, int m, int k, int ldx, int limit, Span<short> codes, int ldc, Span<float> scales)
    {
        if (m <= 0 || k <= 0 || ldx < k || ldc < 2 * Pairs(k)) throw new ArgumentException($"invalid quantization shape M={m}, K={k}, ldx={ldx}, ldc={ldc}");
        if (limit <= 0 || limit > 32767) throw new ArgumentException($"code limit must be in [1, 32767], got {limit}");
        if (x.Length < (long)(m - 1) * ldx + k || codes.Length < (long)(m - 1) * ldc + 2 * Pairs(k) || scales.Length < m)
            throw new ArgumentException($"buffers too small for M={m}, K={k}: x {x.Length}, codes {codes.Length}, scales {scales.Length}");
        fixed (float* px = x)
        fixed (short* pc = codes)
            for (int i = 0; i < m; i++)
            {
                float* row = px + (nint)i * ldx;
                short* dst = pc + (nint)i * ldc;
                int j = 0;
                var vmax = Vector512<float>.Zero;
                for (; j + 16 <= k; j += 16) vmax = Vector512.Max(vmax, Vector512.Abs(Vector512.Load(row + j)));
                float absmax = Elementwise.MaxAcross(vmax);
                for (; j < k; j++) absmax = MathF.Max(absmax, MathF.Abs(row[j]));
                float inverse = absmax > 0 ? limit / absmax : 0;
                scales[i] = absmax / limit;
                var vinverse = Vector512.Create(inverse);
                for (j = 0; j + 16 <= k; j += 16)
                {
                    var q = Code(Vector512.Load(row + j), vinverse);
                    Vector512.Narrow(q, q).GetLower().Store(dst + j);
                }
                for (; j < k; j++) dst[j] = (short)MathF.Round(row[j] * inverse);
                if (k % 2 != 0) dst[k] = 0;
            }
    }

    /// <summary>round_half_even(x · inverse) as int32 (the codes of <see cref="PackPanels"/> and the attention quantizers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<int> Code(Vector512<float> x, Vector512<float> inverse) => Vector512.ConvertToInt32(Vector512.Round(x * inverse));

    /// <summary>
    /// <c>C[i, j] = Σ_k A[i, k] · B[k, j]</c> for rows [0, m), single-threaded. A holds int16 codes,
    /// row-major with even stride <paramref name="lda"/>; each row must hold 2·Pairs(K) codes, the
    /// one past K (odd K) any value (it meets B's zero row). C is overwritten. AVX2 when available,
    /// else <see cref="MultiplyReference"/>.
    /// </summary>
    public static void Multiply(ReadOnlySpan<short> a, int lda, int m, int k, ReadOnlySpan<int> bPacked, int n, Span<int> c, int ldc)
    {
        if (m == 0) return;
        Validate(a.Length, lda, m, k, bPacked.Length, n, c.Length, ldc);
        if (!Avx2.IsSupported)
        {
            MultiplyReference(a, lda, m, k, bPacked, n, c, ldc);
            return;
        }
        int pairs = Pairs(k);
        fixed (short* pa = a)
        fixed (int* pb = bPacked, pc = c)
            for (int p = 0, j0 = 0; j0 < n; p++, j0 += PanelWidth)
            {
                int* panel = pb + (nint)p * pairs * PanelWidth;
                int width = Math.Min(PanelWidth, n - j0), i = 0;
                for (; i + RowBlock <= m; i += RowBlock)
                    Kernel6((int*)(pa + (nint)i * lda), lda / 2, panel, pairs, pc + (nint)i * ldc + j0, ldc, width);
                for (; i < m; i++)
                    Kernel1((int*)(pa + (nint)i * lda), panel, pairs, pc + (nint)i * ldc + j0, width);
            }
    }

    /// <summary>The scalar specification of <see cref="Multiply"/> (same arguments, same integers).</summary>
    public static void MultiplyReference(ReadOnlySpan<short> a, int lda, int m, int k, ReadOnlySpan<int> bPacked, int n, Span<int> c, int ldc)
    {
        if (m == 0) return;
        Validate(a.Length, lda, m, k, bPacked.Length, n, c.Length, ldc);
        int pairs = Pairs(k);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                ReadOnlySpan<int> column = bPacked.Slice(j / PanelWidth * pairs * PanelWidth + j % PanelWidth);
                int sum = 0;
                for (int r = 0; r < pairs; r++)
                {
                    int lane = column[r * PanelWidth];
                    unchecked { sum += a[i * lda + 2 * r] * (short)lane + a[i * lda + 2 * r + 1] * (lane >> 16); }
                }
                c[i * ldc + j] = sum;
            }
    }

    static void Validate(int aLength, int lda, int m, int k, int bLength, int n, int cLength, int ldc)
    {
        if (m < 0 || k <= 0 || n <= 0) throw new ArgumentException($"invalid GEMM dimensions M={m}, K={k}, N={n}");
        if (lda < 2 * Pairs(k) || lda % 2 != 0 || ldc < n)
            throw new ArgumentException($"strides lda={lda}, ldc={ldc}: lda must be even and at least {2 * Pairs(k)}, ldc at least N={n}");
        if (aLength < (long)(m - 1) * lda + 2 * Pairs(k)) throw new ArgumentException($"A holds {aLength} codes, too few for M={m}, K={k}, lda={lda}");
        if (cLength < (long)(m - 1) * ldc + n) throw new ArgumentException($"C holds {cLength} elements, too few for M={m}, N={n}, ldc={ldc}");
        if (bLength < PackedLength(k, n)) throw new ArgumentException($"packed B holds {bLength} lanes, {PackedLength(k, n)} needed");
    }

    /// <summary>Six rows of A (as int32 pairs, row stride <paramref name="lda"/> pairs) against one panel: twelve 8-lane accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6(int* a, int lda, int* b, int pairs, int* c, int ldc, int width)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                       c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        int* a0 = a, a1 = a + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda;
        for (int r = 0; r < pairs; r++, b += PanelWidth)
        {
            var b0 = Vector256.Load(b).AsInt16();
            var b1 = Vector256.Load(b + 8).AsInt16();
            var x = Vector256.Create(a0[r]).AsInt16(); c00 += Avx2.MultiplyAddAdjacent(x, b0); c01 += Avx2.MultiplyAddAdjacent(x, b1);
            x = Vector256.Create(a1[r]).AsInt16(); c10 += Avx2.MultiplyAddAdjacent(x, b0); c11 += Avx2.MultiplyAddAdjacent(x, b1);
            x = Vector256.Create(a2[r]).AsInt16(); c20 += Avx2.MultiplyAddAdjacent(x, b0); c21 += Avx2.MultiplyAddAdjacent(x, b1);
            x = Vector256.Create(a3[r]).AsInt16(); c30 += Avx2.MultiplyAddAdjacent(x, b0); c31 += Avx2.MultiplyAddAdjacent(x, b1);
            x = Vector256.Create(a4[r]).AsInt16(); c40 += Avx2.MultiplyAddAdjacent(x, b0); c41 += Avx2.MultiplyAddAdjacent(x, b1);
            x = Vector256.Create(a5[r]).AsInt16(); c50 += Avx2.MultiplyAddAdjacent(x, b0); c51 += Avx2.MultiplyAddAdjacent(x, b1);
        }
        Store(c, width, c00, c01); Store(c + ldc, width, c10, c11); Store(c + 2 * ldc, width, c20, c21);
        Store(c + 3 * ldc, width, c30, c31); Store(c + 4 * ldc, width, c40, c41); Store(c + 5 * ldc, width, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel1(int* a, int* b, int pairs, int* c, int width)
    {
        Vector256<int> c0 = default, c1 = default;
        for (int r = 0; r < pairs; r++, b += PanelWidth)
        {
            var x = Vector256.Create(a[r]).AsInt16();
            c0 += Avx2.MultiplyAddAdjacent(x, Vector256.Load(b).AsInt16());
            c1 += Avx2.MultiplyAddAdjacent(x, Vector256.Load(b + 8).AsInt16());
        }
        Store(c, width, c0, c1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(int* c, int width, Vector256<int> lo, Vector256<int> hi)
    {
        if (width == PanelWidth)
        {
            lo.Store(c);
            hi.Store(c + 8);
            return;
        }
        for (int j = 0; j < width; j++) c[j] = j < 8 ? lo.GetElement(j) : hi.GetElement(j - 8);
    }
}
