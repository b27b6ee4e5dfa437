using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TerDiT.Runtime.Ops;

namespace TerDiT.Runtime.Cpu;

/// <summary>
/// Ternary linear layer <c>y = x · (alpha · W_t)ᵀ (+ bias)</c> on packed 2-bit weights, no dense
/// weights ever materialised. Shapes: x (M, K) row-major fp32, W (N, K) packed, bias (N) or empty,
/// y (M, N) row-major. Exact: the result equals <see cref="TernaryGemmReference.Exact"/> up to float
/// summation order. A8: bit-identical to <see cref="TernaryGemmReference.A8"/> on every path.
/// Vector paths use the lookup-table core <see cref="LutKernel"/> (with few tokens: A8 on
/// <see cref="SimdPath.V512"/> the decode-and-multiply <see cref="TernaryGemv"/>, Exact on
/// <see cref="SimdPath.V512"/> and <see cref="SimdPath.V256"/> narrower tables);
/// <see cref="SimdPath.Scalar"/> runs the reference.
/// </summary>
public static unsafe partial class TernaryGemm
{
    /// <summary>
    /// Byte positions tabulated at a time (measured best on Zen 4: 16 for fp32 tables of 16 tokens,
    /// 32 for int16 tables of 32 tokens). A8 needs ≤ 64: 64 · 4 · 127 ≤ 32767 keeps int16 sums exact.
    /// </summary>
    internal const int ExactChunk = 16;
    internal const int A8Chunk = 32;

    /// <summary>Computes y; see the class summary for the exact semantics of each mode.</summary>
    public static void Multiply(ReadOnlySpan<float> x, int m, PackedTernaryMatrix w, Span<float> y,
        ReadOnlySpan<float> bias, GemmMode mode, TernaryGemmOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(w);
        Validate(x, m, w.Rows, w.Cols, y, bias);
        Core(x, m, [w], w.Rows, w.Cols, w.RowBytes, y, bias, mode, options ?? TernaryGemmOptions.Default);
    }

    /// <summary>
    /// Every part of a stack over the same x in one pass (one table build per token block for all
    /// parts): y holds the parts' results one after another, part i as (m, N_i) row-major at
    /// <c>y[m · RowOffset(i) ..]</c>, and is <c>m · Rows</c> floats; bias is empty or <c>Rows</c> floats
    /// (the parts' biases concatenated). Each part's result is exactly what
    /// <see cref="Multiply(ReadOnlySpan{float}, int, PackedTernaryMatrix, Span{float}, ReadOnlySpan{float}, GemmMode, TernaryGemmOptions?)"/>
    /// gives for it alone.
    /// </summary>
    public static void Multiply(ReadOnlySpan<float> x, int m, StackedTernaryMatrix w, Span<float> y,
        ReadOnlySpan<float> bias, GemmMode mode, TernaryGemmOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(w);
        Validate(x, m, w.Rows, w.Cols, y, bias);
        Core(x, m, w.Parts, w.Rows, w.Cols, w.RowBytes, y, bias, mode, options ?? TernaryGemmOptions.Default);
    }

    /// <summary>The parts (same K, rows stacked in order) against x; part i's result at y[m · (its first row) ..].</summary>
    static void Core(ReadOnlySpan<float> x, int m, IReadOnlyList<PackedTernaryMatrix> parts, int rows, int cols, int rowBytes,
        Span<float> y, ReadOnlySpan<float> bias, GemmMode mode, TernaryGemmOptions options)
    {
        if (options.Threads < 0) throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "threads must be ≥ 0 (0 = all processors)");
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown GEMM mode");
        var path = options.Path ?? SimdPaths.Best;
        SimdPaths.EnsureSupported(path);
        if (m == 0) return;
        if (path == SimdPath.Scalar)
        {
            for (int i = 0, row0 = 0; i < parts.Count; row0 += parts[i].Rows, i++)
            {
                Span<float> yi = y.Slice(m * row0, m * parts[i].Rows);
                ReadOnlySpan<float> bi = bias.IsEmpty ? default : bias.Slice(row0, parts[i].Rows);
                if (mode == GemmMode.Exact) TernaryGemmReference.Exact(x, m, parts[i], yi, bi);
                else TernaryGemmReference.A8(x, m, parts[i], yi, bi);
            }
            return;
        }
        int threads = options.Threads == 0 ? Environment.ProcessorCount : options.Threads;
        // Each part's bytes are pinned and read in place (they may be memory-mapped): no copies.
        var pins = new System.Buffers.MemoryHandle[parts.Count];
        Segment* segments = stackalloc Segment[parts.Count];
        try
        {
            for (int i = 0, row0 = 0; i < parts.Count; row0 += parts[i].Rows, i++)
            {
                pins[i] = parts[i].Data.Pin();
                segments[i] = new Segment(row0, parts[i].Rows, parts[i].Alpha, (byte*)pins[i].Pointer);
            }
            Dispatch(x, m, rows, cols, rowBytes, segments, parts.Count, y, bias, mode, path, threads);
        }
        finally
        {
            foreach (var pin in pins) pin.Dispose();
        }
    }

    static void Dispatch(ReadOnlySpan<float> x, int m, int rows, int cols, int rowBytes, Segment* segments, int segmentCount,
        Span<float> y, ReadOnlySpan<float> bias, GemmMode mode, SimdPath path, int threads)
    {
        fixed (float* px = x, py = y, pb = bias)
        {
            var job = new Job(px, m, rows, cols, rowBytes, segments, segmentCount, py, bias.IsEmpty ? null : pb);
            if (path is SimdPath.V512 or SimdPath.V256 && m <= TernaryGemv.MaxTokens)
            {
                // Few tokens: A8 decodes weights instead of tabulating (bit-identical, integer sums);
                // Exact narrows the tables to 4 or 8 token lanes, which gives every token the same
                // bits as the 16-lane kernel (same entries, same summation order), so a token's
                // result never depends on how many others share the call.
                if (mode == GemmMode.A8 && path == SimdPath.V512 && Avx512F.IsSupported && cols <= TernaryGemv.MaxA8Cols)
                {
                    RunGemv(job, threads);
                    return;
                }
                if (mode == GemmMode.Exact && Vector128.IsHardwareAccelerated) path = SimdPath.V128;
            }
            else if (path == SimdPath.V512 && mode == GemmMode.Exact && m <= 8 && Vector256.IsHardwareAccelerated) path = SimdPath.V256;
            switch (path, mode)
            {
                case (SimdPath.V512, GemmMode.Exact): Run<Vector512<float>, float, F512>(job, threads, mode); break;
                case (SimdPath.V256, GemmMode.Exact) when m <= 8: Run<Vector256<float>, float, F256>(job, threads, mode); break;
                case (SimdPath.V256, GemmMode.Exact): Run<Vector256<float>, float, F256x2>(job, threads, mode); break;
                case (SimdPath.V128, GemmMode.Exact): Run<Vector128<float>, float, F128>(job, threads, mode); break;
                case (SimdPath.V512, GemmMode.A8): Run<Vector512<short>, short, S512>(job, threads, mode); break;
                case (SimdPath.V256, GemmMode.A8): Run<Vector256<short>, short, S256x2>(job, threads, mode); break;
                case (SimdPath.V128, GemmMode.A8): Run<Vector128<short>, short, S128>(job, threads, mode); break;
            }
        }
    }

    /// <summary>Throws on shapes that do not fit: x (m, K), y (m, N), bias (N) or empty.</summary>
    internal static void Validate(ReadOnlySpan<float> x, int m, PackedTernaryMatrix w, Span<float> y, ReadOnlySpan<float> bias)
    {
        ArgumentNullException.ThrowIfNull(w);
        Validate(x, m, w.Rows, w.Cols, y, bias);
    }

    static void Validate(ReadOnlySpan<float> x, int m, int n, int k, Span<float> y, ReadOnlySpan<float> bias)
    {
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, "token count must be ≥ 0");
        if (x.Length != (long)m * k)
            throw new ArgumentException($"x must be ({m}, {k}) = {(long)m * k} floats, got {x.Length}", nameof(x));
        if (y.Length != (long)m * n)
            throw new ArgumentException($"y must be ({m}, {n}) = {(long)m * n} floats, got {y.Length}", nameof(y));
        if (!bias.IsEmpty && bias.Length != n)
            throw new ArgumentException($"bias must be empty or {n} floats, got {bias.Length}", nameof(bias));
    }

    /// <summary>
    /// Rows [Row0, Row0 + Rows) of the (stacked) weight: one part, scaled by Alpha, its packed row
    /// <c>r</c> at <c>W + r · RowBytes</c>.
    /// </summary>
    internal readonly struct Segment(int row0, int rows, float alpha, byte* w)
    {
        public readonly int Row0 = row0, Rows = rows;
        public readonly float Alpha = alpha;
        public readonly byte* W = w;
    }

    readonly struct Job(float* x, int m, int n, int k, int rowBytes, Segment* segments, int segmentCount, float* y, float* bias)
    {
        public readonly float* X = x, Y = y, Bias = bias;
        public readonly int M = m, N = n, K = k, RowBytes = rowBytes, SegmentCount = segmentCount;
        public readonly Segment* Segments = segments;
    }

    /// <summary>The few-token A8 path (<see cref="TernaryGemv"/>): row ranges of at least 64 rows spread over the threads.</summary>
    static void RunGemv(Job job, int threads)
    {
        int items = Math.Max(1, Math.Min(threads * 4, job.N / 64));
        int step = (job.N + items - 1) / items;
        void Item(int i)
        {
            int n0 = i * step, n1 = Math.Min(job.N, n0 + step);
            if (n0 < n1) GemvItem(job, n0, n1);
        }
        if (threads == 1 || items == 1)
            for (int i = 0; i < items; i++) Item(i);
        else
            Parallel.For(0, items, new ParallelOptions { MaxDegreeOfParallelism = threads }, Item);
    }

    /// <summary>A8 rows [n0, n1): quantize the (≤ 4) tokens as codes in floats, decode-and-multiply, rescale.</summary>
    static void GemvItem(Job job, int n0, int n1)
    {
        int m = job.M, k = job.K, kp = job.RowBytes * 4;
        long xsBytes = (long)m * kp * 4, sumsBytes = (long)(n1 - n0) * TernaryGemv.MaxTokens * 4;
        byte* s = Scratch.Get(xsBytes + sumsBytes + 64 + k);
        float* xs = (float*)s, sums = (float*)(s + xsBytes), scales = (float*)(s + xsBytes + sumsBytes);
        sbyte* q = (sbyte*)(scales + 16);
        for (int t = 0; t < m; t++)
        {
            float* d = xs + (nint)t * kp;
            scales[t] = ActivationQuantizer.QuantizeRow(new ReadOnlySpan<float>(job.X + (nint)t * k, k), new Span<sbyte>(q, k));
            for (int i = 0; i < k; i++) d[i] = q[i];
            new Span<float>(d + k, kp - k).Clear();
        }
        for (int i = 0; i < job.SegmentCount; i++)
        {
            Segment seg = job.Segments[i];
            int a = Math.Max(n0, seg.Row0), b = Math.Min(n1, seg.Row0 + seg.Rows);
            if (a >= b) continue;
            TernaryGemv.Rows(xs, m, kp, seg.W, job.RowBytes, a - seg.Row0, b - seg.Row0, sums + (nint)(a - n0) * TernaryGemv.MaxTokens);
            float* ys = job.Y + (nint)(job.M - 1) * seg.Row0; // element (t, n) at ys + t · Rows_s + n
            for (int t = 0; t < m; t++)
            {
                float* yr = ys + (nint)t * seg.Rows;
                float combined = seg.Alpha * scales[t];
                for (int n = a; n < b; n++)
                {
                    float v = sums[(nint)(n - n0) * TernaryGemv.MaxTokens + t] * combined; // an exact integer · (alpha · scale)
                    if (job.Bias != null) v += job.Bias[n];
                    yr[n] = v;
                }
            }
        }
    }

    /// <summary>Splits (token blocks of L) × (row ranges) over the threads; each worker owns its scratch.</summary>
    static void Run<TV, TE, TL>(Job job, int threads, GemmMode mode)
        where TV : unmanaged where TE : unmanaged where TL : ILanes<TV, TE>
    {
        int l = TL.Count;
        int mBlocks = (job.M + l - 1) / l;
        // Split rows only when there are too few token blocks to keep every thread busy.
        int nSplit = Math.Max(1, Math.Min((threads + mBlocks - 1) / mBlocks, (job.N + 3) / 4));
        int nStep = (job.N + nSplit - 1) / nSplit + 3 & ~3;
        nSplit = (job.N + nStep - 1) / nStep;
        int items = mBlocks * nSplit;
        void Item(int i)
        {
            int mb = i / nSplit, ns = i % nSplit;
            int m0 = mb * l, n0 = ns * nStep;
            RunItem<TV, TE, TL>(job, mode, m0, Math.Min(l, job.M - m0), n0, Math.Min(job.N, n0 + nStep));
        }
        if (threads == 1 || items == 1)
            for (int i = 0; i < items; i++) Item(i);
        else
            Parallel.For(0, items, new ParallelOptions { MaxDegreeOfParallelism = threads }, Item);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RunItem<TV, TE, TL>(Job job, GemmMode mode, int m0, int mCount, int n0, int n1)
        where TV : unmanaged where TE : unmanaged where TL : ILanes<TV, TE>
    {
        int l = TL.Count, kp = job.RowBytes * 4, nCount = n1 - n0;
        int chunk = mode == GemmMode.A8 ? A8Chunk : ExactChunk;
        long xtBytes = (long)kp * l * sizeof(TE), lutBytes = (long)(chunk | 1) * LutKernel.Entries * l * sizeof(TE);
        long accBytes = (long)nCount * l * 4, workBytes = (long)l * 4 + (mode == GemmMode.A8 ? (long)l * job.K : 0);
        byte* s = Scratch.Get(xtBytes + lutBytes + accBytes + workBytes);
        TE* xT = (TE*)s;
        TE* lut = (TE*)(s + xtBytes);
        byte* acc = s + xtBytes + lutBytes;
        float* scales = (float*)(acc + accBytes);
        sbyte* q = (sbyte*)(scales + l);   // A8: (mCount, K) quantized rows
        // AVX-512 and AVX2 paths transpose 16×16 / 8×8 tiles in registers; the others (and A8 blocks
        // holding a zero or non-finite row) go element by element.
        if (!LoadTransposed<TE, TL>(xT, job.X + (nint)m0 * job.K, job.K, mCount, kp, scales))
            LoadScalar(job, mode, m0, mCount, l, xT, xtBytes, scales, q);

        LutKernel.Accumulate<TV, TE, TL>(xT, job.Segments, job.SegmentCount, job.RowBytes, n0, n1, lut, chunk, acc);

        // y[m0 + t, n] from acc[n - n0, t], part by part: part s has (M, Rows_s) at Y + M · Row0_s.
        for (int i = 0; i < job.SegmentCount; i++)
        {
            Segment seg = job.Segments[i];
            int a = Math.Max(n0, seg.Row0), b = Math.Min(n1, seg.Row0 + seg.Rows);
            if (a >= b) continue;
            float* ys = job.Y + (nint)(job.M - 1) * seg.Row0; // element (t, n) at ys + t · Rows_s + n
            int nFast = StoreTransposed<TL>(job, mode == GemmMode.A8, acc, l, m0, mCount, n0, a, b, seg.Alpha, ys, seg.Rows, scales);
            StoreScalar(job, mode, acc, l, m0, mCount, n0, nFast, b, seg.Alpha, ys, seg.Rows, scales);
        }
    }

    /// <summary>Element-by-element xT (and A8 quantization through <see cref="ActivationQuantizer.QuantizeRow"/>).</summary>
    static void LoadScalar<TE>(Job job, GemmMode mode, int m0, int mCount, int l, TE* xT, long xtBytes, float* scales, sbyte* q) where TE : unmanaged
    {
        new Span<byte>(xT, checked((int)xtBytes)).Clear();
        // Transpose in column blocks of 16 so the written lines of xT stay in L1.
        const int Block = 16;
        if (mode == GemmMode.Exact)
        {
            float* xt = (float*)xT;
            for (int k0 = 0; k0 < job.K; k0 += Block)
                for (int t = 0; t < mCount; t++)
                {
                    float* xr = job.X + (nint)(m0 + t) * job.K;
                    for (int k = k0, k1 = Math.Min(job.K, k0 + Block); k < k1; k++) xt[(nint)k * l + t] = xr[k];
                }
        }
        else
        {
            for (int t = 0; t < mCount; t++)
                scales[t] = ActivationQuantizer.QuantizeRow(new ReadOnlySpan<float>(job.X + (nint)(m0 + t) * job.K, job.K),
                    new Span<sbyte>(q + (nint)t * job.K, job.K));
            short* qt = (short*)xT;
            for (int k0 = 0; k0 < job.K; k0 += Block)
                for (int t = 0; t < mCount; t++)
                {
                    sbyte* qr = q + (nint)t * job.K;
                    for (int k = k0, k1 = Math.Min(job.K, k0 + Block); k < k1; k++) qt[(nint)k * l + t] = qr[k];
                }
        }
    }

    /// <summary>xt (kp, 16) = the first <paramref name="mCount"/> rows of x (stride k) transposed, zero elsewhere.</summary>
    static void TransposeIn(float* xt, float* x, int k, int mCount, int kp)
    {
        Vector512<float>* rows = stackalloc Vector512<float>[16];
        Vector512<float>* cols = stackalloc Vector512<float>[16];
        int k0 = 0;
        for (; k0 + 16 <= k; k0 += 16)
        {
            for (int t = 0; t < 16; t++) rows[t] = t < mCount ? Vector512.Load(x + (nint)t * k + k0) : default;
            Transpose16.Run(rows, cols);
            for (int j = 0; j < 16; j++) cols[j].Store(xt + (nint)(k0 + j) * 16);
        }
        new Span<float>(xt + (nint)k0 * 16, (kp - k0) * 16).Clear();
        for (; k0 < k; k0++)
            for (int t = 0; t < mCount; t++) xt[(nint)k0 * 16 + t] = x[(nint)t * k + k0];
    }

    /// <summary>
    /// A8 for 32 tokens: per-row scales as <see cref="ActivationQuantizer.QuantizeRow"/>, then the
    /// quantized codes written transposed into qt (kp, 32), zero elsewhere — the same values, since
    /// each code is round_even(x · (127 / absmax)) either way. Returns false (nothing written) when a
    /// row is zero or not finite; the caller then takes the scalar path.
    /// </summary>
    static bool QuantizeTransposed(short* qt, float* x, int k, int mCount, int kp, float* scales)
    {
        float* inv = stackalloc float[32];
        for (int t = 0; t < 32; t++)
        {
            if (t >= mCount) { inv[t] = 0; continue; }
            float absmax = ActivationQuantizer.AbsMax(x + (nint)t * k, k);
            if (!float.IsFinite(absmax) || absmax == 0) return false;
            scales[t] = absmax / 127f;
            inv[t] = 127f / absmax;
        }
        Vector512<float> inv0 = Vector512.Load(inv), inv1 = Vector512.Load(inv + 16);
        Vector512<float>* rows = stackalloc Vector512<float>[16];
        Vector512<float>* lo = stackalloc Vector512<float>[16];
        Vector512<float>* hi = stackalloc Vector512<float>[16];
        int k0 = 0;
        for (; k0 + 16 <= k; k0 += 16)
        {
            for (int t = 0; t < 16; t++) rows[t] = t < mCount ? Vector512.Load(x + (nint)t * k + k0) : default;
            Transpose16.Run(rows, lo);
            if (mCount > 16)
            {
                for (int t = 0; t < 16; t++) rows[t] = t + 16 < mCount ? Vector512.Load(x + (nint)(t + 16) * k + k0) : default;
                Transpose16.Run(rows, hi);
            }
            else for (int j = 0; j < 16; j++) hi[j] = default;
            for (int j = 0; j < 16; j++)
            {
                var q0 = Vector512.ConvertToInt32(Vector512.Round(lo[j] * inv0));
                var q1 = Vector512.ConvertToInt32(Vector512.Round(hi[j] * inv1));
                Vector512.Narrow(q0, q1).Store(qt + (nint)(k0 + j) * 32);
            }
        }
        new Span<short>(qt + (nint)k0 * 32, (kp - k0) * 32).Clear();
        for (; k0 < k; k0++)
            for (int t = 0; t < mCount; t++)
                qt[(nint)k0 * 32 + t] = (short)Math.Clamp(MathF.Round(x[(nint)t * k + k0] * inv[t], MidpointRounding.ToEven), -127f, 127f);
        return true;
    }

    /// <summary>
    /// Writes rows [a, a + 16·⌊(b − a) / 16⌋) of y (element (t, n) at <c>y + t · ld + n</c>) from acc
    /// (row n at <c>n − n0</c>, L = 16 floats or 32 ints a row) by 16×16 transposes; returns the
    /// first row left for <see cref="StoreScalar"/>. The arithmetic is the scalar path's:
    /// <c>alpha · a</c> (Exact) or <c>(float)a · (alpha · scale)</c> (A8), then <c>+ bias</c>.
    /// </summary>
    static int StoreTransposed(Job job, bool a8, byte* acc, int l, int m0, int mCount, int n0, int a, int b, float alpha, float* y, int ld, float* scales)
    {
        Vector512<float>* rows = stackalloc Vector512<float>[16];
        Vector512<float>* cols = stackalloc Vector512<float>[16];
        var valpha = Vector512.Create(alpha);
        int nb = a;
        for (; nb + 16 <= b; nb += 16)
        {
            for (int half = 0; half * 16 < mCount; half++)
            {
                for (int i = 0; i < 16; i++) rows[i] = Vector512.Load((float*)(acc + (nint)(nb - n0 + i) * l * 4) + half * 16);
                Transpose16.Run(rows, cols);
                for (int t = half * 16; t < Math.Min(mCount, half * 16 + 16); t++)
                {
                    Vector512<float> v = a8
                        ? Vector512.ConvertToSingle(cols[t - half * 16].AsInt32()) * Vector512.Create(alpha * scales[t])
                        : valpha * cols[t - half * 16];
                    if (job.Bias != null) v += Vector512.Load(job.Bias + nb);
                    v.Store(y + (nint)(m0 + t) * ld + nb);
                }
            }
        }
        return nb;
    }

    /// <summary>Rows [nFrom, n1) of y (as in <see cref="StoreTransposed"/>) element by element, in row blocks of 16 so the read lines of acc stay in L1.</summary>
    static void StoreScalar(Job job, GemmMode mode, byte* acc, int l, int m0, int mCount, int n0, int nFrom, int n1, float alpha, float* y, int ld, float* scales)
    {
        const int Block = 16;
        float* bias = job.Bias;
        for (int b0 = nFrom; b0 < n1; b0 += Block)
        {
            int b1 = Math.Min(n1, b0 + Block);
            for (int t = 0; t < mCount; t++)
            {
                float* yr = y + (nint)(m0 + t) * ld;
                if (mode == GemmMode.Exact)
                {
                    float* a = (float*)acc + t - (nint)n0 * l;
                    for (int n = b0; n < b1; n++) yr[n] = alpha * a[(nint)n * l];
                }
                else
                {
                    int* a = (int*)acc + t - (nint)n0 * l;
                    float combined = alpha * scales[t];
                    for (int n = b0; n < b1; n++) yr[n] = a[(nint)n * l] * combined;
                }
                if (bias != null)
                    for (int n = b0; n < b1; n++) yr[n] += bias[n];
            }
        }
    }

    /// <summary>Per-thread pinned scratch, grown on demand and kept for the thread's lifetime.</summary>
    static class Scratch
    {
        [ThreadStatic] static byte[]? buffer;

        public static byte* Get(long bytes)
        {
            if (buffer == null || buffer.Length < bytes + 64)
                buffer = GC.AllocateUninitializedArray<byte>(checked((int)(bytes + 64)), pinned: true);
            nint p = (nint)Unsafe.AsPointer(ref buffer[0]);
            return (byte*)((p + 63) & ~(nint)63);
        }
    }
}
