using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TerDiT.Runtime.Ops;

namespace TerDiT.Runtime.Cpu;

public static unsafe partial class TernaryGemm
{
    /// <summary>
    /// The SwiGLU feed-forward <c>y = w2 · (silu(w1 · x) ⊙ (w3 · x))</c>, fused per block of tokens
    /// (the lanes of one table entry): the w1/w3 sums stay in
    /// the kernel's token-lane layout and are gated there, and that layout is already the transposed
    /// input w2's tables are built from, so the (m, F) intermediates are never written row-major,
    /// gated in a separate pass, re-read and transposed back. Bit-identical to <c>Multiply(x, w13)</c>,
    /// <see cref="Elementwise.SwiGluGate"/>, <c>Multiply(·, w2)</c> (same products, same A8
    /// quantization, same sums). Shapes: x (m, K), <paramref name="w13"/> = [w1; w3], each (F, K),
    /// <paramref name="w2"/> (D, F), y (m, D); no biases. Runs only where that fusion is the fast
    /// path — AVX-512 or AVX2 (blocks of 16 tokens in Exact, 32 in A8), F a multiple of 16,
    /// a block's w1/w3 sums within <see cref="MaxFusedGateBytes"/>,
    /// more tokens than the few-token kernels take and at least one block per thread — and returns
    /// false without writing anything otherwise.
    /// </summary>
    public static bool TrySwiGlu(ReadOnlySpan<float> x, int m, StackedTernaryMatrix w13, PackedTernaryMatrix w2, Span<float> y,
        GemmMode mode, TernaryGemmOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(w13);
        ArgumentNullException.ThrowIfNull(w2);
        if (w13.Parts.Count != 2 || w13.Parts[0].Rows != w13.Parts[1].Rows || w2.Cols != w13.Parts[0].Rows)
            throw new ArgumentException($"SwiGLU needs w1, w3 (F, K) and w2 (D, F): got [{string.Join(", ", w13.Parts.Select(p => $"({p.Rows}, {p.Cols})"))}] and ({w2.Rows}, {w2.Cols})");
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), m, "token count must be ≥ 0");
        if (x.Length != (long)m * w13.Cols)
            throw new ArgumentException($"x must be ({m}, {w13.Cols}) = {(long)m * w13.Cols} floats, got {x.Length}", nameof(x));
        if (y.Length != (long)m * w2.Rows)
            throw new ArgumentException($"y must be ({m}, {w2.Rows}) = {(long)m * w2.Rows} floats, got {y.Length}", nameof(y));
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown GEMM mode");
        options ??= TernaryGemmOptions.Default;
        if (options.Threads < 0) throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "threads must be ≥ 0 (0 = all processors)");
        int threads = options.Threads == 0 ? Environment.ProcessorCount : options.Threads;
        bool a8 = mode == GemmMode.A8;
        var path = options.Path ?? SimdPaths.Best;
        bool wide = path == SimdPath.V512 && Avx512F.IsSupported;
        if (!wide && !(path == SimdPath.V256 && Avx2.IsSupported)) return false;
        int f = w2.Cols, lanes = a8 ? 32 : 16, blocks = (m + lanes - 1) / lanes;
        // Dispatch sends fewer tokens than these to the GEMV (A8) or narrower-table (Exact) kernels.
        int fewTokens = a8 ? (wide ? TernaryGemv.MaxTokens : 0) : 8;
        if (f % 16 != 0 || m <= fewTokens || blocks < threads || 2L * f * lanes * 4 > MaxFusedGateBytes) return false;

        var pins = new[] { w13.Parts[0].Data.Pin(), w13.Parts[1].Data.Pin(), w2.Data.Pin() };
        try
        {
            Segment* gates = stackalloc Segment[2];
            gates[0] = new Segment(0, f, w13.Parts[0].Alpha, (byte*)pins[0].Pointer);
            gates[1] = new Segment(f, f, w13.Parts[1].Alpha, (byte*)pins[1].Pointer);
            var w2Segment = new Segment(0, w2.Rows, w2.Alpha, (byte*)pins[2].Pointer);
            fixed (float* px = x, py = y)
            {
                var up = new Job(px, m, 2 * f, w13.Cols, w13.RowBytes, gates, 2, null, null);
                var down = new Job(null, m, w2.Rows, f, w2.RowBytes, &w2Segment, 1, py, null);
                void Block(int b)
                {
                    switch (wide, a8)
                    {
                        case (true, true): SwiGluBlock<Vector512<short>, short, S512>(up, down, b * lanes, GemmMode.A8); break;
                        case (true, false): SwiGluBlock<Vector512<float>, float, F512>(up, down, b * lanes, GemmMode.Exact); break;
                        case (false, true): SwiGluBlock<Vector256<short>, short, S256x2>(up, down, b * lanes, GemmMode.A8); break;
                        case (false, false): SwiGluBlock<Vector256<float>, float, F256x2>(up, down, b * lanes, GemmMode.Exact); break;
                    }
                }
                if (threads == 1)
                    for (int b = 0; b < blocks; b++) Block(b);
                else
                    Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = threads }, Block);
            }
        }
        finally
        {
            foreach (var pin in pins) pin.Dispose();
        }
        return true;
    }

    /// <summary>
    /// The largest w1/w3 sums of one block (2·F·L·4 bytes) the fusion takes: a quarter of this Zen 4
    /// core's 1 MiB L2. Measured on a whole sampling step, fused against unfused in one process:
    /// TerDiT-S (256 KiB) 0.90–0.91× (A8) and 0.94× (Exact) the time; the 600M shape (A8 1 MiB)
    /// 1.02–1.05×, (Exact 512 KiB) 0.995–1.005×.
    /// </summary>
    public const long MaxFusedGateBytes = 256 * 1024;

    /// <summary>
    /// Tokens [m0, m0 + L) of <see cref="TrySwiGlu"/>: w1/w3 sums (2F, L) → the gate (F, L) as w2's
    /// transposed input (floats, or A8 int8 codes per token) → w2 sums (D, L) → y rows.
    /// </summary>
    static void SwiGluBlock<TV, TE, TL>(Job up, Job down, int m0, GemmMode mode)
        where TV : unmanaged where TE : unmanaged where TL : ILanes<TV, TE>
    {
        int l = TL.Count, size = sizeof(TE), chunk = mode == GemmMode.A8 ? A8Chunk : ExactChunk;
        int mCount = Math.Min(l, up.M - m0);
        int kp1 = up.RowBytes * 4, kp2 = down.RowBytes * 4;
        long xt1Bytes = Align64((long)kp1 * l * size), xt2Bytes = Align64((long)kp2 * l * size);
        long lutBytes = Align64((long)(chunk | 1) * LutKernel.Entries * l * size);
        long acc1Bytes = (long)up.N * l * 4, acc2Bytes = (long)down.N * l * 4;
        long smallBytes = 2 * l * 4 + (mode == GemmMode.A8 ? Align64((long)l * up.K) : 0);
        byte* s = Scratch.Get(xt1Bytes + xt2Bytes + lutBytes + acc1Bytes + acc2Bytes + smallBytes);
        TE* xT1 = (TE*)s, xT2 = (TE*)(s + xt1Bytes), lut = (TE*)(s + xt1Bytes + xt2Bytes);
        byte* acc1 = s + xt1Bytes + xt2Bytes + lutBytes, acc2 = acc1 + acc1Bytes;
        float* scales1 = (float*)(acc2 + acc2Bytes), scales2 = scales1 + l;
        sbyte* q = (sbyte*)(scales2 + l); // A8: (mCount, K) codes when a row needs the scalar quantizer

        // w1 and w3 over the block's tokens, as RunItem does for the stack [w1; w3].
        new Span<float>(scales1, l).Clear(); // A8 tokens past mCount: zero sums times a zero scale
        if (!LoadTransposed<TE, TL>(xT1, up.X + (nint)m0 * up.K, up.K, mCount, kp1, scales1))
            LoadScalar(up, mode, m0, mCount, l, xT1, (long)kp1 * l * size, scales1, q);
        LutKernel.Accumulate<TV, TE, TL>(xT1, up.Segments, 2, up.RowBytes, 0, up.N, lut, chunk, acc1);

        float alpha1 = up.Segments[0].Alpha, alpha3 = up.Segments[1].Alpha;
        bool wide = typeof(TL) == typeof(F512) || typeof(TL) == typeof(S512);
        switch (mode, wide)
        {
            case (GemmMode.Exact, true): GateExact(acc1, down.K, alpha1, alpha3, (float*)xT2); break;
            case (GemmMode.Exact, false): GateExact8(acc1, down.K, alpha1, alpha3, (float*)xT2); break;
            case (_, true): GateA8(acc1, down.K, alpha1, alpha3, scales1, mCount, (short*)xT2, scales2); break;
            default: GateA8x8(acc1, down.K, alpha1, alpha3, scales1, mCount, (short*)xT2, scales2); break;
        }
        new Span<byte>((byte*)xT2 + (nint)down.K * l * size, (kp2 - down.K) * l * size).Clear();

        // w2 and the output rows.
        LutKernel.Accumulate<TV, TE, TL>(xT2, down.Segments, 1, down.RowBytes, 0, down.N, lut, chunk, acc2);
        float alpha = down.Segments[0].Alpha;
        int nFast = StoreTransposed<TL>(down, mode == GemmMode.A8, acc2, l, m0, mCount, 0, 0, down.N, alpha, down.Y, down.N, scales2);
        StoreScalar(down, mode, acc2, l, m0, mCount, 0, nFast, down.N, alpha, down.Y, down.N, scales2);
    }

    /// <summary>
    /// Exact: row n of w2's input xT (F, 16) = silu(alpha1 · acc[n]) · (alpha3 · acc[F + n]), each
    /// product formed as <see cref="StoreTransposed"/> forms it.
    /// </summary>
    static void GateExact(byte* acc, int f, float alpha1, float alpha3, float* xT)
    {
        var g1 = Vector512.Create(alpha1);
        var g3 = Vector512.Create(alpha3);
        float* a = (float*)acc, b = a + (nint)f * 16;
        for (int n = 0; n < f; n++)
            Elementwise.SwiGlu(g1 * Vector512.Load(a + (nint)n * 16), g3 * Vector512.Load(b + (nint)n * 16))
                .Store(xT + (nint)n * 16);
    }

    /// <summary>
    /// A8: the gate of 32 tokens from the int32 sums (in place over rows [0, F) of acc), then its
    /// per-token int8 codes written straight into w2's input xT (F, 32) and the scales into
    /// <paramref name="scales2"/> — the values <see cref="ActivationQuantizer.QuantizeRow"/> gives on the
    /// row-major gated rows (same absmax, same poison rule for NaN and infinity, same rounding).
    /// </summary>
    static void GateA8(byte* acc, int f, float alpha1, float alpha3, float* scales1, int mCount, short* xT, float* scales2)
    {
        const int l = 32;
        var g1 = Vector512.Create(alpha1);
        var g3 = Vector512.Create(alpha3);
        Vector512<float> c1Lo = g1 * Vector512.Load(scales1), c1Hi = g1 * Vector512.Load(scales1 + 16);
        Vector512<float> c3Lo = g3 * Vector512.Load(scales1), c3Hi = g3 * Vector512.Load(scales1 + 16);
        Vector512<float> maxLo = default, maxHi = default, poisonLo = default, poisonHi = default;
        for (int n = 0; n < f; n++)
        {
            int* a = (int*)(acc + (nint)n * l * 4), b = (int*)(acc + (nint)(f + n) * l * 4);
            var lo = Elementwise.SwiGlu(Vector512.ConvertToSingle(Vector512.Load(a)) * c1Lo, Vector512.ConvertToSingle(Vector512.Load(b)) * c3Lo);
            var hi = Elementwise.SwiGlu(Vector512.ConvertToSingle(Vector512.Load(a + 16)) * c1Hi, Vector512.ConvertToSingle(Vector512.Load(b + 16)) * c3Hi);
            lo.Store((float*)a);
            hi.Store((float*)a + 16);
            maxLo = Vector512.MaxNative(maxLo, Vector512.Abs(lo));
            maxHi = Vector512.MaxNative(maxHi, Vector512.Abs(hi));
            poisonLo += lo * Vector512<float>.Zero;
            poisonHi += hi * Vector512<float>.Zero;
        }

        float* inv = stackalloc float[l];
        for (int t = 0; t < l; t++)
        {
            float absmax = t < 16 ? maxLo[t] : maxHi[t - 16];
            if (float.IsNaN(t < 16 ? poisonLo[t] : poisonHi[t - 16])) absmax = float.NaN;
            bool usable = t < mCount && float.IsFinite(absmax) && absmax != 0;
            scales2[t] = t >= mCount || absmax == 0 ? 0 : usable ? absmax / 127f : float.NaN;
            inv[t] = usable ? 127f / absmax : 0;
        }
        Vector512<float> invLo = Vector512.Load(inv), invHi = Vector512.Load(inv + 16);
        Vector512<int> keepLo = Vector512.GreaterThan(invLo, Vector512<float>.Zero).AsInt32();
        Vector512<int> keepHi = Vector512.GreaterThan(invHi, Vector512<float>.Zero).AsInt32();
        for (int n = 0; n < f; n++)
        {
            float* gRow = (float*)(acc + (nint)n * l * 4);
            var q0 = Vector512.ConvertToInt32(Vector512.Round(Vector512.Load(gRow) * invLo)) & keepLo;
            var q1 = Vector512.ConvertToInt32(Vector512.Round(Vector512.Load(gRow + 16) * invHi)) & keepHi;
            Vector512.Narrow(q0, q1).Store(xT + (nint)n * l);
        }
    }

    static long Align64(long bytes) => (bytes + 63) & ~63L;
}
