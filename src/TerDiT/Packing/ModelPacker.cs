using TerDiT.Data;
using TerDiT.Model;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;
using TerDiT.Training;
using static TorchSharp.torch;

namespace TerDiT.Packing;

/// <summary>
/// Writes TorchSharp weights as a packed <c>.tdit</c> model (docs/FORMAT.md): ternary weights as the
/// trits the TorchSharp forward uses (<see cref="Model.TernaryLinear.Ternarize"/>) in the
/// kernels' 2-bit layout (<see cref="TernaryPacking.LayoutName"/>), their alphas as F32, every other
/// parameter as F16 (default) or F32. Tensors are converted one at a time, so packing needs the
/// source weights plus one tensor's worth of temporaries, never a second copy of the model.
/// </summary>
public static class ModelPacker
{
    /// <summary>
    /// Packs <paramref name="weights"/> (by schema name, any float dtype and device) to
    /// <paramref name="path"/> atomically; the layout name is set here (null for a full-precision model).
    /// Returns the file's sizes.
    /// </summary>
    /// <exception cref="InvalidDataException">A parameter is missing, extra, misshapen or not finite.</exception>
    public static TditSizes Pack(string path, TditMetadata metadata, IReadOnlyDictionary<string, Tensor> weights,
        TditDType fullPrecision = TditDType.F16)
    {
        var config = metadata.Config;
        CheckWeights(config, weights);
        metadata = metadata with { TernaryLayout = config.Ternary ? TernaryPacking.LayoutName : null };
        using var writer = new TditWriter(path, metadata, TditSchema.Declarations(config, metadata.TernaryLayout, fullPrecision));
        foreach (var spec in ParameterSchema.Enumerate(config))
        {
            var t = weights[spec.Name];
            switch (spec.Kind)
            {
                case ParameterKind.TernaryWeight:
                    var trits = TensorExport.Trits(spec.Name, t);
                    writer.Write(spec.Name, TernaryPacking.Pack(trits, (int)spec.Shape[0], (int)spec.Shape[1]).AsSpan());
                    break;
                case ParameterKind.TernaryScale:
                    writer.Write(spec.Name, [TensorExport.Scalar(spec.Name, t)]);
                    break;
                default:
                    writer.Write(spec.Name, TensorExport.Floats(spec.Name, t).AsSpan());
                    break;
            }
        }
        writer.Commit();
        return TditSizes.Of(config, writer.Layout.DataStart, writer.Layout.Tensors);
    }

    /// <summary>
    /// Packs a training checkpoint's EMA or raw weights. Metadata: the checkpoint's config, preset =
    /// its config name, class names from its data (<see cref="ClassNames"/>), source = path and step.
    /// </summary>
    /// <exception cref="InvalidDataException">Not a valid checkpoint, or its weights do not fit its config.</exception>
    public static TditSizes PackCheckpoint(string checkpointPath, string path, WeightsKind kind, TditDType fullPrecision = TditDType.F16)
    {
        using var ckpt = Checkpoint.Load(checkpointPath);
        var metadata = new TditMetadata
        {
            Config = ckpt.Config,
            Preset = PresetName(ckpt.Config),
            Classes = ClassNames(ckpt.Config, ckpt.Data.Spec),
            Source = $"checkpoint {Path.GetFullPath(checkpointPath)} step {ckpt.Step}",
            Weights = kind == WeightsKind.Ema ? TditWeights.Ema : TditWeights.Raw,
            Latent = ckpt.Data.Latent,
        };
        return Pack(path, metadata, ckpt.Weights(kind), fullPrecision);
    }

    /// <summary>
    /// Packs an untrained model: <see cref="TerDiTModel"/>'s own initialisation from <paramref name="seed"/>
    /// (zero adaLN and final linear, so it predicts zero noise; for size and speed measurements).
    /// </summary>
    public static TditSizes PackRandomInit(TerDiTConfig config, string path, long seed = 0, TditDType fullPrecision = TditDType.F16)
    {
        using var model = new TerDiTModel(config, seed);
        var metadata = new TditMetadata
        {
            Config = config,
            Preset = PresetName(config),
            Classes = ClassNames(config, null),
            Source = $"random-init seed {seed}",
            Weights = TditWeights.Random,
        };
        return Pack(path, metadata, model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter), fullPrecision);
    }

    /// <summary>
    /// Class names for a model trained on <paramref name="dataSpec"/>: Fashion-MNIST's names, an image
    /// folder's sub-folder names (ordinal order, as <see cref="ImageFolder"/> labels them) when the folder
    /// still exists, or a latents file's names; labels without a name (or any unknown data) are named by their index.
    /// </summary>
    public static IReadOnlyList<string> ClassNames(TerDiTConfig config, string? dataSpec)
    {
        IReadOnlyList<string> known = [];
        if (dataSpec is not null && dataSpec.Equals(DatasetSource.FashionMnistName, StringComparison.OrdinalIgnoreCase))
            known = FashionMnist.ClassNames;
        else if (dataSpec is not null && Directory.Exists(dataSpec))
            known = Directory.GetDirectories(dataSpec).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        else if (dataSpec is not null && LatentSet.IsLatentFile(dataSpec))
            known = LatentSet.ClassNamesOf(dataSpec);
        if (known.Count > config.NumClasses) known = [];
        return Enumerable.Range(0, config.NumClasses).Select(i => i < known.Count ? known[i] : i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }

    /// <summary>
    /// Checks that <paramref name="weights"/> are exactly the config's parameters (<see cref="ParameterSchema"/>)
    /// with their shapes and a float dtype; throws <see cref="InvalidDataException"/> naming the first fault.
    /// </summary>
    public static void CheckWeights(TerDiTConfig config, IReadOnlyDictionary<string, Tensor> weights)
    {
        var names = new HashSet<string>();
        foreach (var spec in ParameterSchema.Enumerate(config))
        {
            names.Add(spec.Name);
            if (!weights.TryGetValue(spec.Name, out var t))
                throw new InvalidDataException($"parameter '{spec.Name}' ({spec.Kind} [{string.Join(", ", spec.Shape)}]) required by config '{config.Name}' is missing");
            if (!t.shape.SequenceEqual(spec.Shape))
                throw new InvalidDataException($"parameter '{spec.Name}' has shape [{string.Join(", ", t.shape)}], config '{config.Name}' needs [{string.Join(", ", spec.Shape)}]");
            if (!t.is_floating_point())
                throw new InvalidDataException($"parameter '{spec.Name}' is {t.dtype}, not a floating-point tensor");
        }
        var extra = weights.Keys.Where(k => !names.Contains(k)).Order(StringComparer.Ordinal).FirstOrDefault();
        if (extra is not null) throw new InvalidDataException($"parameter '{extra}' is not in config '{config.Name}''s parameter schema");
    }

    /// <summary>The preset whose config equals <paramref name="config"/> up to its data fields' defaults, else "custom".</summary>
    static string PresetName(TerDiTConfig config) =>
        Presets.All.TryGetValue(config.Name, out var preset) && preset.HiddenSize == config.HiddenSize && preset.Depth == config.Depth
            && preset.NumHeads == config.NumHeads && preset.PatchSize == config.PatchSize ? preset.Name : "custom";
}
