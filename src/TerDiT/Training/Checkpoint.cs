using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using TerDiT.Model;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Training;

/// <summary>Which weights of a checkpoint to use for a model.</summary>
public enum WeightsKind
{
    /// <summary>The exponential moving average (what DiT samples from).</summary>
    Ema,
    /// <summary>The optimizer's current weights.</summary>
    Raw,
}

/// <summary>The data a run was trained on, checked on resume; <paramref name="Latent"/> is the VAE latent space of latent data.</summary>
public sealed record DataInfo(string Spec, int Count, TditLatent? Latent = null);

/// <summary>
/// A training snapshot in <see cref="CheckpointFile"/>'s container: model config, train options, step,
/// random state, data identity, and the tensors <c>model.NAME</c>, <c>ema.NAME</c>, <c>optim.exp_avg.NAME</c>,
/// <c>optim.exp_avg_sq.NAME</c> (CPU, float32 as trained).
/// The random state is (seed, step): every draw of step s comes from a CPU generator seeded with
/// <c>Seeds.Derive(seed, StepStream, s)</c> and the data order is a permutation per epoch from
/// <c>Seeds.Derive(seed, EpochStream, epoch)</c>; the header also records the epoch and cursor (position in it) of the next step.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    public const string FormatName = "terdit-checkpoint";

    public required TerDiTConfig Config { get; init; }
    public required TrainOptions Options { get; init; }
    /// <summary>Optimizer steps completed.</summary>
    public required long Step { get; init; }
    public required DataInfo Data { get; init; }
    /// <summary>Epoch and cursor of the next step's first sample (derived from seed, step and data size; stored for inspection).</summary>
    public required (long Epoch, int Cursor) DataPosition { get; init; }
    /// <summary>AdamW's step count (t of its bias corrections).</summary>
    public required long OptimizerStep { get; init; }
    public required IReadOnlyDictionary<string, Tensor> Model { get; init; }
    public required IReadOnlyDictionary<string, Tensor> Ema { get; init; }
    /// <summary>AdamW moments by <see cref="AdamW.State"/> name.</summary>
    public required IReadOnlyDictionary<string, Tensor> OptimizerState { get; init; }

    /// <summary>RUN_DIR/checkpoints/step-NNNNNNN.ckpt.</summary>
    public static string PathFor(string runDir, long step) =>
        Path.Combine(runDir, "checkpoints", $"step-{step.ToString("D7", CultureInfo.InvariantCulture)}.ckpt");

    /// <summary>
    /// A checkpoint file as given, or for a folder (a run directory or its <c>checkpoints</c> folder)
    /// the checkpoint with the highest step in it.
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing there, or a folder without checkpoints.</exception>
    public static string Resolve(string checkpointOrRunDir)
    {
        if (File.Exists(checkpointOrRunDir)) return checkpointOrRunDir;
        if (!Directory.Exists(checkpointOrRunDir)) throw new FileNotFoundException($"checkpoint {checkpointOrRunDir} not found", checkpointOrRunDir);
        var dir = Path.Combine(checkpointOrRunDir, "checkpoints");
        if (!Directory.Exists(dir)) dir = checkpointOrRunDir;
        var latest = Directory.GetFiles(dir, "step-*.ckpt").Order(StringComparer.Ordinal).LastOrDefault();
        return latest ?? throw new FileNotFoundException($"no checkpoint (step-*.ckpt) in {dir}", dir);
    }

    /// <summary>
    /// Loads the newest checkpoint of a run directory that is valid: when the newest is damaged (a crash while
    /// the disk filled, a bad copy), the one before it, and so on. <paramref name="skipped"/> gets one message per
    /// damaged checkpoint passed over, newest first; <paramref name="path"/> the file loaded. A file path is loaded as it is.
    /// </summary>
    /// <exception cref="FileNotFoundException">No checkpoint there.</exception>
    /// <exception cref="InvalidDataException">Every checkpoint there is damaged (the newest one's message).</exception>
    public static Checkpoint LoadLatestValid(string checkpointOrRunDir, out string path, out IReadOnlyList<string> skipped)
    {
        path = Resolve(checkpointOrRunDir);
        var failures = new List<string>();
        skipped = failures;
        if (File.Exists(checkpointOrRunDir)) return Load(path);
        var candidates = Directory.GetFiles(Path.GetDirectoryName(path)!, "step-*.ckpt").Order(StringComparer.Ordinal).Reverse().ToList();
        foreach (var candidate in candidates)
        {
            path = candidate;
            try { return Load(candidate); }
            catch (InvalidDataException e) { failures.Add(e.Message); }
        }
        throw new InvalidDataException(failures[0]);
    }

    /// <summary>Writes the checkpoint to <paramref name="path"/> atomically.</summary>
    public void Save(string path)
    {
        var header = new JsonObject
        {
            ["format"] = FormatName,
            ["config"] = JsonNode.Parse(Config.ToJson()),
            ["options"] = JsonSerializer.SerializeToNode(Options),
            ["step"] = Step,
            ["rng"] = new JsonObject
            {
                ["scheme"] = "per-step CPU generator seeded Derive(seed, 1, step); data order Fisher-Yates per epoch seeded Derive(seed, 2, epoch)",
                ["seed"] = Options.Seed, ["step"] = Step, ["epoch"] = DataPosition.Epoch, ["cursor"] = DataPosition.Cursor,
            },
            ["optimizer"] = new JsonObject
            {
                ["type"] = "AdamW", ["step"] = OptimizerStep, ["lr"] = Options.LearningRate,
                ["betas"] = new JsonArray(AdamW.DefaultBeta1, AdamW.DefaultBeta2), ["eps"] = AdamW.DefaultEps, ["weight_decay"] = Options.WeightDecay,
            },
            ["data"] = new JsonObject
            {
                ["spec"] = Data.Spec, ["count"] = Data.Count,
                ["latent"] = Data.Latent is { } l
                    ? new JsonObject { ["vae"] = l.Vae, ["vae_sha256"] = l.VaeSha256, ["scaling_factor"] = l.ScalingFactor }
                    : null,
            },
        };
        CheckpointFile.Write(path, header,
            Model.Select(kv => ("model." + kv.Key, kv.Value))
                .Concat(Ema.Select(kv => ("ema." + kv.Key, kv.Value)))
                .Concat(OptimizerState.Select(kv => ("optim." + kv.Key, kv.Value))));
    }

    /// <summary>Tensor name prefixes: the weights, their EMA, and (optional, all or none) AdamW's moments.</summary>
    static readonly string[] WeightGroups = ["model.", "ema."], OptimizerGroups = ["optim.exp_avg.", "optim.exp_avg_sq."];

    /// <summary>
    /// Reads and validates a checkpoint (see <see cref="CheckpointFile.Read"/> for the container's refusals).
    /// Before any tensor is allocated the header is checked: format, a valid config within
    /// <see cref="TerDiTConfig"/>'s bounds, valid train options, step counts in [0, <see cref="TrainOptions.MaxSteps"/>],
    /// data size and position, and the tensor list against the config's <see cref="ParameterSchema"/> (every
    /// <c>model.NAME</c> and <c>ema.NAME</c>, and either every AdamW moment or none, with the parameter's shape and a
    /// floating dtype; nothing else), so a file's config cannot make it allocate more than its own tensors.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a valid training checkpoint; the message names it and the fault.</exception>
    public static Checkpoint Load(string path)
    {
        (TerDiTConfig Config, TrainOptions Options, long Step, DataInfo Data, (long, int) Position, long OptimizerStep)? parsed = null;
        var (_, tensors) = CheckpointFile.Read(path, (header, entries) =>
        {
            InvalidDataException Bad(string what) => new($"{path}: {what}");
            if (header["format"] is not JsonValue f || !f.TryGetValue(out string? format) || format != FormatName)
                throw Bad($"not a training checkpoint (format '{header["format"]?.ToJsonString()}', expected '{FormatName}')");
            try
            {
                var config = TerDiTConfig.FromJson(header["config"]!.ToJsonString());
                var options = (header["options"].Deserialize<TrainOptions>() ?? throw new FormatException("options are null")).Validate();
                var rng = header["rng"]!.AsObject();
                var data = header["data"]!.AsObject();
                long step = (long)header["step"]!, optimizerStep = (long)header["optimizer"]!["step"]!, epoch = (long)rng["epoch"]!;
                int count = (int)data["count"]!, cursor = (int)rng["cursor"]!;
                if (step is < 0 or > TrainOptions.MaxSteps || optimizerStep is < 0 or > TrainOptions.MaxSteps)
                    throw Bad($"step {step} or optimizer step {optimizerStep} is outside 0..{TrainOptions.MaxSteps}");
                if (count <= 0 || cursor < 0 || cursor >= count || epoch < 0)
                    throw Bad($"data position (epoch {epoch}, cursor {cursor}) does not fit {count} images");
                CheckTensors(config, entries, Bad);
                var latent = data["latent"] is JsonObject l
                    ? new TditLatent { Vae = (string)l["vae"]!, VaeSha256 = (string?)l["vae_sha256"], ScalingFactor = (double)l["scaling_factor"]! }
                    : null;
                parsed = (config, options, step, new DataInfo((string)data["spec"]!, count, latent), (epoch, cursor), optimizerStep);
            }
            catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or JsonException or ArgumentException or OverflowException)
            {
                throw Bad($"checkpoint header is missing or has a malformed field ({e.Message})");
            }
        });
        Dictionary<string, Tensor> Group(string prefix) =>
            tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
        var h = parsed!.Value;
        return new Checkpoint
        {
            Config = h.Config, Options = h.Options, Step = h.Step, Data = h.Data, DataPosition = h.Position,
            OptimizerStep = h.OptimizerStep, Model = Group("model."), Ema = Group("ema."), OptimizerState = Group("optim."),
        };
    }

    /// <summary>The tensor list must be exactly the config's parameters in the weight groups (and all or none of the optimizer groups).</summary>
    static void CheckTensors(TerDiTConfig config, IReadOnlyList<CheckpointTensorInfo> entries, Func<string, InvalidDataException> bad)
    {
        var byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var groups = byName.Keys.Any(n => n.StartsWith("optim.", StringComparison.Ordinal)) ? [.. WeightGroups, .. OptimizerGroups] : WeightGroups;
        var expected = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in ParameterSchema.Enumerate(config)) // stops at the first missing tensor: a huge config costs nothing
            foreach (var g in groups)
            {
                string shape = $"[{string.Join(", ", p.Shape)}]";
                if (!byName.TryGetValue(g + p.Name, out var e)) throw bad($"tensor '{g}{p.Name}' {shape} required by the config is missing");
                if (!e.Shape.SequenceEqual(p.Shape) || e.DType is not (ScalarType.Float32 or ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16))
                    throw bad($"tensor '{e.Name}' is {e.DType} [{string.Join(", ", e.Shape)}]; the config needs a floating tensor {shape}");
                expected.Add(e.Name);
            }
        if (expected.Count != entries.Count)
        {
            var extra = entries.Select(e => e.Name).Where(n => !expected.Contains(n)).ToList();
            throw bad($"{extra.Count} tensor(s) not in the config's parameter schema: {string.Join(", ", extra.Take(3).Select(n => $"'{n}'"))}{(extra.Count > 3 ? ", …" : "")}");
        }
    }

    /// <summary>The chosen weights by parameter name.</summary>
    public IReadOnlyDictionary<string, Tensor> Weights(WeightsKind kind) => kind == WeightsKind.Ema ? Ema : Model;

    /// <summary>
    /// Builds the checkpoint's model with the chosen weights on <paramref name="device"/> (CPU by default),
    /// in eval mode. Every parameter must be present with its shape.
    /// </summary>
    public TerDiTModel CreateModel(WeightsKind kind, Device? device = null)
    {
        var model = new TerDiTModel(Config);
        CopyInto(model, Weights(kind));
        if (device is not null && device.type != DeviceType.CPU) model.to(device);
        model.eval();
        return model;
    }

    /// <summary>Copies <paramref name="weights"/> into the module's parameters by name (all of them, shapes checked).</summary>
    public static void CopyInto(nn.Module module, IReadOnlyDictionary<string, Tensor> weights)
    {
        using var _ = torch.no_grad();
        var names = new HashSet<string>();
        foreach (var (name, p) in module.named_parameters())
        {
            names.Add(name);
            if (!weights.TryGetValue(name, out var w)) throw new InvalidDataException($"checkpoint lacks parameter '{name}'");
            if (!w.shape.SequenceEqual(p.shape))
                throw new InvalidDataException($"checkpoint parameter '{name}' has shape [{string.Join(", ", w.shape)}], the model expects [{string.Join(", ", p.shape)}]");
            p.copy_(w);
        }
        var extra = weights.Keys.FirstOrDefault(k => !names.Contains(k));
        if (extra is not null) throw new InvalidDataException($"checkpoint holds parameter '{extra}' that the model does not have");
    }

    public void Dispose()
    {
        foreach (var t in Model.Values.Concat(Ema.Values).Concat(OptimizerState.Values)) t.Dispose();
    }
}
