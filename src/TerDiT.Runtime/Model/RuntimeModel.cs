using TerDiT.Runtime.Config;
using TerDiT.Runtime.Ops;

namespace TerDiT.Runtime.Model;

/// <summary>
/// The TerDiT forward pass (docs/PAPER.md §2 and §8, docs/DESIGN.md) over weights from an
/// <see cref="IWeightSource"/>, in plain C#: ternary block linears through the source's kernels,
/// everything else through <see cref="FloatGemm"/> and the ops in <c>TerDiT.Runtime.Ops</c>.
/// A batch of N images runs as M = N·T token rows through every linear. Activation buffers are
/// allocated for the largest batch seen and reused; an instance is not safe for concurrent calls.
/// </summary>
public sealed class RuntimeModel : IDenoiserModel
{
    const int FrequencyDim = 256, Half = FrequencyDim / 2;
    internal const float NormEps = 1e-5f, FinalNormEps = 1e-6f;

    public TerDiTConfig Config { get; }
    readonly RuntimeOptions _options;
    readonly ParallelOptions _parallel;
    readonly FloatLinear _xEmbedder, _tFc1, _tFc2, _finalAdaLn, _finalLinear;
    readonly float[] _labelTable; // (NumClasses + 1, cdim)
    readonly float[] _frequencies; // (128): exp(−ln(10000)·i/128)
    readonly Block[] _blocks;
    readonly RopeTable _rope;
    readonly Attention _attention;
    Buffers? _buffers;

    sealed record Block(
        float[] AttentionNorm, float[] FfnNorm,
        LinearStack Qkv, ILinearKernel Wo, LinearStack W13, ILinearKernel W2, FusedSwiGlu? FusedFfn, ILinearKernel AdaLn,
        float[]? QNormWeight, float[]? QNormBias, float[]? KNormWeight, float[]? KNormBias, float[]? AdaLnNorm);

    public RuntimeModel(IWeightSource weights, RuntimeOptions? options = null)
    {
        var c = Config = weights.Config.Validate();
        _options = options ?? new RuntimeOptions();
        _parallel = _options.Parallel;
        int d = c.HiddenSize, cd = c.CondDim;

        FloatLinear Full(string name, int outF, int inF) =>
            new(weights.Full(name + ".weight"), weights.Full(name + ".bias"), outF, inF, _parallel);
        _xEmbedder = Full("x_embedder", d, c.PatchFeatures);
        _tFc1 = Full("t_embedder.fc1", cd, FrequencyDim);
        _tFc2 = Full("t_embedder.fc2", cd, cd);
        _finalAdaLn = Full("final_layer.adaLN_modulation", 2 * d, cd);
        _finalLinear = Full("final_layer.linear", c.PatchSize * c.PatchSize * c.OutChannels, d);
        _labelTable = weights.Full("y_embedder.embedding_table.weight");

        _frequencies = TimestepFrequencies();

        MemoryBudget.RequireArray((long)c.Tokens * (c.Tokens + 1), $"attention over {c.Tokens} tokens");
        MemoryBudget.Require(FixedBytes(c, _options.Threads), $"a {c.InChannels}×{c.InputSize}×{c.InputSize} model ({c.Tokens} tokens, {_options.Threads} threads)'s attention and RoPE tables");
        _blocks = new Block[c.Depth];
        for (int i = 0; i < c.Depth; i++) _blocks[i] = LoadBlock(weights, $"blocks.{i}.");
        _rope = new RopeTable(c.Tokens, c.HeadDim);
        _attention = new Attention(c.Tokens, c.NumHeads, c.HeadDim, _options.Threads,
            _options.Mode == Cpu.GemmMode.A8 ? AttentionArithmetic.Int16 : AttentionArithmetic.Float32);
    }

    /// <summary>The timestep embedding's 128 frequencies exp(−ln(10000)·i/128), in float32 as the TorchSharp model computes them.</summary>
    internal static float[] TimestepFrequencies()
    {
        var f = new float[Half];
        float step = (float)(-Math.Log(10000) / Half); // float32 arange(128) · step, then exp
        for (int i = 0; i < Half; i++) f[i] = MathF.Exp(i * step);
        return f;
    }

    Block LoadBlock(IWeightSource w, string b)
    {
        var c = Config;
        int d = c.HiddenSize, f = c.FfnHidden;
        ILinearKernel Linear(string name, int outF, int inF, float[]? bias = null) => c.Ternary
            ? Checked(w.TernaryLinear(b + name, bias, _options), b + name, outF, inF)
            : new FloatLinear(w.Full(b + name + ".weight"), bias, outF, inF, _parallel);
        float[]? Optional(bool present, string name) => present ? w.Full(b + name) : null;
        ILinearKernel w1 = Linear("feed_forward.w1", f, d), w3 = Linear("feed_forward.w3", f, d), w2 = Linear("feed_forward.w2", d, f);
        return new Block(
            w.Full(b + "attention_norm.weight"), w.Full(b + "ffn_norm.weight"),
            new LinearStack(Linear("attention.wq", d, d), Linear("attention.wk", d, d), Linear("attention.wv", d, d)),
            Linear("attention.wo", d, d),
            new LinearStack(w1, w3), w2, FusedSwiGlu.TryCreate(w1, w3, w2),
            Linear("adaLN_modulation", 6 * d, c.CondDim, w.Full(b + "adaLN_modulation.bias")),
            Optional(c.QkNorm, "attention.q_norm.weight"), Optional(c.QkNorm, "attention.q_norm.bias"),
            Optional(c.QkNorm, "attention.k_norm.weight"), Optional(c.QkNorm, "attention.k_norm.bias"),
            Optional(c.AdaLnNorm, "adaLN_norm.weight"));
    }

    static ILinearKernel Checked(ILinearKernel k, string name, int outF, int inF) =>
        k.OutFeatures == outF && k.InFeatures == inF ? k
            : throw new ArgumentException($"kernel for '{name}' is ({k.OutFeatures}, {k.InFeatures}), expected ({outF}, {inF})");

    /// <summary>Floats in one image of the input, C·H·W.</summary>
    public int InputLength => Config.InChannels * Config.InputSize * Config.InputSize;

    /// <summary>Floats in one image of the output, OutChannels·H·W.</summary>
    public int OutputLength => Config.OutChannels * Config.InputSize * Config.InputSize;

    /// <summary>
    /// The model call of docs/DESIGN.md: x (N, C, H, W), timestep indices (N) ≥ 0, labels (N) in
    /// [0, NumClasses] (NumClasses = null class) → output (N, OutChannels, H, W); channels [0, C)
    /// are epsilon, [C, 2C) the variance interpolation values when LearnSigma.
    /// </summary>
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
        if (_buffers == null || _buffers.Images < n)
        {
            _buffers = null;
            MemoryBudget.RequireArray(LargestBuffer(c, n), $"a batch of {n} images of {c.InChannels}×{c.InputSize}×{c.InputSize}");
            MemoryBudget.Require(BufferBytes(c, n), $"a batch of {n} images of {c.InChannels}×{c.InputSize}×{c.InputSize} ({c.Tokens} tokens)");
            _buffers = new Buffers(c, n);
        }
        var buf = _buffers;
        int rows = n * c.Tokens, d = c.HiddenSize;

        Patchify(x, buf.Patches, n);                                // (M, C·p·p)
        _xEmbedder.Forward(buf.Patches, buf.X, rows);               // (M, D)
        Conditioning(timesteps, labels, buf);                       // SiLU(c): (N, cdim)

        foreach (var block in _blocks) BlockForward(block, buf, n);

        _finalAdaLn.Forward(buf.SiluC, buf.Mod, n);                 // (N, 2D): shift, scale
        Norms.LayerNorm(buf.X.AsSpan(0, rows * d), [], [], buf.H, d, FinalNormEps);
        ForEachImage(n, b => Elementwise.Modulate(Image(buf.H, b), buf.Mod.AsSpan(b * 2 * d, d), buf.Mod.AsSpan(b * 2 * d + d, d), Image(buf.H, b), d));
        _finalLinear.Forward(buf.H, buf.Out, rows);                 // (M, p·p·Cout)
        Unpatchify(buf.Out, output, n);                             // (N, Cout, H, W)
    }

    void Conditioning(ReadOnlySpan<int> timesteps, ReadOnlySpan<int> labels, Buffers buf)
    {
        int n = timesteps.Length, cd = Config.CondDim;
        for (int b = 0; b < n; b++)
        {
            // Sinusoidal features [cos, sin] (N, 256).
            Span<float> f = buf.Frequencies.AsSpan(b * FrequencyDim, FrequencyDim);
            for (int i = 0; i < Half; i++)
            {
                float angle = timesteps[b] * _frequencies[i];
                f[i] = MathF.Cos(angle);
                f[Half + i] = MathF.Sin(angle);
            }
        }
        _tFc1.Forward(buf.Frequencies, buf.T1, n);                  // (N, cdim)
        Elementwise.Silu(buf.T1.AsSpan(0, n * cd), buf.T1);
        _tFc2.Forward(buf.T1, buf.C, n);                            // t_emb (N, cdim)
        for (int b = 0; b < n; b++)
        {
            Span<float> cb = buf.C.AsSpan(b * cd, cd);
            System.Numerics.Tensors.TensorPrimitives.Add(cb, _labelTable.AsSpan(labels[b] * cd, cd), cb); // c = t_emb + y_emb
        }
        Elementwise.Silu(buf.C.AsSpan(0, n * cd), buf.SiluC);     // adaLN input SiLU(c)
    }

    void BlockForward(Block blk, Buffers buf, int n)
    {
        var c = Config;
        int d = c.HiddenSize, rows = n * c.Tokens;
        // mod (N, 6D) = [RMSNorm_6D](TernaryLinear(SiLU(c)) + bias): shift/scale/gate msa, shift/scale/gate mlp.
        blk.AdaLn.Forward(buf.SiluC, buf.Mod, n);
        if (blk.AdaLnNorm != null) Norms.RmsNorm(buf.Mod.AsSpan(0, n * 6 * d), blk.AdaLnNorm, buf.Mod, 6 * d, NormEps);
        Span<float> Chunk(int b, int i) => buf.Mod.AsSpan((b * 6 + i) * d, d);

        // Attention branch: h = modulate(RMSNorm(x), shift_msa, scale_msa)   (M, D)
        ForEachImage(n, b => Norms.RmsNormModulate(Image(buf.X, b), blk.AttentionNorm, Chunk(b, 0), Chunk(b, 1), Image(buf.H, b), d, NormEps));
        blk.Qkv.Forward(buf.H, buf.Qkv, rows);                     // Q, K, V: (M, D) each, one after another
        int q = 0, k = rows * d, v = 2 * rows * d;
        ForEachImage(n, b =>
        {
            if (blk.QNormWeight != null)
            {
                Norms.LayerNorm(ImageOf(buf.Qkv, q, b, d), blk.QNormWeight, blk.QNormBias, ImageOf(buf.Qkv, q, b, d), d, NormEps);
                Norms.LayerNorm(ImageOf(buf.Qkv, k, b, d), blk.KNormWeight, blk.KNormBias, ImageOf(buf.Qkv, k, b, d), d, NormEps);
            }
            _rope.Apply(ImageOf(buf.Qkv, q, b, d), d);
            _rope.Apply(ImageOf(buf.Qkv, k, b, d), d);
        });
        _attention.Forward(buf.Qkv.AsMemory(q, rows * d), buf.Qkv.AsMemory(k, rows * d), buf.Qkv.AsMemory(v, rows * d), buf.Attn.AsMemory(0, rows * d), n); // (M, D)
        blk.Wo.Forward(buf.Attn, buf.O, rows);
        ForEachImage(n, b =>
        {
            Elementwise.GatedResidual(Image(buf.X, b), Chunk(b, 2), Image(buf.O, b), d);   // x += gate_msa · attn
            Norms.RmsNormModulate(Image(buf.X, b), blk.FfnNorm, Chunk(b, 3), Chunk(b, 4), Image(buf.H, b), d, NormEps);
        });

        // SwiGLU branch: x += gate_mlp · w2(silu(w1 h) · w3 h), in one fused pass where it applies
        if (blk.FusedFfn?.TryForward(buf.H, buf.O, rows) != true)
        {
            int f = c.FfnHidden;
            blk.W13.Forward(buf.H, buf.Ag, rows);                  // w1 h, then w3 h: (M, F) each
            int g = rows * f;
            ForEachImage(n, b => Elementwise.SwiGluGate(ImageOf(buf.Ag, 0, b, f), ImageOf(buf.Ag, g, b, f), ImageOf(buf.Ag, 0, b, f)));
            blk.W2.Forward(buf.Ag, buf.O, rows);                   // (M, D) from the gated (M, F)
        }
        ForEachImage(n, b => Elementwise.GatedResidual(Image(buf.X, b), Chunk(b, 5), Image(buf.O, b), d));
    }

    /// <summary>The T·D rows of image b in a (M, D) buffer.</summary>
    Span<float> Image(AlignedBuffer<float> a, int b) => ImageOf(a, 0, b, Config.HiddenSize);

    /// <summary>The T rows of image b in a (M, width) matrix starting at <paramref name="offset"/> of a.</summary>
    Span<float> ImageOf(AlignedBuffer<float> a, int offset, int b, int width) => a.AsSpan(offset + b * Config.Tokens * width, Config.Tokens * width);

    void ForEachImage(int n, Action<int> body)
    {
        if (n == 1 || _options.Threads == 1) for (int b = 0; b < n; b++) body(b);
        else Parallel.For(0, n, _parallel, body);
    }

    /// <summary>(N, C, H, W) → (N·T, C·p·p), tokens in row-major patch order, features (c, row, col).</summary>
    void Patchify(ReadOnlySpan<float> x, Span<float> patches, int n)
    {
        var c = Config;
        int p = c.PatchSize, g = c.GridSize, size = c.InputSize, ch = c.InChannels, pf = c.PatchFeatures;
        for (int b = 0; b < n; b++)
            for (int gi = 0; gi < g; gi++)
                for (int gj = 0; gj < g; gj++)
                {
                    int token = (b * g + gi) * g + gj;
                    for (int k = 0; k < ch; k++)
                        for (int r = 0; r < p; r++)
                            x.Slice(((b * ch + k) * size + gi * p + r) * size + gj * p, p)
                             .CopyTo(patches.Slice(token * pf + (k * p + r) * p, p));
                }
    }

    /// <summary>(N·T, p·p·Cout) with features (row, col, channel) → (N, Cout, H, W).</summary>
    void Unpatchify(ReadOnlySpan<float> tokens, Span<float> output, int n)
    {
        var c = Config;
        int p = c.PatchSize, g = c.GridSize, size = c.InputSize, co = c.OutChannels, width = p * p * co;
        for (int b = 0; b < n; b++)
            for (int gi = 0; gi < g; gi++)
                for (int gj = 0; gj < g; gj++)
                {
                    int token = (b * g + gi) * g + gj;
                    for (int r = 0; r < p; r++)
                        for (int q = 0; q < p; q++)
                            for (int k = 0; k < co; k++)
                                output[((b * co + k) * size + gi * p + r) * size + gj * p + q] = tokens[token * width + (r * p + q) * co + k];
                }
    }

    /// <summary>Bytes of <see cref="Buffers"/> for <paramref name="images"/> images (64-bit arithmetic; the sum of its fields).</summary>
    static long BufferBytes(TerDiTConfig c, long images)
    {
        long perToken = c.PatchFeatures + 7L * c.HiddenSize + 2L * c.FfnHidden + (long)c.PatchSize * c.PatchSize * c.OutChannels;
        return 4 * images * ((long)c.Tokens * perToken + FrequencyDim + 3L * c.CondDim + 6L * c.HiddenSize);
    }

    /// <summary>Elements of the largest of <see cref="Buffers"/>' arrays.</summary>
    static long LargestBuffer(TerDiTConfig c, long images) => images * c.Tokens * Math.Max(3L * c.HiddenSize, 2L * c.FfnHidden);

    /// <summary>
    /// Bytes allocated once per model whatever the batch: the RoPE table (2·T·hd floats) and, per thread, the
    /// attention scratch (T² scores, packed keys and values, and the A8 path's int16 codes, counted in either mode), rounded up.
    /// </summary>
    static long FixedBytes(TerDiTConfig c, long threads)
    {
        long t = c.Tokens, hd = c.HeadDim;
        long perWorker = 4 * (t * t + 4 * t * (hd + 64)) + 2 * (t * (t + 1) + 4 * t * (hd + 64));
        return 8 * t * hd + threads * perWorker;
    }

    /// <summary>Activation buffers for up to <see cref="Images"/> images, reused across calls.</summary>
    sealed class Buffers(TerDiTConfig c, int images)
    {
        public readonly int Images = images;
        public readonly AlignedBuffer<float> Patches = new(images * c.Tokens * c.PatchFeatures);
        public readonly AlignedBuffer<float> X = new(images * c.Tokens * c.HiddenSize);
        public readonly AlignedBuffer<float> H = new(images * c.Tokens * c.HiddenSize);
        public readonly AlignedBuffer<float> Qkv = new(3 * images * c.Tokens * c.HiddenSize);
        public readonly AlignedBuffer<float> Attn = new(images * c.Tokens * c.HiddenSize);
        public readonly AlignedBuffer<float> O = new(images * c.Tokens * c.HiddenSize);
        public readonly AlignedBuffer<float> Ag = new(2 * images * c.Tokens * c.FfnHidden);
        public readonly AlignedBuffer<float> Out = new(images * c.Tokens * c.PatchSize * c.PatchSize * c.OutChannels);
        public readonly AlignedBuffer<float> Frequencies = new(images * FrequencyDim);
        public readonly AlignedBuffer<float> T1 = new(images * c.CondDim);
        public readonly AlignedBuffer<float> C = new(images * c.CondDim);
        public readonly AlignedBuffer<float> SiluC = new(images * c.CondDim);
        public readonly AlignedBuffer<float> Mod = new(images * 6 * c.HiddenSize);
    }
}
