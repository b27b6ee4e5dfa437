using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using TerDiT.Model;
using TerDiT.Runtime.Config;
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

/// <summary>The data a run was trained on, checked on resume.</summary>
public sealed record DataInfo(string Spec, int Count);

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
            ["data"] = new JsonObject { ["spec"] = Data.Spec, ["count"] = Data.Count },
        };
        CheckpointFile.Write(path, header,
            Model.Select(kv => ("model." + kv.Key, kv.Value))
                .Concat(Ema.Select(kv => ("ema." + kv.Key, kv.Value)))
                .Concat(OptimizerState.Select(kv => ("optim." + kv.Key, kv.Value))));
    }

    /// <summary>Reads and validates a checkpoint (see <see cref="CheckpointFile.Read"/> for the refusals).</summary>
    public static Checkpoint Load(string path)
    {
        var (header, tensors) = CheckpointFile.Read(path);
        try
        {
            if ((string?)header["format"] != FormatName) throw new InvalidDataException($"{path}: not a training checkpoint (format '{header["format"]}')");
            var rng = header["rng"]!.AsObject();
            var data = header["data"]!.AsObject();
            Dictionary<string, Tensor> Group(string prefix) =>
                tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
            return new Checkpoint
            {
                Config = TerDiTConfig.FromJson(header["config"]!.ToJsonString()),
                Options = header["options"].Deserialize<TrainOptions>() ?? throw new InvalidDataException("options missing"),
                Step = (long)header["step"]!,
                Data = new DataInfo((string)data["spec"]!, (int)data["count"]!),
                DataPosition = ((long)rng["epoch"]!, (int)rng["cursor"]!),
                OptimizerStep = (long)header["optimizer"]!["step"]!,
                Model = Group("model."), Ema = Group("ema."), OptimizerState = Group("optim."),
            };
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or JsonException or ArgumentException)
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw new InvalidDataException($"{path}: checkpoint header is missing or has a malformed field ({e.Message})", e);
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
