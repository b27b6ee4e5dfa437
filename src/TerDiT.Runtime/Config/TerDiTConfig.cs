using System.Text.Json;
using System.Text.Json.Serialization;

namespace TerDiT.Runtime.Config;

/// <summary>How the learnable scale alpha of a ternary layer is initialised.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<AlphaInit>))]
public enum AlphaInit
{
    /// <summary>alpha ~ N(0, 1), as in the authors' code.</summary>
    Normal,
    /// <summary>alpha = mean(|W|) of the initial weights.</summary>
    Absmean,
}

/// <summary>
/// Architecture and data shape of a TerDiT model (docs/PAPER.md §2). Pure data: shared by the
/// TorchSharp model, the packed format and the runtime. Serialised as JSON in checkpoints and
/// packed files.
/// </summary>
public sealed record TerDiTConfig
{
    public string Name { get; init; } = "custom";
    public int InChannels { get; init; } = 1;
    /// <summary>Height = width of the input (pixels or latents).</summary>
    public int InputSize { get; init; } = 32;
    public int PatchSize { get; init; } = 2;
    /// <summary>D, the token width.</summary>
    public int HiddenSize { get; init; }
    public int Depth { get; init; }
    public int NumHeads { get; init; }
    public int NumClasses { get; init; } = 10;
    public bool LearnSigma { get; init; } = true;
    public bool QkNorm { get; init; } = true;
    /// <summary>TerDiT's RMSNorm over the 6·D adaLN modulation (false: the ablation without it).</summary>
    public bool AdaLnNorm { get; init; } = true;
    /// <summary>Ternary QAT layers; false gives the full-precision baseline.</summary>
    public bool Ternary { get; init; } = true;
    public AlphaInit AlphaInit { get; init; } = AlphaInit.Normal;
    public double ClassDropout { get; init; } = 0.1;
    public int FfnMultipleOf { get; init; } = 256;

    /// <summary>Width of the conditioning vector c = t_emb + y_emb.</summary>
    [JsonIgnore] public int CondDim => Math.Min(HiddenSize, 1024);
    /// <summary>SwiGLU hidden width: int(2·4·D/3) rounded up to a multiple of <see cref="FfnMultipleOf"/>.</summary>
    [JsonIgnore] public int FfnHidden => (2 * 4 * HiddenSize / 3 + FfnMultipleOf - 1) / FfnMultipleOf * FfnMultipleOf;
    [JsonIgnore] public int OutChannels => LearnSigma ? 2 * InChannels : InChannels;
    [JsonIgnore] public int GridSize => InputSize / PatchSize;
    /// <summary>T = (H/p)·(W/p).</summary>
    [JsonIgnore] public int Tokens => GridSize * GridSize;
    [JsonIgnore] public int HeadDim => HiddenSize / NumHeads;
    /// <summary>Label index of the unconditional ("null") class used by classifier-free guidance.</summary>
    [JsonIgnore] public int NullClass => NumClasses;
    /// <summary>Features of one flattened patch: C·p·p.</summary>
    [JsonIgnore] public int PatchFeatures => InChannels * PatchSize * PatchSize;

    /// <summary>Largest sizes a config may have: far above every preset, small enough that every derived size is an <c>int</c>.</summary>
    public const int MaxHiddenSize = 65_536, MaxDepth = 1_024, MaxClasses = 1 << 24, MaxChannels = 1_024, MaxInputSize = 8_192,
        MaxTokens = 65_536, MaxPatchFeatures = 1 << 20, MaxFfnMultipleOf = 65_536;

    /// <summary>
    /// Throws <see cref="ArgumentException"/> with a readable message if the config is inconsistent or a size
    /// lies outside (0, Max…] (the <c>Max</c> constants above; tokens and patch features computed with 64-bit
    /// arithmetic before they are compared).
    /// </summary>
    public TerDiTConfig Validate()
    {
        void Require(bool ok, string what) { if (!ok) throw new ArgumentException($"invalid model config '{Name}': {what}"); }
        void Size(string name, int value, int max) => Require(value > 0 && value <= max, $"{name} {value} is outside 1..{max}");
        Size(nameof(InChannels), InChannels, MaxChannels);
        Size(nameof(InputSize), InputSize, MaxInputSize);
        Size(nameof(PatchSize), PatchSize, MaxInputSize);
        Size(nameof(HiddenSize), HiddenSize, MaxHiddenSize);
        Size(nameof(Depth), Depth, MaxDepth);
        Size(nameof(NumHeads), NumHeads, MaxHiddenSize);
        Size(nameof(NumClasses), NumClasses, MaxClasses);
        Size(nameof(FfnMultipleOf), FfnMultipleOf, MaxFfnMultipleOf);
        Require(Enum.IsDefined(AlphaInit), $"{nameof(AlphaInit)} {(int)AlphaInit} is not one of {string.Join(", ", Enum.GetNames<AlphaInit>())}");
        long patchFeatures = (long)InChannels * PatchSize * PatchSize, grid = InputSize / PatchSize;
        Require(patchFeatures <= MaxPatchFeatures, $"a patch of {InChannels}×{PatchSize}×{PatchSize} = {patchFeatures} features exceeds {MaxPatchFeatures}");
        Require(grid * grid <= MaxTokens, $"{InputSize}/{PatchSize} = {grid} patches a side make {grid * grid} tokens, more than {MaxTokens}");
        Require(InputSize % PatchSize == 0, $"input size {InputSize} is not a multiple of patch size {PatchSize}");
        Require(HiddenSize % NumHeads == 0, $"hidden size {HiddenSize} is not a multiple of {NumHeads} heads");
        Require(HeadDim % 2 == 0, $"head dimension {HeadDim} must be even for RoPE");
        Require(ClassDropout is >= 0 and < 1, "class dropout must be in [0, 1)");
        return this;
    }

    public string ToJson() => JsonSerializer.Serialize(this, TerDiTConfigJson.Default.TerDiTConfig);

    /// <summary>
    /// The JSON keys of a config, those <see cref="ToJson"/> writes: the settable property names above, case-sensitive
    /// (<c>HiddenSize</c>, not <c>hiddenSize</c>).
    /// </summary>
    public static IReadOnlyList<string> JsonKeys { get; } = KeysOf(new TerDiTConfig().ToJson());

    static string[] KeysOf(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateObject().Select(p => p.Name).ToArray();
    }

    /// <summary>
    /// Parses and validates a config: a JSON object with exactly the keys <see cref="JsonKeys"/>, as
    /// <see cref="ToJson"/> writes it. Malformed JSON, unknown keys and missing keys (the message names every
    /// one) become <see cref="FormatException"/>; an inconsistent config <see cref="ArgumentException"/>.
    /// </summary>
    public static TerDiTConfig FromJson(string json)
    {
        try
        {
            using (var doc = JsonDocument.Parse(json))
            {
                var root = doc.RootElement;
                if (root.ValueKind == JsonValueKind.Null) throw new FormatException("model config is null");
                if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"model config is a JSON {root.ValueKind}, expected an object");
                var keys = root.EnumerateObject().Select(p => p.Name).ToList();
                var unknown = keys.Except(JsonKeys, StringComparer.Ordinal).ToList();
                if (unknown.Count > 0)
                    throw new FormatException($"model config has unknown key(s) {string.Join(", ", unknown.Select(k => $"'{k}'"))}; " +
                                              $"the keys are, case-sensitive: {string.Join(", ", JsonKeys)}");
                var missing = JsonKeys.Except(keys, StringComparer.Ordinal).ToList();
                if (missing.Count > 0) throw new FormatException($"model config lacks the key(s) {string.Join(", ", missing.Select(k => $"'{k}'"))}");
            }
            return JsonSerializer.Deserialize(json, TerDiTConfigJson.Default.TerDiTConfig)!.Validate();
        }
        catch (JsonException e) { throw new FormatException($"model config is not valid JSON: {e.Message}", e); }
    }
}

/// <summary>Source-generated JSON for <see cref="TerDiTConfig"/>, so the runtime stays trim- and AOT-safe.</summary>
[JsonSerializable(typeof(TerDiTConfig))]
sealed partial class TerDiTConfigJson : JsonSerializerContext;
