using TerDiT.Runtime.Config;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// The TerDiT network (docs/PAPER.md §2, §8): <c>forward(x, t, y)</c> with x (N, C, H, W) float,
/// t (N) int64 timestep indices, y (N) int64 labels in [0, NumClasses] (NumClasses = null class)
/// → (N, OutChannels, H, W); channels [0, C) are epsilon, [C, 2C) the variance interpolation.
/// Parameter names and shapes equal <see cref="ParameterSchema.Enumerate"/>. The model draws no
/// random numbers in forward. It is built on the CPU in float32; move it with <c>to(device, dtype)</c>.
/// x, the parameters and every tensor forward creates share x's device.
/// <para>Mixed precision: <see cref="ComputeDType"/> = BFloat16 runs every matmul and attention in
/// bf16 while the parameters (master weights), norms, RoPE, ternarization and the residual stream stay
/// in the parameters' dtype (float32), as does the output (docs/DESIGN.md "Mixed precision").</para>
/// </summary>
public sealed class TerDiTModel : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    readonly FullPrecisionLinear x_embedder;
    readonly TimestepEmbedder t_embedder;
    readonly LabelEmbedder y_embedder;
    readonly ModuleList<TerDiTBlock> blocks;
    readonly FinalLayer final_layer;

    /// <summary>Builds and initialises the model (<see cref="Initialize"/>) deterministically from <paramref name="seed"/>.</summary>
    public TerDiTModel(TerDiTConfig config, long seed = 0) : base(nameof(TerDiTModel))
    {
        Config = config.Validate();
        x_embedder = new FullPrecisionLinear(config.PatchFeatures, config.HiddenSize);
        t_embedder = new TimestepEmbedder(config.CondDim);
        y_embedder = new LabelEmbedder(config.NumClasses, config.CondDim);
        blocks = new ModuleList<TerDiTBlock>(Enumerable.Range(0, config.Depth).Select(_ => new TerDiTBlock(config)).ToArray());
        final_layer = new FinalLayer(config.HiddenSize, config.CondDim, (long)config.PatchSize * config.PatchSize * config.OutChannels);
        RegisterComponents();
        Initialize(seed);
    }

    public TerDiTConfig Config { get; }

    /// <summary>
    /// The dtype the matmuls and attention compute in: null (default) = the parameters' dtype;
    /// <see cref="ScalarType.BFloat16"/> = mixed precision with the parameters kept as they are
    /// (float32 master weights; gradients arrive in float32 through the casts); Float32 = as null for a
    /// float32 model. Setting it sets every <see cref="IComputePrecision"/> submodule (all linears,
    /// attention, feed-forward); other dtypes throw <see cref="ArgumentException"/>.
    /// </summary>
    public ScalarType? ComputeDType
    {
        get => computeDType;
        set
        {
            computeDType = ComputePrecision.Check(value);
            foreach (var module in modules().OfType<IComputePrecision>()) module.ComputeDType = value;
        }
    }
    ScalarType? computeDType;

    /// <summary>The transformer blocks, <c>blocks.0</c> … <c>blocks.{Depth-1}</c>.</summary>
    public ModuleList<TerDiTBlock> Blocks => blocks;

    /// <summary>The ternary layers in parameter order (empty when <c>Config.Ternary</c> is false).</summary>
    public IEnumerable<TernaryLinear> TernaryLayers => modules().OfType<TernaryLinear>();

    /// <summary>
    /// (Re)initialises every parameter from a CPU generator seeded with <paramref name="seed"/>,
    /// visiting parameters in registration order, so the same seed gives the same weights on any machine.
    /// </summary>
    public void Initialize(long seed)
    {
        using var _ = no_grad();
        var g = new Generator((ulong)seed, CPU);
        foreach (var (name, p) in named_parameters())
        {
            if (p.device_type != DeviceType.CPU)
                throw new InvalidOperationException("initialise the model on the CPU, then move it");
            if (name.EndsWith(".alpha")) continue;                            // set below, after its weight
            string[] parts = name.Split('.');
            string leaf = parts[^1], owner = parts[^2];
            if (owner.EndsWith("_norm"))
            {
                // Norms (attention_norm, ffn_norm, q_norm, k_norm, adaLN_norm): weight one, bias zero.
                if (leaf == "weight") p.fill_(Scalars.One); else p.zero_();
            }
            else if (leaf == "bias")
                p.zero_();                                                     // All linear biases zero (patch embedding included).
            else if (owner == "adaLN_modulation" || name == "final_layer.linear.weight")
                p.zero_();                                                     // adaLN-Zero: blocks start as the identity; zero final linear.
            else if (name.StartsWith("t_embedder.") || name.StartsWith("y_embedder."))
                p.normal_(0, 0.02, g);                                         // Timestep MLP and label embedding: normal(0, 0.02).
            else
                XavierUniform(p, g);                                           // Patch embedding, attention and FFN linears: xavier-uniform.
        }
        // Ternary scales from their (already initialised) latent weights: N(0, 1) or absmean.
        foreach (var layer in TernaryLayers) layer.InitAlpha(Config.AlphaInit, g);
    }

    /// <summary>Uniform(−a, a) with a = sqrt(6 / (fan_in + fan_out)) for a (out, in) weight.</summary>
    static void XavierUniform(Tensor w, Generator g)
    {
        double a = Math.Sqrt(6.0 / (w.shape[0] + w.shape[1]));
        w.uniform_(-a, a, g);
    }

    public override Tensor forward(Tensor x, Tensor t, Tensor y)
    {
        CheckInputs(x, t, y);
        using var scope = NewDisposeScope();
        var c = Config;
        var tokens = x_embedder.call(Patches.Patchify(x, c.PatchSize)).to(x.dtype); // (N, T, D), T = H·W / p²
        var cond = t_embedder.call(t).Plus(y_embedder.call(y));                   // (N, cdim)
        var rope = RotaryEmbedding.Table(c.Tokens, c.HeadDim, x.device);          // (T, hd/2, 2)
        foreach (var block in blocks)
            tokens = block.call(tokens, cond, rope);                              // (N, T, D)
        var o = final_layer.call(tokens, cond);                                    // (N, T, p·p·Cout)
        return scope.MoveToOuter(Patches.Unpatchify(o, c.PatchSize, c.OutChannels, c.GridSize, c.GridSize)); // (N, Cout, H, W)
    }

    void CheckInputs(Tensor x, Tensor t, Tensor y)
    {
        var c = Config;
        long[] expected = [x.shape.Length > 0 ? x.shape[0] : 0, c.InChannels, c.InputSize, c.InputSize];
        if (x.dim() != 4 || !x.shape.SequenceEqual(expected))
            throw new ArgumentException($"x must be (N, {c.InChannels}, {c.InputSize}, {c.InputSize}), got [{string.Join(", ", x.shape)}]");
        long n = x.shape[0];
        if (t.dim() != 1 || t.shape[0] != n || t.dtype != ScalarType.Int64)
            throw new ArgumentException($"t must be an int64 tensor of shape ({n}), got {t.dtype} [{string.Join(", ", t.shape)}]");
        if (y.dim() != 1 || y.shape[0] != n || y.dtype != ScalarType.Int64)
            throw new ArgumentException($"y must be an int64 tensor of shape ({n}), got {y.dtype} [{string.Join(", ", y.shape)}]");
        var w = x_embedder.Weight;
        static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;
        if (!SameDevice(x, w) || x.dtype != w.dtype)
            throw new ArgumentException($"x is {x.dtype} on {x.device} but the model is {w.dtype} on {w.device}");
        if (!SameDevice(t, w) || !SameDevice(y, w))
            throw new ArgumentException($"t and y must be on the model's device {w.device}");
        using var nullClass = ((long)c.NullClass).ToScalar();
        using var bad = (y < Scalars.Zero) | (y > nullClass);
        using var anyBad = bad.any();
        if (anyBad.item<bool>())
            throw new ArgumentException($"labels must be in [0, {c.NullClass}] ({c.NullClass} = null class)");
    }

    /// <summary>
    /// Post-training ternarization: copies every parameter of a full-precision model of the same
    /// architecture (<paramref name="fullPrecisionState"/>: exactly the names of
    /// <see cref="ParameterSchema.Enumerate"/> with <c>Ternary = false</c>) into this ternary model,
    /// then sets each alpha to gamma = mean|W| of its weight.
    /// </summary>
    public void LoadFullPrecisionWeights(IReadOnlyDictionary<string, Tensor> fullPrecisionState)
    {
        if (!Config.Ternary) throw new InvalidOperationException("post-training ternarization needs a model with Ternary = true");
        var expected = ParameterSchema.Enumerate(Config with { Ternary = false }).Select(s => s.Name).ToHashSet();
        var missing = expected.Where(n => !fullPrecisionState.ContainsKey(n)).ToList();
        var extra = fullPrecisionState.Keys.Where(n => !expected.Contains(n)).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new ArgumentException("not a full-precision state of this architecture: "
                + $"missing [{string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}], "
                + $"unexpected [{string.Join(", ", extra.Take(5))}{(extra.Count > 5 ? ", …" : "")}]");
        using (no_grad())
        {
            foreach (var (name, p) in named_parameters())
            {
                if (name.EndsWith(".alpha")) continue;
                var src = fullPrecisionState[name];
                if (!src.shape.SequenceEqual(p.shape))
                    throw new ArgumentException($"{name}: shape [{string.Join(", ", src.shape)}] does not match [{string.Join(", ", p.shape)}]");
                p.copy_(src);
            }
        }
        foreach (var layer in TernaryLayers) layer.InitAlpha(AlphaInit.Absmean);
    }
}
