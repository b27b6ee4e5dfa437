using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TerDiT.Runtime.Cpu;

/// <summary>
/// Ternary linear layer <c>y = x · (alpha · W_t)ᵀ (+ bias)</c> on packed 2-bit weights, no dense
/// weights ever materialised. Shapes: x (M, K) row-major fp32, W (N, K) packed, bias (N) or empty,
/// y (M, N) row-major. Exact: the result equals <see cref="TernaryGemmReference.Exact"/> up to float
/// summation order. A8: bit-identical to <see cref="TernaryGemmReference.A8"/> on every path.
/// Vector paths use the lookup-table core <see cref="LutKernel"/>; <see cref="SimdPath.Scalar"/> runs the reference.
/// </summary>
public static unsafe class TernaryGemm
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
        options ??= TernaryGemmOptions.Default;
        Validate(x, m, w, y, bias);
        if (options.Threads < 0) throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "threads must be ≥ 0 (0 = all processors)");
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown GEMM mode");
        var path = options.Path ?? SimdPaths.Best;
        SimdPaths.EnsureSupported(path);
        if (m == 0) return;
        if (path == SimdPath.Scalar)
        {
            if (mode == GemmMode.Exact) TernaryGemmReference.Exact(x, m, w, y, bias);
            else TernaryGemmReference.A8(x, m, w, y, bias);
            return;
        }
        int threads = options.Threads == 0 ? Environment.ProcessorCount : options.Threads;
        using var pin = w.Data.Pin();
        fixed (float* px = x, py = y, pb = bias)
        {
            var job = new Job(px, m, (byte*)pin.Pointer, w.Rows, w.Cols, w.RowBytes, w.Alpha, py, bias.IsEmpty ? null : pb);
            switch (path, mode)
            {
                case (SimdPath.V512, GemmMode.Exact): Run<Vector512<float>, float, F512>(job, threads, mode); break;
                case (SimdPath.V256, GemmMode.Exact): Run<Vector256<float>, float, F256>(job, threads, mode); break;
                case (SimdPath.V128, GemmMode.Exact): Run<Vector128<float>, float, F128>(job, threads, mode); break;
                case (SimdPath.V512, GemmMode.A8): Run<Vector512<short>, short, S512>(job, threads, mode); break;
                case (SimdPath.V256, GemmMode.A8): Run<Vector256<short>, short, S256>(job, threads, mode); break;
                case (SimdPath.V128, GemmMode.A8): Run<Vector128<short>, short, S128>(job, threads, mode); break;
            }
        }
    }

    /// <summary>Throws on shapes that do not fit: x (m, K), y (m, N), bias (N) or empty.</summary>
    internal static void Validate(ReadOnlySpan<float> x, int m, PackedTernaryMatrix w, Span<float> y, ReadOnlySpan<float> bias)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, "token count must be ≥ 0");
        if (x.Length != (long)m * w.Cols)
            throw new ArgumentException($"x must be ({m}, {w.Cols}) = {(long)m * w.Cols} floats, got {x.Length}", nameof(x));
        if (y.Length != (long)m * w.Rows)
            throw new ArgumentException($"y must be ({m}, {w.Rows}) = {(long)m * w.Rows} floats, got {y.Length}", nameof(y));
        if (!bias.IsEmpty && bias.Length != w.Rows)
            throw new ArgumentException($"bias must be empty or {w.Rows} floats, got {bias.Length}", nameof(bias));
    }

    readonly struct Job(float* x, int m, byte* w, int n, int k, int rowBytes, float alpha, float* y, float* bias)
    {
        public readonly float* X = x, Y = y, Bias = bias;
        public readonly byte* W = w;
        public readonly int M = m, N = n, K = k, RowBytes = rowBytes;
        public readonly float Alpha = alpha;
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
        new Span<byte>(xT, checked((int)xtBytes)).Clear();
        new Span<byte>(acc, checked((int)accBytes)).Clear();
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

        LutKernel.Accumulate<TV, TE, TL>(xT, job.W, job.RowBytes, n0, n1, lut, chunk, acc);

        // y[m0 + t, n] from acc[n - n0, t], in row blocks of 16 so the read lines of acc stay in L1.
        float* bias = job.Bias;
        for (int b0 = n0; b0 < n1; b0 += Block)
        {
            int b1 = Math.Min(n1, b0 + Block);
            for (int t = 0; t < mCount; t++)
            {
                float* yr = job.Y + (nint)(m0 + t) * job.N;
                if (mode == GemmMode.Exact)
                {
                    float* a = (float*)acc + t - (nint)n0 * l;
                    for (int n = b0; n < b1; n++) yr[n] = job.Alpha * a[(nint)n * l];
                }
                else
                {
                    int* a = (int*)acc + t - (nint)n0 * l;
                    float combined = job.Alpha * scales[t];
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
