using System.Runtime.CompilerServices;
using TerDiT.Runtime.Format;

namespace TerDiT.Runtime.Cpu;

/// <summary>
/// The lookup-table ternary GEMM core (T-MAC style), one source for every width and both modes.
/// A packed byte holds the codes of 4 trits whose columns are <c>128·b + j + {0, 32, 64, 96}</c>
/// (docs/TERNARY-LAYOUT.md); for a block of <c>L</c> tokens the kernel tabulates, per byte
/// position p, all 81 signed sums <c>±x0 ±x1 ±x2 ±x3</c> (zero terms included) as vectors of L
/// tokens at table index = the byte's value. Each weight byte then costs one vector add of a
/// table entry: 4·L multiply-adds for one add, no multiplies at all.
/// </summary>
internal static unsafe class LutKernel
{
    /// <summary>Table entries per byte position: every byte value (only the 81 without a code 3 are written or read).</summary>
    public const int Entries = 256;

    /// <summary>
    /// Accumulates <c>Σ_k W_t[n, k] · xT[k, :]</c> for n in [n0, n1) of the stacked rows of
    /// <paramref name="segments"/> (row n in the segment that holds it) into <paramref name="acc"/>
    /// (row n at <c>acc + (n - n0) · L · 4</c> bytes, L 32-bit values; what was there is overwritten).
    /// <paramref name="xT"/> is (paddedCols, L): column-major activations of L tokens, zero past
    /// the real columns and tokens. A chunk of byte positions is tabulated, then swept over all rows.
    /// <paramref name="lut"/> holds <c>256 · (chunk | 1) · L</c> elements.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Accumulate<TV, TE, TL>(TE* xT, TernaryGemm.Segment* segments, int segmentCount, int rowBytes, int n0, int n1, TE* lut, int chunk, byte* acc)
        where TV : unmanaged where TE : unmanaged where TL : ILanes<TV, TE>
    {
        int l = TL.Count, vl = l / TL.Vectors;
        int accStride = l * 4;
        // Table layout [code][position in chunk][L]: with an odd row stride the 81 live codes of
        // consecutive positions spread over all cache sets (a [position][code] layout would map
        // every position's entry c to the same set and waste 2/3 of L1 and L2).
        int stride = chunk | 1;
        nint codeStride = (nint)stride * l * sizeof(TE);
        for (int p0 = 0; p0 < rowBytes; p0 += chunk)
        {
            int groups = Math.Min(chunk, rowBytes - p0);
            bool add = p0 > 0; // the first chunk's sums replace the accumulators: no clearing needed
            for (int g = 0; g < groups; g++)
                for (int v = 0; v < TL.Vectors; v++) Tabulate<TV, TE, TL>(xT + v * vl, p0 + g, lut + (nint)g * l + v * vl, stride);
            for (int si = 0; si < segmentCount; si++)
            {
                var seg = segments[si];
                int sa = Math.Max(n0, seg.Row0), sb = Math.Min(n1, seg.Row0 + seg.Rows);
                byte* w = seg.W - (nint)seg.Row0 * rowBytes; // stacked row n at w + n · rowBytes
                int n = sa;
                if (TL.Vectors == 2)
                {
                    SweepPairs<TV, TE, TL>(w, rowBytes, p0, groups, sa, sb, n0, lut, codeStride, acc, add);
                    continue;
                }
                for (; n + 8 <= sb; n += 8)
                {
                    byte* w0 = w + (nint)n * rowBytes + p0;
                    nint rb = rowBytes;
                    TV a0 = TL.Zero, a1 = TL.Zero, a2 = TL.Zero, a3 = TL.Zero, a4 = TL.Zero, a5 = TL.Zero, a6 = TL.Zero, a7 = TL.Zero;
                    byte* t = (byte*)lut;
                    byte* end = w0 + groups;
                    for (byte* r = w0; r < end; r++, t += l * sizeof(TE))
                    {
                        byte* r4 = r + 4 * rb;
                        a0 = TL.Add(a0, TL.Load((TE*)(t + r[0] * codeStride)));
                        a1 = TL.Add(a1, TL.Load((TE*)(t + r[rb] * codeStride)));
                        a2 = TL.Add(a2, TL.Load((TE*)(t + r[2 * rb] * codeStride)));
                        a3 = TL.Add(a3, TL.Load((TE*)(t + r[3 * rb] * codeStride)));
                        a4 = TL.Add(a4, TL.Load((TE*)(t + r4[0] * codeStride)));
                        a5 = TL.Add(a5, TL.Load((TE*)(t + r4[rb] * codeStride)));
                        a6 = TL.Add(a6, TL.Load((TE*)(t + r4[2 * rb] * codeStride)));
                        a7 = TL.Add(a7, TL.Load((TE*)(t + r4[3 * rb] * codeStride)));
                    }
                    byte* d = acc + (nint)(n - n0) * accStride;
                    TL.Flush(a0, d, add); TL.Flush(a1, d + accStride, add); TL.Flush(a2, d + 2 * accStride, add); TL.Flush(a3, d + 3 * accStride, add);
                    d += 4 * accStride;
                    TL.Flush(a4, d, add); TL.Flush(a5, d + accStride, add); TL.Flush(a6, d + 2 * accStride, add); TL.Flush(a7, d + 3 * accStride, add);
                }
                for (; n < sb; n++)
                {
                    byte* w0 = w + (nint)n * rowBytes + p0;
                    TV a0 = TL.Zero;
                    byte* t = (byte*)lut;
                    for (int g = 0; g < groups; g++, t += l * sizeof(TE)) a0 = TL.Add(a0, TL.Load((TE*)(t + w0[g] * codeStride)));
                    TL.Flush(a0, acc + (nint)(n - n0) * accStride, add);
                }
            }
        }
    }

    /// <summary>
    /// The sweep over rows [sa, sb) for entries of two vectors (<see cref="ILanes{TV, TE}.Vectors"/> = 2):
    /// 6 rows a pass (12 accumulators: AVX2 has 16 registers), each lookup's one address feeding both
    /// halves. Same entries in the same order as the one-vector sweep.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void SweepPairs<TV, TE, TL>(byte* w, int rowBytes, int p0, int groups, int sa, int sb, int n0, TE* lut, nint codeStride, byte* acc, bool add)
        where TV : unmanaged where TE : unmanaged where TL : ILanes<TV, TE>
    {
        int l = TL.Count, half = l / 2 * sizeof(TE), accStride = l * 4, accHalf = l / 2 * 4;
        nint rb = rowBytes;
        int n = sa;
        for (; n + 6 <= sb; n += 6)
        {
            byte* w0 = w + (nint)n * rowBytes + p0;
            TV a0 = TL.Zero, b0 = TL.Zero, a1 = TL.Zero, b1 = TL.Zero, a2 = TL.Zero, b2 = TL.Zero, a3 = TL.Zero, b3 = TL.Zero;
            TV a4 = TL.Zero, b4 = TL.Zero, a5 = TL.Zero, b5 = TL.Zero;
            byte* t = (byte*)lut;
            byte* end = w0 + groups;
            for (byte* r = w0; r < end; r++, t += l * sizeof(TE))
            {
                byte* r4 = r + 4 * rb;
                byte* e0 = t + r[0] * codeStride, e1 = t + r[rb] * codeStride, e2 = t + r[2 * rb] * codeStride, e3 = t + r[3 * rb] * codeStride;
                byte* e4 = t + r4[0] * codeStride, e5 = t + r4[rb] * codeStride;
                a0 = TL.Add(a0, TL.Load((TE*)e0)); b0 = TL.Add(b0, TL.Load((TE*)(e0 + half)));
                a1 = TL.Add(a1, TL.Load((TE*)e1)); b1 = TL.Add(b1, TL.Load((TE*)(e1 + half)));
                a2 = TL.Add(a2, TL.Load((TE*)e2)); b2 = TL.Add(b2, TL.Load((TE*)(e2 + half)));
                a3 = TL.Add(a3, TL.Load((TE*)e3)); b3 = TL.Add(b3, TL.Load((TE*)(e3 + half)));
                a4 = TL.Add(a4, TL.Load((TE*)e4)); b4 = TL.Add(b4, TL.Load((TE*)(e4 + half)));
                a5 = TL.Add(a5, TL.Load((TE*)e5)); b5 = TL.Add(b5, TL.Load((TE*)(e5 + half)));
            }
            byte* d = acc + (nint)(n - n0) * accStride;
            TL.Flush(a0, d, add); TL.Flush(b0, d + accHalf, add);
            TL.Flush(a1, d + accStride, add); TL.Flush(b1, d + accStride + accHalf, add);
            TL.Flush(a2, d + 2 * accStride, add); TL.Flush(b2, d + 2 * accStride + accHalf, add);
            TL.Flush(a3, d + 3 * accStride, add); TL.Flush(b3, d + 3 * accStride + accHalf, add);
            TL.Flush(a4, d + 4 * accStride, add); TL.Flush(b4, d + 4 * accStride + accHalf, add);
            TL.Flush(a5, d + 5 * accStride, add); TL.Flush(b5, d + 5 * accStride + accHalf, add);
        }
        for (; n < sb; n++)
        {
            byte* w0 = w + (nint)n * rowBytes + p0;
            TV a0 = TL.Zero, b0 = TL.Zero;
            byte* t = (byte*)lut;
            for (int g = 0; g < groups; g++, t += l * sizeof(TE))
            {
                byte* e = t + w0[g] * codeStride;
                a0 = TL.Add(a0, TL.Load((TE*)e));
                b0 = TL.Add(b0, TL.Load((TE*)(e + half)));
            }
            byte* d = acc + (nint)(n - n0) * accStride;
            TL.Flush(a0, d, add);
            TL.Flush(b0, d + accHalf, add);
        }
    }

    /// <summary>
    /// Writes the 81 valid entries of byte position <paramref name="p"/>: entry
    /// <c>c0 | c1 &lt;&lt; 2 | c2 &lt;&lt; 4 | c3 &lt;&lt; 6</c> = <c>Σ_i (c_i − 1) · x_i</c>, x_i the column
    /// <c>128·(p / 32) + p % 32 + 32·i</c>, computed as (pair 0,1) + (pair 2,3). Entry c lives at
    /// <c>t + c · stride · L</c>. Straight-line code: the 18 pair values stay in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Tabulate<TV, TE, TL>(TE* xT, int p, TE* t, int stride)
        where TV : unmanaged where TE : unmanaged where TL : ILanes<TV, TE>
    {
        int l = TL.Count;
        TE* x = xT + (nint)((p >> 5) * TernaryPacking.BlockTrits + (p & 31)) * l;
        nint cs = (nint)stride * l; // elements from one code to the next
        // The 9 values (c0 − 1)·a + (c1 − 1)·b of the low pair, named by their 4-bit code c0 | c1 << 2.
        TV a = TL.Load(x), b = TL.Load(x + 32 * l);
        TV sum = TL.Add(a, b), diff = TL.Sub(a, b);
        TV l0 = TL.Negate(sum), l1 = TL.Negate(b), l2 = diff, l4 = TL.Negate(a), l5 = TL.Zero, l6 = a, l8 = TL.Negate(diff), l9 = b, l10 = sum;
        // The high pair's values, each completing one row of 9 entries (codes hi << 4 | lo).
        TV c = TL.Load(x + 64 * l), d = TL.Load(x + 96 * l);
        TV hs = TL.Add(c, d), hd = TL.Sub(c, d);
        nint row = 16 * cs;
        Row<TV, TE, TL>(t, cs, TL.Negate(hs), l0, l1, l2, l4, l5, l6, l8, l9, l10);
        Row<TV, TE, TL>(t + row, cs, TL.Negate(d), l0, l1, l2, l4, l5, l6, l8, l9, l10);
        Row<TV, TE, TL>(t + 2 * row, cs, hd, l0, l1, l2, l4, l5, l6, l8, l9, l10);
        Row<TV, TE, TL>(t + 4 * row, cs, TL.Negate(c), l0, l1, l2, l4, l5, l6, l8, l9, l10);
        Row<TV, TE, TL>(t + 5 * row, cs, TL.Zero, l0, l1, l2, l4, l5, l6, l8, l9, l10);
        Row<TV, TE, TL>(t + 6 * row, cs, c, l0, l1, l2, l4, l5, l6, l8, l9, l10);
        Row<TV, TE, TL>(t + 8 * row, cs, TL.Negate(hd), l0, l1, l2, l4, l5, l6, l8, l9, l10);
        Row<TV, TE, TL>(t + 9 * row, cs, d, l0, l1, l2, l4, l5, l6, l8, l9, l10);
        Row<TV, TE, TL>(t + 10 * row, cs, hs, l0, l1, l2, l4, l5, l6, l8, l9, l10);
    }

    /// <summary>The 9 entries <c>lo + h</c> of one high-pair value h, at the low pair's codes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Row<TV, TE, TL>(TE* r, nint cs, TV h, TV l0, TV l1, TV l2, TV l4, TV l5, TV l6, TV l8, TV l9, TV l10)
        where TV : unmanaged where TE : unmanaged where TL : ILanes<TV, TE>
    {
        TL.Store(r, TL.Add(l0, h));
        TL.Store(r + cs, TL.Add(l1, h));
        TL.Store(r + 2 * cs, TL.Add(l2, h));
        TL.Store(r + 4 * cs, TL.Add(l4, h));
        TL.Store(r + 5 * cs, TL.Add(l5, h));
        TL.Store(r + 6 * cs, TL.Add(l6, h));
        TL.Store(r + 8 * cs, TL.Add(l8, h));
        TL.Store(r + 9 * cs, TL.Add(l9, h));
        TL.Store(r + 10 * cs, TL.Add(l10, h));
    }
}
