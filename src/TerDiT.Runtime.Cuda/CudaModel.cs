using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Ops;
using TerDiT.Runtime.Cuda.Driver;

namespace TerDiT.Runtime.Cuda;

/// <summary>
/// The TerDiT forward (docs/DESIGN.md "Model call") on an NVIDIA GPU: ternary weights kept at 2 bits in
/// <see cref="GpuTernaryLayout"/>, full-precision tensors in fp32, every step of the forward a kernel of this
/// backend on one stream — no host round trip inside a forward; the host copies x, t, y in and the output out.
/// Ternary linears: int8 tensor-core GEMMs with fused epilogues (stacked QKV, SwiGLU gate, gated residuals).
/// Each batch size runs eagerly once, then as a captured CUDA graph. Activation buffers grow to the largest batch
/// seen. One call at a time.
/// </summary>
public sealed class CudaModel : IDenoiserModel, IDisposable
{
    const int FrequencyDim = 256;
    const float NormEps = 1e-5f, FinalNormEps = 1e-6f;

    public TerDiTConfig Config { get; }
    public CudaDevice Device { get; }
    public CudaOptions Options { get; }
    /// <summary>Device bytes of the weights (packed ternary, fp32 rest).</summary>
    public long WeightBytes { get; }

    readonly CudaOps _ops;
    readonly int _terms;
    readonly bool _bf16Attention;
    readonly GemmKernel _gemmKernel;
    readonly List<IDisposable> _owned = [];
    readonly DeviceBuffer<float> _xW, _xB, _fc1W, _fc1B, _fc2W, _fc2B, _table, _finalAdaW, _finalAdaB, _finalW, _finalB, _freqs, _cos, _sin;
    readonly Block[] _blocks;
    Buffers? _buffers;
    readonly Dictionary<int, (nint Graph, nint Exec)> _graphs = new();
    readonly HashSet<int> _warm = [];

    sealed record Block(DeviceTernaryMatrix AdaLn, DeviceTernaryMatrix Qkv, DeviceTernaryMatrix Wo, DeviceTernaryMatrix W13, DeviceTernaryMatrix W2,
        DeviceBuffer<float> AttentionNorm, DeviceBuffer<float> FfnNorm, DeviceBuffer<float>? AdaLnNorm,
        DeviceBuffer<float>? QNormW, DeviceBuffer<float>? QNormB, DeviceBuffer<float>? KNormW, DeviceBuffer<float>? KNormB);

    public int InputLength => Config.InChannels * Config.InputSize * Config.InputSize;
    public int OutputLength => Config.OutChannels * Config.InputSize * Config.InputSize;

    /// <summary>Opens and validates a packed model (checksum included), uploads it and closes the file.</summary>
    /// <exception cref="TditFormatException">The file is not a valid packed model.</exception>
    /// <exception cref="CudaUnavailableException">No usable GPU, driver or NVRTC, or too little device memory.</exception>
    public static CudaModel Load(string path, CudaOptions? options = null)
    {
        using var file = TditFile.Open(path);
        return new CudaModel(new TditWeightSource(file), options);
    }

    /// <summary>Uploads the weights of <paramref name="weights"/> (ternary models only) to the GPU.</summary>
    public CudaModel(IWeightSource weights, CudaOptions? options = null)
    {
        var c = Config = weights.Config.Validate();
        Options = options ??= new CudaOptions();
        if (!c.Ternary) throw new ArgumentException($"model '{c.Name}' is full precision; the CUDA backend runs ternary models only");
        if (options.MaxBatch <= 0) throw new ArgumentException($"maximum batch must be positive, got {options.MaxBatch}");
        if (!Enum.IsDefined(options.Mode)) throw new ArgumentOutOfRangeException(nameof(options), options.Mode, "unknown GEMM mode");
        if (c.HeadDim % 2 != 0) throw new ArgumentException($"RoPE needs an even head dimension, got {c.HeadDim}");
        Device = CudaDevice.Open(options.Device);
        try
        {
            _ops = new CudaOps(Device);
            _terms = options.Mode == GemmMode.A8 ? 1 : 3;
            _bf16Attention = options.FastKernels && options.Mode == GemmMode.A8 && CudaOps.HasFastAttention(c.HeadDim);
            _gemmKernel = options.FastKernels ? GemmKernel.Auto : GemmKernel.Reference;
            long before = Device.AllocatedBytes;
            int d = c.HiddenSize, cd = c.CondDim;

            DeviceBuffer<float> Full(string name) => Own(DeviceBuffer<float>.From(Device, weights.Full(name)));
            DeviceBuffer<float> Floats(float[] values) => Own(DeviceBuffer<float>.From(Device, values));
            (_xW, _xB) = (Full("x_embedder.weight"), Full("x_embedder.bias"));
            (_fc1W, _fc1B) = (Full("t_embedder.fc1.weight"), Full("t_embedder.fc1.bias"));
            (_fc2W, _fc2B) = (Full("t_embedder.fc2.weight"), Full("t_embedder.fc2.bias"));
            _table = Full("y_embedder.embedding_table.weight");
            (_finalAdaW, _finalAdaB) = (Full("final_layer.adaLN_modulation.weight"), Full("final_layer.adaLN_modulation.bias"));
            (_finalW, _finalB) = (Full("final_layer.linear.weight"), Full("final_layer.linear.bias"));

            var freqs = new float[FrequencyDim / 2];
            float step = (float)(-Math.Log(10000) / (FrequencyDim / 2)); // as RuntimeModel and the TorchSharp model
            for (int i = 0; i < freqs.Length; i++) freqs[i] = MathF.Exp(i * step);
            _freqs = Floats(freqs);
            var rope = new RopeTable(c.Tokens, c.HeadDim);
            int half = c.HeadDim / 2;
            var cos = new float[c.Tokens * half];
            var sin = new float[c.Tokens * half];
            for (int t = 0; t < c.Tokens; t++)
                for (int i = 0; i < half; i++) (cos[t * half + i], sin[t * half + i]) = rope.Angle(t, i);
            (_cos, _sin) = (Floats(cos), Floats(sin));

            _blocks = new Block[c.Depth];
            for (int i = 0; i < c.Depth; i++)
            {
                string b = $"blocks.{i}.";
                PackedTernaryMatrix T(string name) => weights.TernaryWeight(b + name);
                DeviceTernaryMatrix Matrix(PackedTernaryMatrix[] parts, bool interleave = false, float[]? bias = null) =>
                    Own(new DeviceTernaryMatrix(_ops, parts, interleave, bias));
                DeviceBuffer<float>? Optional(bool present, string name) => present ? Full(b + name) : null;
                _blocks[i] = new Block(
                    Matrix([T("adaLN_modulation")], bias: weights.Full(b + "adaLN_modulation.bias")),
                    Matrix([T("attention.wq"), T("attention.wk"), T("attention.wv")]),
                    Matrix([T("attention.wo")]),
                    Matrix([T("feed_forward.w1"), T("feed_forward.w3")], interleave: true),
                    Matrix([T("feed_forward.w2")]),
                    Full(b + "attention_norm.weight"), Full(b + "ffn_norm.weight"), Optional(c.AdaLnNorm, "adaLN_norm.weight"),
                    Optional(c.QkNorm, "attention.q_norm.weight"), Optional(c.QkNorm, "attention.q_norm.bias"),
                    Optional(c.QkNorm, "attention.k_norm.weight"), Optional(c.QkNorm, "attention.k_norm.bias"));
            }
            WeightBytes = Device.AllocatedBytes - before;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    T Own<T>(T resource) where T : IDisposable
    {
        _owned.Add(resource);
        return resource;
    }

    /// <summary>The model call: see <see cref="IDenoiserModel.Forward"/>. Runs on the GPU; returns when the output is on the host.</summary>
    public void Forward(ReadOnlySpan<float> x, ReadOnlySpan<int> timesteps, ReadOnlySpan<int> labels, Span<float> output)
    {
        var c = Config;
        int n = timesteps.Length;
        if (n == 0) throw new ArgumentException("batch is empty");
        if (labels.Length != n) throw new ArgumentException($"{labels.Length} labels for {n} timesteps");
        if (x.Length != (long)n * InputLength) throw new ArgumentException($"input has {x.Length} floats, expected {n}×{InputLength} (N, C, H, W)");
        if (output.Length != (long)n * OutputLength) throw new ArgumentException($"output has {output.Length} floats, expected {n}×{OutputLength}");
        for (int i = 0; i < n; i++)
        {
            if (timesteps[i] < 0) throw new ArgumentException($"timestep {i} is {timesteps[i]}, must be ≥ 0");
            if (labels[i] < 0 || labels[i] > c.NumClasses)
                throw new ArgumentException($"label {i} is {labels[i]}, must be in [0, {c.NumClasses}] ({c.NumClasses} = null class)");
        }
        Device.MakeCurrent();
        if (_buffers == null || _buffers.Images < n)
        {
            DropGraphs();
            _buffers?.Dispose();
            _buffers = null;
            _buffers = new Buffers(Device, c, n, _terms, _bf16Attention);
        }
        var buf = _buffers;
        buf.Input.Upload(x);
        buf.Timesteps.Upload(timesteps);
        buf.Labels.Upload(labels);
        if (!Options.UseGraphs || _warm.Add(n)) Record(buf, n);     // first call of a batch size: eager
        else Cu.Check(NativeMethods.cuGraphLaunch(Graph(buf, n), Device.Stream), "cuGraphLaunch");
        buf.Output.Download(output);
    }

    nint Graph(Buffers buf, int n)
    {
        if (_graphs.TryGetValue(n, out var g)) return g.Exec;
        Cu.Check(NativeMethods.cuStreamBeginCapture(Device.Stream, NativeMethods.CaptureModeRelaxed), "cuStreamBeginCapture");
        try { Record(buf, n); }
        catch
        {
            NativeMethods.cuStreamEndCapture(Device.Stream, out nint broken);
            if (broken != 0) NativeMethods.cuGraphDestroy(broken);
            throw;
        }
        Cu.Check(NativeMethods.cuStreamEndCapture(Device.Stream, out nint graph), "cuStreamEndCapture");
        Cu.Check(NativeMethods.cuGraphInstantiateWithFlags(out nint exec, graph, 0), "cuGraphInstantiateWithFlags");
        _graphs[n] = (graph, exec);
        return exec;
    }

    void DropGraphs()
    {
        foreach (var (graph, exec) in _graphs.Values)
        {
            NativeMethods.cuGraphExecDestroy(exec);
            NativeMethods.cuGraphDestroy(graph);
        }
        _graphs.Clear();
        _warm.Clear();
    }

    static ulong At(DeviceBuffer<float> b, long offset) => b.Pointer + (ulong)(offset * sizeof(float));
    static ulong P<T>(DeviceBuffer<T>? b) where T : unmanaged => b?.Pointer ?? 0;

    /// <summary>Queues the whole forward of <paramref name="n"/> images on the stream (also what a graph captures).</summary>
    void Record(Buffers buf, int n)
    {
        var c = Config;
        int t = c.Tokens, m = n * t, d = c.HiddenSize, cd = c.CondDim, f = c.FfnHidden, six = 6 * d;
        var ops = _ops;
        ops.Patchify(buf.Input.Pointer, buf.Patches.Pointer, n, c.InChannels, c.InputSize, c.PatchSize);              // (M, C·p·p)
        ops.Linear(buf.Patches.Pointer, _xW.Pointer, _xB.Pointer, buf.X.Pointer, m, d, c.PatchFeatures);              // x (M, D)
        ops.TimestepFeatures(buf.Timesteps.Pointer, _freqs.Pointer, buf.Frequencies.Pointer, n);                      // (N, 256)
        ops.Linear(buf.Frequencies.Pointer, _fc1W.Pointer, _fc1B.Pointer, buf.T1.Pointer, n, cd, FrequencyDim, silu: true);
        ops.Linear(buf.T1.Pointer, _fc2W.Pointer, _fc2B.Pointer, buf.TEmb.Pointer, n, cd, cd);                        // t_emb (N, cdim)
        ops.Conditioning(buf.TEmb.Pointer, _table.Pointer, buf.Labels.Pointer, buf.SiluC.Pointer, n, cd);             // SiLU(t_emb + y_emb)
        ops.QuantizeRows(buf.SiluC.Pointer, n, cd, cd, buf.CondPlanes);

        foreach (var blk in _blocks)
        {
            // mod (N, 6D) = RMSNorm_6D(adaLN(SiLU(c))): shift/scale/gate msa, shift/scale/gate mlp.
            ops.Gemm(buf.CondPlanes, n, blk.AdaLn, GemmEpilogue.Store, buf.Mod.Pointer, six, kernel: _gemmKernel);
            if (blk.AdaLnNorm != null) ops.RmsNormRows(buf.Mod.Pointer, blk.AdaLnNorm.Pointer, n, six, NormEps);
            // x += gate_msa · wo(attention(rope(qk_norm(wqkv · modulate(RMSNorm(x))))))
            ops.RmsNormModulateQuantize(buf.X.Pointer, blk.AttentionNorm.Pointer, At(buf.Mod, 0), At(buf.Mod, d), six, t, m, d, NormEps, buf.PlanesD);
            ops.Gemm(buf.PlanesD, m, blk.Qkv, GemmEpilogue.Store, buf.Qkv.Pointer, 3 * d, kernel: _gemmKernel);       // (M, 3D)
            ulong q = buf.Heads.Pointer, k = q + buf.HeadBytes, v = k + buf.HeadBytes;
            ops.QkNormRope(buf.Qkv.Pointer, P(blk.QNormW), P(blk.QNormB), P(blk.KNormW), P(blk.KNormB), _cos.Pointer, _sin.Pointer,
                q, k, v, m, t, d, c.HeadDim, _bf16Attention, NormEps);
            ops.Attention(q, k, v, buf.Attn.Pointer, n, t, c.NumHeads, c.HeadDim, _bf16Attention);                     // (M, D)
            ops.QuantizeRows(buf.Attn.Pointer, m, d, d, buf.PlanesD);
            ops.Gemm(buf.PlanesD, m, blk.Wo, GemmEpilogue.Residual, buf.X.Pointer, d, At(buf.Mod, 2 * d), six, t, _gemmKernel);
            // x += gate_mlp · w2(silu(w1 h) · w3 h), h = modulate(RMSNorm(x))
            ops.RmsNormModulateQuantize(buf.X.Pointer, blk.FfnNorm.Pointer, At(buf.Mod, 3 * d), At(buf.Mod, 4 * d), six, t, m, d, NormEps, buf.PlanesD);
            ops.Gemm(buf.PlanesD, m, blk.W13, GemmEpilogue.SwiGlu, buf.Gated.Pointer, f, kernel: _gemmKernel);        // (M, F)
            ops.QuantizeRows(buf.Gated.Pointer, m, f, f, buf.PlanesF);
            ops.Gemm(buf.PlanesF, m, blk.W2, GemmEpilogue.Residual, buf.X.Pointer, d, At(buf.Mod, 5 * d), six, t, _gemmKernel);
        }

        ops.Linear(buf.SiluC.Pointer, _finalAdaW.Pointer, _finalAdaB.Pointer, buf.Mod.Pointer, n, 2 * d, cd);          // (N, 2D): shift, scale
        ops.FinalNormModulate(buf.X.Pointer, buf.Mod.Pointer, buf.H.Pointer, m, t, d, FinalNormEps);
        int outFeatures = c.PatchSize * c.PatchSize * c.OutChannels;
        ops.Linear(buf.H.Pointer, _finalW.Pointer, _finalB.Pointer, buf.Out.Pointer, m, outFeatures, d);              // (M, p·p·Cout)
        ops.Unpatchify(buf.Out.Pointer, buf.Output.Pointer, n, c.OutChannels, c.InputSize, c.PatchSize);            // (N, Cout, H, W)
    }

    /// <summary>Activation buffers for up to <see cref="Images"/> images.</summary>
    sealed class Buffers : IDisposable
    {
        public readonly int Images;
        readonly List<IDisposable> _all = [];
        public readonly DeviceBuffer<float> Input, Output, Patches, X, Frequencies, T1, TEmb, SiluC, Mod, Qkv, Attn, Gated, H, Out;
        public readonly DeviceBuffer<int> Timesteps, Labels;
        public readonly DeviceBuffer<byte> Heads;
        public readonly ulong HeadBytes;
        public readonly ActivationPlanes CondPlanes, PlanesD, PlanesF;

        public Buffers(CudaDevice device, TerDiTConfig c, int images, int terms, bool bf16)
        {
            Images = images;
            long m = (long)images * c.Tokens, d = c.HiddenSize;
            DeviceBuffer<T> B<T>(long length) where T : unmanaged { var b = new DeviceBuffer<T>(device, length); _all.Add(b); return b; }
            try
            {
                Input = B<float>(images * (long)c.InChannels * c.InputSize * c.InputSize);
                Output = B<float>(images * (long)c.OutChannels * c.InputSize * c.InputSize);
                Timesteps = B<int>(images);
                Labels = B<int>(images);
                Patches = B<float>(m * c.PatchFeatures);
                X = B<float>(m * d);
                Frequencies = B<float>(images * (long)FrequencyDim);
                T1 = B<float>(images * (long)c.CondDim);
                TEmb = B<float>(images * (long)c.CondDim);
                SiluC = B<float>(images * (long)c.CondDim);
                Mod = B<float>(images * 6 * d);
                Qkv = B<float>(m * 3 * d);
                HeadBytes = (ulong)(m * d * (bf16 ? 2 : 4) + 255) & ~255UL;
                Heads = B<byte>(3 * (long)HeadBytes);
                Attn = B<float>(m * d);
                Gated = B<float>(m * c.FfnHidden);
                H = B<float>(m * d);
                Out = B<float>(m * c.PatchSize * c.PatchSize * c.OutChannels);
                CondPlanes = new ActivationPlanes(device, terms, images, c.CondDim);
                _all.Add(CondPlanes);
                PlanesD = new ActivationPlanes(device, terms, (int)m, (int)d);
                _all.Add(PlanesD);
                PlanesF = new ActivationPlanes(device, terms, (int)m, c.FfnHidden);
                _all.Add(PlanesF);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            foreach (var b in _all) b.Dispose();
            _all.Clear();
        }
    }

    public void Dispose()
    {
        if (Device == null) return;
        Device.MakeCurrent();
        DropGraphs();
        _buffers?.Dispose();
        _buffers = null;
        foreach (var r in _owned) r.Dispose();
        _owned.Clear();
        _ops?.Dispose();
        Device.Dispose();
    }
}
