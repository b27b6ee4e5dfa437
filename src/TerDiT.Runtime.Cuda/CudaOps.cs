using TerDiT.Runtime.Cpu;

namespace TerDiT.Runtime.Cuda;

/// <summary>What a ternary GEMM does with its result (the kernels' <c>EPI_*</c>).</summary>
public enum GemmEpilogue
{
    /// <summary><c>y[m, n] = v (+ bias[n])</c>.</summary>
    Store = 0,
    /// <summary><c>y[m, n] += gate[m / tokens, n] · v</c> (the gated residual of a block).</summary>
    Residual = 1,
    /// <summary>Rows interleaved w1/w3 in groups of 8: <c>y[m, f] = silu(v_w1) · v_w3</c>.</summary>
    SwiGlu = 2,
}

/// <summary>Which ternary GEMM kernel runs: the tensor-core kernel with an automatic or forced tile, or the plain reference.</summary>
public enum GemmKernel
{
    Auto,
    /// <summary>Tensor cores, the large tile (128 tokens a block in A8, 64 in exact mode).</summary>
    LargeTile,
    /// <summary>Tensor cores, the small tile (64 tokens a block in A8, 32 in exact mode).</summary>
    SmallTile,
    /// <summary>One thread per output, codes read one at a time (the specification the others are tested against).</summary>
    Reference,
}

/// <summary>
/// The backend's kernels on one device with typed launchers. Device arguments are raw device addresses
/// (<see cref="DeviceBuffer{T}.Pointer"/> plus an offset), so views into larger buffers need no copies. Everything is
/// queued on the device's stream in order. Not thread-safe (one argument block is reused).
/// </summary>
public sealed class CudaOps : IDisposable
{
    public CudaDevice Device { get; }
    readonly CudaModule _gemm, _model, _attention;
    readonly KernelArgs _args = new();

    /// <summary>Whether every module came from the disk cache (no NVRTC compile in this process).</summary>
    public bool FromCache => _gemm.FromCache && _model.FromCache && _attention.FromCache;

    public CudaOps(CudaDevice device)
    {
        Device = device;
        _gemm = new CudaModule(device, "ternary_gemm.cu");
        _model = new CudaModule(device, "model_ops.cu");
        _attention = new CudaModule(device, "attention.cu");
    }

    static uint Blocks(long total, int per) => checked((uint)((total + per - 1) / per));

    internal void RepackTernary(PackedTernaryMatrix part, DeviceBuffer<uint> dst, int paddedCols, int index, bool interleave)
    {
        using var src = DeviceBuffer<byte>.From(Device, part.Data.Span);
        long words = (long)part.Rows * (paddedCols / 16);
        _gemm["repack_ternary"].Launch(Blocks(words, 256), 1, 1, 256, 1, 0, _args.Clear()
            .Add(src.Pointer).Add(part.Rows).Add(part.Cols).Add(part.RowBytes).Add(dst.Pointer).Add(paddedCols).Add(index).Add(interleave ? 1 : 0));
        Device.Synchronize(); // src is freed on return
    }

    /// <summary>Rows [0, m) of x (leading dimension ldx, k used columns) into <paramref name="planes"/>.</summary>
    public void QuantizeRows(ulong x, int m, int k, int ldx, ActivationPlanes planes)
    {
        CheckPlanes(planes, m, k);
        _gemm["quantize_rows"].Launch((uint)m, 1, 1, 256, 1, 0, _args.Clear().Add(x).Add(k).Add(ldx).Add(planes.Args));
    }

    /// <summary>
    /// <c>h = RMSNorm(x) · weight · (1 + scale) + shift</c> per token row of x (m, d), shift/scale of image
    /// <c>row / tokens</c> at <c>shift + image · modStride</c>, quantized into <paramref name="planes"/>.
    /// </summary>
    public void RmsNormModulateQuantize(ulong x, ulong weight, ulong shift, ulong scale, int modStride, int tokens, int m, int d, float eps, ActivationPlanes planes)
    {
        CheckPlanes(planes, m, d);
        _gemm["rmsnorm_modulate_quantize"].Launch((uint)m, 1, 1, 256, 1, d * sizeof(float), _args.Clear()
            .Add(x).Add(weight).Add(shift).Add(scale).Add(modStride).Add(tokens).Add(d).Add(eps).Add(planes.Args));
    }

    static void CheckPlanes(ActivationPlanes planes, int m, int k)
    {
        if (m > planes.RowCapacity || GpuTernaryLayout.PaddedCols(k) != planes.PaddedCols)
            throw new ArgumentException($"planes of {planes.RowCapacity} rows × {planes.PaddedCols} cannot hold {m} × {k}");
    }

    /// <summary>
    /// The ternary GEMM of <paramref name="planes"/> rows [0, m) with <paramref name="w"/>, through
    /// <paramref name="epilogue"/> into y (leading dimension ldy). Residual: gate of image b at
    /// <c>gate + b · gateStride</c>, images of <paramref name="tokens"/> rows.
    /// </summary>
    public void Gemm(ActivationPlanes planes, int m, DeviceTernaryMatrix w, GemmEpilogue epilogue, ulong y, int ldy,
        ulong gate = 0, int gateStride = 0, int tokens = 1, GemmKernel kernel = GemmKernel.Auto)
    {
        if (planes.PaddedCols != w.PaddedCols) throw new ArgumentException($"planes have {planes.PaddedCols} columns, the weights {w.PaddedCols}");
        if (m <= 0 || m > planes.RowCapacity) throw new ArgumentException($"{m} rows outside planes of {planes.RowCapacity}");
        if (epilogue == GemmEpilogue.SwiGlu != w.Interleaved) throw new ArgumentException("the SwiGLU epilogue needs interleaved w1/w3 weights, and only it");
        var e = new EpilogueArgs(y, ldy, w.Alpha.Pointer, w.Bias?.Pointer ?? 0, gate, gateStride, tokens);
        int t = planes.Terms;
        if (kernel == GemmKernel.Reference)
        {
            int cols = epilogue == GemmEpilogue.SwiGlu ? w.Rows / 2 : w.Rows;
            _gemm[$"gemm_reference_t{t}"].Launch(Blocks(cols, 128), (uint)m, 1, 128, 1, 0, _args.Clear()
                .Add(planes.Codes.Pointer).Add(planes.Scales.Pointer).Add(planes.RowSums.Pointer).Add(m).Add(planes.RowCapacity)
                .Add(planes.PaddedCols).Add(w.Codes.Pointer).Add(w.Rows).Add((int)epilogue).Add(e));
            return;
        }
        var tile = Tile(t, kernel == GemmKernel.Auto ? ChooseTile(t, m, w.PaddedRows) : kernel == GemmKernel.LargeTile);
        _gemm[$"gemm_t{t}_m{tile.Rows}_e{(int)epilogue}"].Launch((uint)(w.PaddedRows / 128), Blocks(m, tile.Rows), 1, (uint)tile.Threads, 1, tile.SharedBytes, _args.Clear()
            .Add(planes.Codes.Pointer).Add(planes.Scales.Pointer).Add(planes.RowSums.Pointer).Add(m).Add(planes.RowCapacity)
            .Add(planes.PaddedCols).Add(w.Codes.Pointer).Add(w.Rows).Add(e));
    }

    /// <summary>A kernel instance of ternary_gemm.cu: tokens a block, threads, dynamic shared memory (its STAGES × tile bytes).</summary>
    internal readonly record struct GemmTile(int Rows, int Threads, int SharedBytes);

    internal static GemmTile Tile(int terms, bool large) => (terms, large) switch
    {
        (1, true) => new(128, 256, 4 * (128 * 64 + 4 * 512)),
        (1, false) => new(64, 128, 4 * (64 * 64 + 4 * 512)),
        (3, true) => new(64, 256, 3 * (3 * 64 * 64 + 4 * 512)),
        _ => new(32, 128, 3 * (3 * 32 * 64 + 4 * 512)),
    };

    /// <summary>
    /// Whether <see cref="GemmKernel.Auto"/> takes the large tile: unless the small one finishes in fewer rounds of
    /// the GPU (rounds = blocks / (multiprocessors × blocks resident on one), a round of large blocks costing twice a
    /// round of small ones).
    /// </summary>
    public bool ChooseTile(int terms, int m, int paddedRows)
    {
        var large = Tile(terms, true);
        var small = Tile(terms, false);
        long nb = paddedRows / 128, sms = Device.Multiprocessors;
        double Cost(GemmTile t, int resident) => Math.Ceiling(nb * Math.Ceiling(m / (double)t.Rows) / (sms * resident)) * t.Rows;
        return Cost(large, 2) <= 1.15 * Cost(small, 3);
    }

    /// <summary><c>y (m, n) = act(x (m, k) · Wᵀ + bias)</c> in fp32, W (n, k) row-major; act SiLU when <paramref name="silu"/>.</summary>
    public void Linear(ulong x, ulong w, ulong bias, ulong y, int m, int n, int k, bool silu = false) =>
        _model["linear_f32"].Launch(Blocks(n, 16), Blocks(m, 16), 1, 16, 16, 0, _args.Clear()
            .Add(x).Add(w).Add(bias).Add(y).Add(m).Add(n).Add(k).Add(silu ? 1 : 0));

    public void Patchify(ulong x, ulong patches, int n, int channels, int size, int patch) =>
        _model["patchify"].Launch(Blocks((long)n * channels * size * size, 256), 1, 1, 256, 1, 0, _args.Clear()
            .Add(x).Add(patches).Add(n).Add(channels).Add(size).Add(patch));

    public void Unpatchify(ulong tokens, ulong output, int n, int channels, int size, int patch) =>
        _model["unpatchify"].Launch(Blocks((long)n * channels * size * size, 256), 1, 1, 256, 1, 0, _args.Clear()
            .Add(tokens).Add(output).Add(n).Add(channels).Add(size).Add(patch));

    public void TimestepFeatures(ulong timesteps, ulong frequencies, ulong output, int n) =>
        _model["timestep_features"].Launch((uint)n, 1, 1, 128, 1, 0, _args.Clear().Add(timesteps).Add(frequencies).Add(output).Add(n));

    public void Conditioning(ulong temb, ulong table, ulong labels, ulong siluC, int n, int cdim) =>
        _model["conditioning"].Launch(Blocks((long)n * cdim, 256), 1, 1, 256, 1, 0, _args.Clear()
            .Add(temb).Add(table).Add(labels).Add(siluC).Add(n).Add(cdim));

    public void RmsNormRows(ulong rows, ulong weight, int count, int width, float eps) =>
        _model["rmsnorm_rows"].Launch((uint)count, 1, 1, 256, 1, 0, _args.Clear().Add(rows).Add(weight).Add(width).Add(eps));

    /// <summary>q/k LayerNorm (when the weights are given) and RoPE of qkv (m, 3d) into q, k, v (m, d), fp32 or bf16.</summary>
    public void QkNormRope(ulong qkv, ulong qw, ulong qb, ulong kw, ulong kb, ulong cos, ulong sin, ulong q, ulong k, ulong v,
        int m, int tokens, int d, int headDim, bool bf16, float eps) =>
        _model[bf16 ? "qk_norm_rope_bf16" : "qk_norm_rope_f32"].Launch((uint)m, 1, 1, 256, 1, 2 * d * sizeof(float), _args.Clear()
            .Add(qkv).Add(qw).Add(qb).Add(kw).Add(kb).Add(cos).Add(sin).Add(q).Add(k).Add(v).Add(tokens).Add(d).Add(headDim).Add(qw != 0 ? 1 : 0).Add(eps));

    /// <summary>Head dimensions of the bf16 tensor-core attention kernels.</summary>
    public static bool HasFastAttention(int headDim) => headDim is 32 or 48 or 64 or 96 or 128;

    /// <summary>
    /// Attention of <paramref name="images"/> images of <paramref name="tokens"/> rows over q, k, v (images·tokens, d)
    /// into out (fp32): bf16 inputs on tensor cores, or fp32 inputs with the fp32 kernel.
    /// </summary>
    public void Attention(ulong q, ulong k, ulong v, ulong output, int images, int tokens, int heads, int headDim, bool bf16)
    {
        int d = heads * headDim;
        if (bf16)
        {
            if (!HasFastAttention(headDim)) throw new ArgumentException($"no bf16 attention kernel for head dimension {headDim}");
            _attention[$"attention_bf16_hd{headDim}"].Launch(Blocks(tokens, 64), (uint)heads, (uint)images, 128, 1, 0, _args.Clear()
                .Add(q).Add(k).Add(v).Add(output).Add(tokens).Add(d).Add((float)(1 / Math.Sqrt(headDim) / Math.Log(2))));
        }
        else
        {
            if (headDim > 256) throw new ArgumentException($"head dimension {headDim} exceeds the fp32 attention kernel's 256");
            _attention["attention_f32"].Launch(Blocks(tokens, 8), (uint)heads, (uint)images, 256, 1, 0, _args.Clear()
                .Add(q).Add(k).Add(v).Add(output).Add(tokens).Add(d).Add(headDim).Add((float)(1 / Math.Sqrt(headDim))));
        }
    }

    public void FinalNormModulate(ulong x, ulong mod, ulong h, int m, int tokens, int d, float eps) =>
        _model["final_norm_modulate"].Launch((uint)m, 1, 1, 256, 1, 0, _args.Clear().Add(x).Add(mod).Add(h).Add(tokens).Add(d).Add(eps));

    public void Dispose()
    {
        _gemm.Dispose();
        _model.Dispose();
        _attention.Dispose();
    }
}
