using System.Globalization;
using System.Text.RegularExpressions;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;

namespace TerDiT.Runtime.Import;

/// <summary>Options of <see cref="AuthorsCheckpoint.Import"/>.</summary>
public sealed record AuthorsImportOptions
{
    /// <summary>Import the EMA weights (<c>consolidated_ema*</c>, what the authors sample with) rather than the raw ones.</summary>
    public bool Ema { get; init; } = true;
    /// <summary>Attention heads, needed only for a model name outside the authors' registry (heads are not visible in the tensor shapes).</summary>
    public int? Heads { get; init; }
    /// <summary>Storage of the full-precision tensors: F32 (exact, default) or F16.</summary>
    public TditDType FullPrecision { get; init; } = TditDType.F32;
    /// <summary>Pins the VAE the model's latents belong to (name and SHA-256 of its weights); default: the VAE the checkpoint names, unpinned.</summary>
    public TditLatent? Latent { get; init; }
    /// <summary>Called with (tensors done, total) while converting.</summary>
    public Action<int, int>? Progress { get; init; }
}

/// <summary>
/// Imports a checkpoint directory released by the TerDiT authors (docs/IMPORT.md) into a packed
/// <c>.tdit</c> model: <c>model_args.pth</c> gives the model name, image size, classes and QK norm;
/// <c>consolidated[_ema][_ternary].00-of-01.pth</c> the weights. The import is a name map, a repack
/// of ternary weights into the kernels' layout and a permutation of the label table; the runtime's
/// forward of the result equals the authors' forward (to float rounding; tested on checkpoints made by
/// their code). Two weight forms are accepted: packed ternary (<c>_ternary</c>: uint8 (out/4, in) in the
/// layout <see cref="RowQuarterPacking"/>, and a float <c>alphas</c> (1)), and the float latent weights of their training code,
/// ternarized exactly as their training forward does (gamma = mean|W|, round(W / (gamma + 1e-6))
/// clamped to [−1, 1]); a checkpoint without <c>alphas</c> imports as a full-precision model.
/// </summary>
public static partial class AuthorsCheckpoint
{
    /// <summary>Their model registry (models.py): name → (D, depth, heads, patch) and our preset of that shape.</summary>
    static readonly IReadOnlyDictionary<string, (int D, int Depth, int Heads, int Patch, string Preset)> Registry =
        new Dictionary<string, (int, int, int, int, string)>
        {
            ["DiT_Llama_600M_patch2"] = (1536, 16, 32, 2, "TerDiT-600M"),
            ["DiT_Llama_3B_patch2"] = (3072, 32, 32, 2, "TerDiT-4.2B"), // "3B" in their code; 4.2 B parameters
            ["DiT_Llama_7B_patch2"] = (4096, 32, 32, 2, "TerDiT-7B"),
        };

    /// <summary>Latent channels of the Stable Diffusion VAE, the only input their models take.</summary>
    const int LatentChannels = 4;

    /// <summary>Stable Diffusion's latent scale: model latents = VAE latents · 0.18215.</summary>
    public const double StableDiffusionScale = 0.18215;

    /// <summary>
    /// The weights file to import: <c>consolidated{_ema}_ternary.00-of-01.pth</c> when present, else
    /// <c>consolidated{_ema}.00-of-01.pth</c>. Model-parallel shards (<c>-of-02</c> and up) are refused.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file; the message lists what the directory holds.</exception>
    public static string WeightsPath(string dir, bool ema)
    {
        string stem = ema ? "consolidated_ema" : "consolidated";
        foreach (var name in new[] { $"{stem}_ternary.00-of-01.pth", $"{stem}.00-of-01.pth" })
            if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        var present = Directory.Exists(dir) ? Directory.GetFiles(dir, "*.pth").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList() : [];
        if (present.Any(n => ShardPattern().IsMatch(n!)))
            throw new NotSupportedException($"{dir} holds model-parallel shards ({string.Join(", ", present)}); only single-file checkpoints (.00-of-01.pth) are supported");
        throw new FileNotFoundException($"{dir} has no {stem}_ternary.00-of-01.pth or {stem}.00-of-01.pth"
            + (present.Count > 0 ? $" (it holds {string.Join(", ", present)}{(ema ? "; leave out --ema for the raw weights" : "; pass --ema for the EMA weights")})" : " (no .pth files at all)"));
    }

    [GeneratedRegex(@"\.\d\d-of-(0[2-9]|[1-9]\d)\.pth$")]
    private static partial Regex ShardPattern();

    /// <summary>Our parameter name for one of theirs (docs/IMPORT.md has the table).</summary>
    public static string OurName(string theirs)
    {
        string s = LayerPattern().Replace(theirs, "blocks.$1.");
        s = s.Replace("t_embedder.mlp.0.", "t_embedder.fc1.", StringComparison.Ordinal)
             .Replace("t_embedder.mlp.2.", "t_embedder.fc2.", StringComparison.Ordinal)
             .Replace("adaLN_modulation.1.", "adaLN_modulation.", StringComparison.Ordinal)
             .Replace("adaLN_modulation.2.weight", "adaLN_norm.weight", StringComparison.Ordinal);
        return s.EndsWith(".alphas", StringComparison.Ordinal) ? s[..^1] : s;
    }

    [GeneratedRegex(@"^layers\.(\d+)\.")]
    private static partial Regex LayerPattern();

    /// <summary>
    /// Our config for their checkpoint: D, depth and patch from the tensors (and their registry, which
    /// must agree), heads from the registry or <paramref name="heads"/>, latent size = image size / 8,
    /// ternary when the block linears have <c>alphas</c>, the adaLN RMSNorm when present.
    /// </summary>
    /// <exception cref="ImportFormatException">Shapes that no config of their architecture has.</exception>
    public static (TerDiTConfig Config, string Preset) InferConfig(AuthorsModelArgs args, IReadOnlyDictionary<string, TorchTensor> ours, string where, int? heads)
    {
        ImportFormatException Bad(string what) => new($"{where}: {what}");
        TorchTensor Tensor(string name) => ours.TryGetValue(name, out var t) ? t : throw Bad($"no tensor for '{name}' (not a TerDiT checkpoint?)");
        var x = Tensor("x_embedder.weight");
        if (x.Shape.Length != 2 || x.Shape[1] % LatentChannels != 0) throw Bad($"x_embedder.weight has shape [{string.Join(", ", x.Shape)}], expected (D, 4·p·p)");
        int d = (int)x.Shape[0], patch = (int)Math.Round(Math.Sqrt(x.Shape[1] / LatentChannels));
        if (patch * patch * LatentChannels != x.Shape[1]) throw Bad($"x_embedder.weight takes {x.Shape[1]} features, not 4·p·p for a whole patch size p");
        int depth = 0;
        while (ours.ContainsKey($"blocks.{depth}.attention_norm.weight")) depth++;

        string preset = "custom";
        if (Registry.TryGetValue(args.Model, out var known))
        {
            if ((known.D, known.Depth, known.Patch) != (d, depth, patch))
                throw Bad($"model '{args.Model}' has D {known.D}, depth {known.Depth}, patch {known.Patch}, but the tensors say D {d}, depth {depth}, patch {patch}");
            if (heads is { } h && h != known.Heads) throw Bad($"model '{args.Model}' has {known.Heads} heads, not {h}");
            heads = known.Heads;
            preset = known.Preset;
        }
        if (heads is null)
            throw Bad($"model '{args.Model}' is not in the authors' registry ({string.Join(", ", Registry.Keys)}): give the number of attention heads");

        var wq = Tensor("blocks.0.attention.wq.weight");
        var config = new TerDiTConfig
        {
            Name = preset == "custom" ? args.Model : preset,
            InChannels = LatentChannels, InputSize = args.ImageSize / 8, PatchSize = patch,
            HiddenSize = d, Depth = depth, NumHeads = heads.Value, NumClasses = args.NumClasses,
            LearnSigma = true, QkNorm = args.QkNorm,
            AdaLnNorm = ours.ContainsKey("blocks.0.adaLN_norm.weight"),
            Ternary = ours.ContainsKey("blocks.0.attention.wq.alpha"),
        };
        try { config.Validate(); }
        catch (ArgumentException e) { throw Bad(e.Message); }
        if (config.Ternary && wq.DType != TorchDType.UInt8 && !IsFloat(wq.DType))
            throw Bad($"ternary weight blocks.0.attention.wq is {wq.DType}, expected packed UInt8 or float latent weights");
        return (config, preset);
    }

    /// <summary>Imports the checkpoint directory <paramref name="dir"/> to the packed model <paramref name="outPath"/> (atomically).</summary>
    /// <exception cref="ImportFormatException">A malformed or unsafe file, or weights that do not fit the architecture.</exception>
    public static TditSizes Import(string dir, string outPath, AuthorsImportOptions? options = null)
    {
        options ??= new();
        var argsPath = Path.Combine(dir, "model_args.pth");
        if (!File.Exists(argsPath)) throw new FileNotFoundException($"{dir} has no model_args.pth (not an authors' checkpoint directory?)");
        return Import(AuthorsModelArgs.Read(argsPath), WeightsPath(dir, options.Ema), outPath, options);
    }

    /// <summary>
    /// Imports the weights file <paramref name="weightsPath"/> of a model with the training arguments
    /// <paramref name="args"/> to the packed model <paramref name="outPath"/> (atomically).
    /// </summary>
    /// <exception cref="ImportFormatException">A malformed or unsafe file, or weights that do not fit the architecture.</exception>
    public static TditSizes Import(AuthorsModelArgs args, string weightsPath, string outPath, AuthorsImportOptions? options = null)
    {
        options ??= new();
        if (args.NumClasses != ImageNetClasses.Count)
            throw new ImportFormatException($"model_args.pth: num_classes is {args.NumClasses}; the authors' label order is defined for the {ImageNetClasses.Count} ImageNet classes only");
        using var pth = TorchCheckpoint.Open(weightsPath);
        string where = pth.Name;
        var ours = new Dictionary<string, TorchTensor>(StringComparer.Ordinal);
        foreach (var (theirs, tensor) in pth.StateDict())
            if (!ours.TryAdd(OurName(theirs), tensor)) throw new ImportFormatException($"{where}: two tensors map to '{OurName(theirs)}'");
        var (config, preset) = InferConfig(args, ours, where, options.Heads);

        var metadata = new TditMetadata
        {
            Config = config,
            Preset = preset,
            Classes = ImageNetClasses.Names,
            Source = $"authors' checkpoint {Path.GetFullPath(weightsPath)} (model {args.Model}, image size {args.ImageSize})",
            Weights = options.Ema ? TditWeights.Ema : TditWeights.Raw,
            TernaryLayout = config.Ternary ? TernaryPacking.LayoutName : null,
            Latent = options.Latent ?? new TditLatent { Vae = $"stabilityai/sd-vae-ft-{args.Vae ?? "ema"}", ScalingFactor = StableDiffusionScale },
        };
        var specs = ParameterSchema.Enumerate(config).ToList();
        var expected = specs.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var extra = ours.Keys.Where(n => !expected.Contains(n)).Order(StringComparer.Ordinal).ToList();
        if (extra.Count > 0) throw new ImportFormatException($"{where}: {extra.Count} tensor(s) that the architecture does not have: {string.Join(", ", extra.Take(5))}");

        using var writer = new TditWriter(outPath, metadata, TditSchema.Declarations(config, metadata.TernaryLayout, options.FullPrecision));
        int done = 0;
        foreach (var spec in specs)
        {
            if (!ours.TryGetValue(spec.Name, out var t)) throw new ImportFormatException($"{where}: no tensor for '{spec.Name}' (expected [{string.Join(", ", spec.Shape)}])");
            switch (spec.Kind)
            {
                case ParameterKind.TernaryWeight:
                    int rows = (int)spec.Shape[0], cols = (int)spec.Shape[1];
                    var trits = t.DType == TorchDType.UInt8
                        ? Unpack(pth.ReadBytes(spec.Name, CheckShape(t, RowQuarterPacking.PackedShape(rows, cols), spec.Name, where)), rows, cols, spec.Name, where)
                        : Ternarize(Finite(pth.ReadFloats(spec.Name, CheckShape(t, spec.Shape, spec.Name, where)), spec.Name, where));
                    writer.Write(spec.Name, TernaryPacking.Pack(trits, rows, cols).AsSpan());
                    break;
                case ParameterKind.TernaryScale:
                    writer.Write(spec.Name, Finite(pth.ReadFloats(spec.Name, CheckShape(t, spec.Shape, spec.Name, where)), spec.Name, where).AsSpan());
                    break;
                default:
                    var values = Finite(pth.ReadFloats(spec.Name, CheckShape(t, spec.Shape, spec.Name, where)), spec.Name, where);
                    if (spec.Name == "y_embedder.embedding_table.weight") values = StandardLabelOrder(values, config.NumClasses, config.CondDim);
                    writer.Write(spec.Name, values.AsSpan());
                    break;
            }
            options.Progress?.Invoke(++done, specs.Count);
        }
        writer.Commit();
        return TditSizes.Of(config, writer.Layout.DataStart, writer.Layout.Tensors);
    }

    /// <summary>Trits of one of their packed weights (<see cref="RowQuarterPacking"/>), or an error naming the tensor.</summary>
    static sbyte[] Unpack(byte[] packed, int rows, int cols, string name, string where)
    {
        if (rows % 4 != 0) throw new ImportFormatException($"{where}: ternary weight '{name}' has {rows} rows, not a multiple of 4");
        try { return TernaryLayouts.RowQuarter2Bit.Unpack(packed, rows, cols); }
        catch (ArgumentException e) { throw new ImportFormatException($"{where}: ternary weight '{name}': {e.Message}"); }
    }

    /// <summary>
    /// Their training forward's ternarization of a float latent weight: gamma = mean|W| (accumulated in
    /// double, rounded to float), trit = clamp(round(W / (gamma + 1e-6)), −1, 1) with round half to even.
    /// </summary>
    public static sbyte[] Ternarize(ReadOnlySpan<float> weight)
    {
        double sum = 0;
        foreach (float w in weight) sum += Math.Abs(w);
        float scale = (float)(sum / Math.Max(1, weight.Length)) + 1e-6f;
        var trits = new sbyte[weight.Length];
        for (int i = 0; i < weight.Length; i++) trits[i] = (sbyte)Math.Clamp(MathF.Round(weight[i] / scale, MidpointRounding.ToEven), -1f, 1f);
        return trits;
    }

    /// <summary>Their label table (rows by their label, then the null class) reordered so row k is standard class k.</summary>
    static float[] StandardLabelOrder(float[] table, int classes, int width)
    {
        var result = new float[table.Length];
        for (int k = 0; k < classes; k++) table.AsSpan(ImageNetClasses.AuthorsLabel(k) * width, width).CopyTo(result.AsSpan(k * width, width));
        table.AsSpan(classes * width, width).CopyTo(result.AsSpan(classes * width)); // the null class keeps its row
        return result;
    }

    static TorchTensor CheckShape(TorchTensor t, long[] shape, string name, string where) =>
        t.Shape.SequenceEqual(shape) ? t
            : throw new ImportFormatException($"{where}: tensor for '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{string.Join(", ", shape)}]");

    static float[] Finite(float[] values, string name, string where)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) throw new ImportFormatException($"{where}: tensor for '{name}' holds {values[i].ToString(CultureInfo.InvariantCulture)} at element {i}");
        return values;
    }

    static bool IsFloat(TorchDType t) => t is TorchDType.Float32 or TorchDType.Float16 or TorchDType.BFloat16 or TorchDType.Float64;
}
