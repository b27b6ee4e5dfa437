using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TerDiT.Runtime.Ops;

/// <summary>
/// Blocked fp32 matrix product <c>C (M, N) = A (M, K) · B (K, N)</c> for the float parts of the
/// runtime (attention scores and values, full-precision linears). B is first packed into column
/// panels of <see cref="PanelWidth"/> floats: panel <c>p</c> holds columns <c>[16p, 16p+16)</c> as
/// K consecutive rows of 16 floats, the last panel zero-padded. The micro-kernel keeps a 6×16 block
/// of C in twelve 256-bit registers and streams one panel; every element of C is the sum over k in
/// increasing order, so the result does not depend on how rows or panels are split over threads.
/// </summary>
public static unsafe class FloatGemm
{
    /// <summary>Columns of B per packed panel.</summary>
    public const int PanelWidth = 16;
    const int RowBlock = 6;

    /// <summary>Floats a packed B of <paramref name="k"/> rows and <paramref name="n"/> columns occupies.</summary>
    public static int PackedLength(int k, int n) => Panels(n) * k * PanelWidth;

    static int Panels(int n) => (n + PanelWidth - 1) / PanelWidth;

    /// <summary>Packs B (K, N), row-major with row stride <paramref name="ldb"/>, into panels.</summary>
    public static void PackRowMajor(ReadOnlySpan<float> b, int k, int n, int ldb, Span<float> packed)
    {
        CheckPack(b.Length, (long)(k - 1) * ldb + n, k, n, packed.Length);
        for (int p = 0, j0 = 0; j0 < n; p++, j0 += PanelWidth)
        {
            int w = Math.Min(PanelWidth, n - j0);
            Span<float> panel = packed.Slice(p * k * PanelWidth, k * PanelWidth);
            if (w == PanelWidth)
            {
                fixed (float* pb = b, pp = panel)
                    for (int r = 0; r < k; r++)
                    {
                        float* src = pb + (nint)r * ldb + j0, dst = pp + (nint)r * PanelWidth;
                        Vector256.Load(src).Store(dst);
                        Vector256.Load(src + 8).Store(dst + 8);
                    }
                continue;
            }
            for (int r = 0; r < k; r++)
            {
                Span<float> dst = panel.Slice(r * PanelWidth, PanelWidth);
                b.Slice(r * ldb + j0, w).CopyTo(dst);
                dst[w..].Clear(); // zero padding of the last panel
            }
        }
    }

    /// <summary>
    /// Packs B = Wᵀ where W (N, K) is row-major with row stride <paramref name="ldw"/> — the layout of
    /// a linear layer's weight (out, in) or of attention keys (tokens, head dim).
    /// </summary>
    public static void PackTransposed(ReadOnlySpan<float> w, int n, int k, int ldw, Span<float> packed)
    {
        CheckPack(w.Length, (long)(n - 1) * ldw + k, k, n, packed.Length);
        for (int p = 0, j0 = 0; j0 < n; p++, j0 += PanelWidth)
        {
            int width = Math.Min(PanelWidth, n - j0);
            Span<float> panel = packed.Slice(p * k * PanelWidth, k * PanelWidth);
            if (width < PanelWidth) panel.Clear(); // zero padding of the last panel
            // Full panels: 16×16 tiles transposed in registers; the rest element by element.
            int r0 = width == PanelWidth ? TransposeTiles(w.Slice(j0 * ldw), ldw, k, panel) : 0;
            for (int jj = 0; jj < width; jj++)
            {
                ReadOnlySpan<float> row = w.Slice((j0 + jj) * ldw, k);
                for (int r = r0; r < k; r++) panel[r * PanelWidth + jj] = row[r];
            }
        }
    }

    /// <summary>
    /// <c>panel[r · 16 + j] = w[j · ldw + r]</c> for j in [0, 16) and r below the last multiple of 16
    /// (AVX-512: 16×16 tiles) or 8 (AVX2: two 8×8 tiles a step) not above k, else nothing; returns the
    /// first r left to the caller.
    /// </summary>
    static int TransposeTiles(ReadOnlySpan<float> w, int ldw, int k, Span<float> panel)
    {
        int r0 = 0;
        fixed (float* pw = w, pp = panel)
        {
            if (Avx512F.IsSupported)
            {
                Vector512<float>* rows = stackalloc Vector512<float>[PanelWidth];
                for (; r0 + PanelWidth <= k; r0 += PanelWidth)
                {
                    for (int j = 0; j < PanelWidth; j++) rows[j] = Vector512.Load(pw + (nint)j * ldw + r0);
                    Transpose16.Run(rows, (Vector512<float>*)(pp + (nint)r0 * PanelWidth));
                }
            }
            else if (Avx2.IsSupported)
            {
                Vector256<float>* rows = stackalloc Vector256<float>[8];
                Vector256<float>* cols = stackalloc Vector256<float>[8];
                for (; r0 + 8 <= k; r0 += 8)
                    for (int j0 = 0; j0 < PanelWidth; j0 += 8)
                    {
                        for (int j = 0; j < 8; j++) rows[j] = Vector256.Load(pw + (nint)(j0 + j) * ldw + r0);
                        Transpose8.Run(rows, cols);
                        for (int r = 0; r < 8; r++) cols[r].Store(pp + (nint)(r0 + r) * PanelWidth + j0);
                    }
            }
        }
        return r0;
    }

    static void CheckPack(int sourceLength, long needed, int k, int n, int packedLength)
    {
        if (k <= 0 || n <= 0) throw new ArgumentException($"matrix dimensions must be positive, got K={k}, N={n}");
        if (sourceLength < needed) throw new ArgumentException($"source holds {sourceLength} floats, {needed} needed for K={k}, N={n}");
        if (packedLength < PackedLength(k, n)) throw new ArgumentException($"packed buffer holds {packedLength} floats, {PackedLength(k, n)} needed");
    }

    /// <summary>
    /// <c>C[i, j] = Σ_k A[i, k] · B[k, j]</c> for rows <c>[0, m)</c>, single-threaded. A is row-major
    /// with stride <paramref name="lda"/>, C with stride <paramref name="ldc"/>; <paramref name="bPacked"/>
    /// comes from <see cref="PackRowMajor"/> or <see cref="PackTransposed"/> with the same K and N.
    /// C is overwritten.
    /// </summary>
    public static void Multiply(ReadOnlySpan<float> a, int lda, int m, int k, ReadOnlySpan<float> bPacked, int n, Span<float> c, int ldc)
    {
        if (m == 0) return;
        Validate(a.Length, lda, m, k, bPacked.Length, n, c.Length, ldc);
        fixed (float* pa = a, pb = bPacked, pc = c)
            MultiplyBlock(pa, lda, 0, m, k, pb, n, 0, Panels(n), pc, ldc);
    }

    /// <summary>
    /// <see cref="Multiply"/> split into tiles of 48 rows × 64 columns run in parallel under
    /// <paramref name="parallel"/>; the result is bit-identical to the single-threaded one.
    /// </summary>
    public static void MultiplyParallel(ReadOnlySpan<float> a, int lda, int m, int k, ReadOnlySpan<float> bPacked, int n, Span<float> c, int ldc, ParallelOptions parallel)
    {
        const int TileRows = 8 * RowBlock, TilePanels = 4;
        if (m == 0) return;
        Validate(a.Length, lda, m, k, bPacked.Length, n, c.Length, ldc);
        int rowTiles = (m + TileRows - 1) / TileRows, panelTiles = (Panels(n) + TilePanels - 1) / TilePanels;
        fixed (float* pa = a, pb = bPacked, pc = c)
        {
            nint ia = (nint)pa, ib = (nint)pb, ic = (nint)pc;
            if (rowTiles * panelTiles == 1 || parallel.MaxDegreeOfParallelism == 1)
            {
                MultiplyBlock(pa, lda, 0, m, k, pb, n, 0, Panels(n), pc, ldc);
                return;
            }
            Parallel.For(0, rowTiles * panelTiles, parallel, tile =>
            {
                int rt = tile / panelTiles, pt = tile % panelTiles;
                MultiplyBlock((float*)ia, lda, rt * TileRows, Math.Min(m, (rt + 1) * TileRows), k,
                    (float*)ib, n, pt * TilePanels, Math.Min(Panels(n), (pt + 1) * TilePanels), (float*)ic, ldc);
            });
        }
    }

    static void Validate(int aLength, int lda, int m, int k, int bLength, int n, int cLength, int ldc)
    {
        if (m < 0 || k <= 0 || n <= 0) throw new ArgumentException($"invalid GEMM dimensions M={m}, K={k}, N={n}");
        if (lda < k || ldc < n) throw new ArgumentException($"strides lda={lda}, ldc={ldc} smaller than K={k}, N={n}");
        if (aLength < (long)(m - 1) * lda + k) throw new ArgumentException($"A holds {aLength} floats, too few for M={m}, K={k}, lda={lda}");
        if (cLength < (long)(m - 1) * ldc + n) throw new ArgumentException($"C holds {cLength} floats, too few for M={m}, N={n}, ldc={ldc}");
        if (bLength < PackedLength(k, n)) throw new ArgumentException($"packed B holds {bLength} floats, {PackedLength(k, n)} needed");
    }

    /// <summary>Rows [i0, i1) against panels [p0, p1); arguments already validated.</summary>
    internal static void MultiplyBlock(float* a, int lda, int i0, int i1, int k, float* bPacked, int n, int p0, int p1, float* c, int ldc)
    {
        for (int p = p0; p < p1; p++)
        {
            float* panel = bPacked + (long)p * k * PanelWidth;
            int j0 = p * PanelWidth, width = Math.Min(PanelWidth, n - j0);
            int i = i0;
            for (; i + RowBlock <= i1; i += RowBlock)
                Kernel6(a + (long)i * lda, lda, panel, k, c + (long)i * ldc + j0, ldc, width);
            for (; i < i1; i++)
                Kernel1(a + (long)i * lda, panel, k, c + (long)i * ldc + j0, width);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6(float* a, int lda, float* b, int k, float* c, int ldc, int width)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                         c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* a0 = a, a1 = a + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda;
        for (int r = 0; r < k; r++, b += PanelWidth)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a0[r]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[r]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[r]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[r]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[r]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[r]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
        }
        Store(c, width, c00, c01); Store(c + ldc, width, c10, c11); Store(c + 2 * ldc, width, c20, c21);
        Store(c + 3 * ldc, width, c30, c31); Store(c + 4 * ldc, width, c40, c41); Store(c + 5 * ldc, width, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel1(float* a, float* b, int k, float* c, int width)
    {
        Vector256<float> c0 = default, c1 = default;
        for (int r = 0; r < k; r++, b += PanelWidth)
        {
            var x = Vector256.Create(a[r]);
            c0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b), c0);
            c1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 8), c1);
        }
        Store(c, width, c0, c1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* c, int width, Vector256<float> lo, Vector256<float> hi)
    {
        if (width == PanelWidth)
        {
            lo.Store(c);
            hi.Store(c + 8);
            return;
        }
        // Last panel of a matrix whose N is not a multiple of 16: write only the valid columns.
        // (No stackalloc here: it would stop inlining and make the JIT spill the accumulators.)
        for (int j = 0; j < width; j++) c[j] = j < 8 ? lo.GetElement(j) : hi.GetElement(j - 8);
    }
}
