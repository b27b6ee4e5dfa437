using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using TerDiT.Runtime.Config;

namespace TerDiT.Runtime.Format;

/// <summary>Which weights of a training run were packed.</summary>
public enum TditWeights
{
    /// <summary>The exponential moving average of the weights ("ema").</summary>
    Ema,
    /// <summary>The optimiser's current weights ("raw").</summary>
    Raw,
    /// <summary>A randomly initialised, untrained model ("random").</summary>
    Random,
}

/// <summary>
/// The diffusion process the model was trained for (docs/PAPER.md §3). Stored in the <c>diffusion</c>
/// metadata value as JSON <c>{"steps":1000,"schedule":"linear","beta_start":0.0001,"beta_end":0.02,"learn_sigma":true}</c>;
/// <c>learn_sigma</c> is written from the config (not a field here) and checked against it on read.
/// </summary>
public sealed record TditDiffusion
{
    public int Steps { get; init; } = 1000;
    /// <summary>Beta schedule name ("linear").</summary>
    public string Schedule { get; init; } = "linear";
    public double BetaStart { get; init; } = 1e-4;
    public double BetaEnd { get; init; } = 0.02;
}

/// <summary>
/// The latent space of a latent diffusion model: its samples are VAE latents times
/// <see cref="ScalingFactor"/>, decoded by the VAE named here. Stored in the <c>latent</c> metadata
/// value as JSON <c>{"vae":"…","vae_sha256":"…"|null,"scaling_factor":0.18215,"shape":[C,H,W]}</c>;
/// <c>shape</c> is written from the config and checked against it on read.
/// </summary>
public sealed record TditLatent
{
    /// <summary>The VAE's name (e.g. <c>stabilityai/sd-vae-ft-ema</c>, or the folder the latents were encoded with).</summary>
    public required string Vae { get; init; }
    /// <summary>SHA-256 (64 lower-case hex digits) of the VAE's weights file, or null when the model does not pin one.</summary>
    public string? VaeSha256 { get; init; }
    /// <summary>Model latents = VAE latents · this (Stable Diffusion's VAE: 0.18215).</summary>
    public required double ScalingFactor { get; init; }
}

/// <summary>
/// Everything a <c>.tdit</c> file says about its model besides the tensors, typed. On disk it is the
/// safetensors <c>__metadata__</c> map of strings (keys in <see cref="TditKeys"/>); the writer adds
/// <c>format</c>, <c>format_version</c> and <c>checksum</c>.
/// </summary>
public sealed record TditMetadata
{
    public required TerDiTConfig Config { get; init; }
    /// <summary>Preset name the config came from ("TerDiT-Tiny", …, or "custom").</summary>
    public required string Preset { get; init; }
    /// <summary>Class names, index = label; exactly <see cref="TerDiTConfig.NumClasses"/> of them.</summary>
    public required IReadOnlyList<string> Classes { get; init; }
    public TditDiffusion Diffusion { get; init; } = new();
    /// <summary>Checkpoint path and step, or "random-init".</summary>
    public required string Source { get; init; }
    public required TditWeights Weights { get; init; }
    /// <summary>
    /// Name of the bit layout of the packed ternary tensors (the kernels' <c>TernaryPacking</c> defines
    /// it; this container treats the bytes as opaque). Required when <see cref="TerDiTConfig.Ternary"/>,
    /// must be null otherwise.
    /// </summary>
    public string? TernaryLayout { get; init; }
    /// <summary>The VAE latent space the model generates in; null for a pixel-space model.</summary>
    public TditLatent? Latent { get; init; }
    /// <summary>Further free-form string entries (keys must not collide with <see cref="TditKeys"/>).</summary>
    public IReadOnlyDictionary<string, string> Extra { get; init; } = new Dictionary<string, string>();

    /// <summary>Compact JSON written by <paramref name="write"/>, non-ASCII kept readable.</summary>
    static string JsonText(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            write(w);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// The <c>__metadata__</c> strings this record stands for, without <c>checksum</c> (the writer adds it).
    /// Throws <see cref="ArgumentException"/> when the record is inconsistent with its config.
    /// </summary>
    public IReadOnlyDictionary<string, string> ToStrings()
    {
        var c = Config.Validate();
        if (string.IsNullOrWhiteSpace(Preset)) throw new ArgumentException("preset name is empty");
        if (string.IsNullOrWhiteSpace(Source)) throw new ArgumentException("source is empty (use \"random-init\" for an untrained model)");
        if (Classes.Count != c.NumClasses)
            throw new ArgumentException($"{Classes.Count} class names for a config with {c.NumClasses} classes");
        if (c.Ternary && string.IsNullOrWhiteSpace(TernaryLayout))
            throw new ArgumentException("a ternary model needs a ternary_layout name");
        if (!c.Ternary && TernaryLayout is not null)
            throw new ArgumentException("a full-precision model (Ternary = false) has no ternary_layout");
        CheckDiffusion(Diffusion, s => new ArgumentException(s));

        var m = new Dictionary<string, string>
        {
            [TditKeys.Format] = TditKeys.FormatName,
            [TditKeys.FormatVersion] = TditKeys.CurrentVersion,
            [TditKeys.Config] = c.ToJson(),
            [TditKeys.Preset] = Preset,
            [TditKeys.Classes] = JsonText(w =>
            {
                w.WriteStartArray();
                foreach (var name in Classes) w.WriteStringValue(name);
                w.WriteEndArray();
            }),
            [TditKeys.InputShape] = InputShape(c),
            [TditKeys.Diffusion] = JsonText(w =>
            {
                w.WriteStartObject();
                w.WriteNumber("steps", Diffusion.Steps);
                w.WriteString("schedule", Diffusion.Schedule);
                w.WriteNumber("beta_start", Diffusion.BetaStart);
                w.WriteNumber("beta_end", Diffusion.BetaEnd);
                w.WriteBoolean("learn_sigma", c.LearnSigma);
                w.WriteEndObject();
            }),
            [TditKeys.Source] = Source,
            [TditKeys.Weights] = WeightsName(Weights),
        };
        if (TernaryLayout is not null) m[TditKeys.TernaryLayout] = TernaryLayout;
        if (Latent is { } latent)
        {
            CheckLatent(latent, s => new ArgumentException(s));
            m[TditKeys.Latent] = JsonText(w =>
            {
                w.WriteStartObject();
                w.WriteString("vae", latent.Vae);
                if (latent.VaeSha256 is null) w.WriteNull("vae_sha256");
                else w.WriteString("vae_sha256", latent.VaeSha256);
                w.WriteNumber("scaling_factor", latent.ScalingFactor);
                w.WritePropertyName("shape");
                w.WriteRawValue(InputShape(c));
                w.WriteEndObject();
            });
        }
        foreach (var (k, v) in Extra)
        {
            if (TditKeys.Reserved.Contains(k)) throw new ArgumentException($"extra metadata key '{k}' is reserved by the format");
            m[k] = v;
        }
        return m;
    }

    /// <summary>
    /// Parses the <c>__metadata__</c> strings of a file (format name and version already checked by the
    /// caller). <paramref name="where"/> prefixes every error message (the file name).
    /// </summary>
    public static TditMetadata FromStrings(IReadOnlyDictionary<string, string> m, string where)
    {
        TditFormatException Bad(string what) => new($"{where}: {what}");
        string Get(string key) => m.TryGetValue(key, out var v) ? v : throw Bad($"__metadata__ has no '{key}' entry");

        TerDiTConfig config;
        try { config = TerDiTConfig.FromJson(Get(TditKeys.Config)); }
        catch (Exception e) when (e is FormatException or ArgumentException) { throw Bad($"metadata 'config' is invalid: {e.Message}"); }

        string[] classes;
        try
        {
            using var d = JsonDocument.Parse(Get(TditKeys.Classes));
            classes = d.RootElement.EnumerateArray().Select(e => e.GetString() ?? throw new InvalidOperationException("null name")).ToArray();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw Bad($"metadata 'classes' is not a JSON array of strings: {e.Message}");
        }
        if (classes.Length != config.NumClasses)
            throw Bad($"metadata 'classes' has {classes.Length} names but the config has {config.NumClasses} classes");

        long[] inputShape;
        try
        {
            using var d = JsonDocument.Parse(Get(TditKeys.InputShape));
            inputShape = d.RootElement.EnumerateArray().Select(e => e.GetInt64()).ToArray();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw Bad($"metadata 'input_shape' is not a JSON array of integers: {e.Message}");
        }
        if (!inputShape.SequenceEqual([config.InChannels, config.InputSize, config.InputSize]))
            throw Bad($"metadata 'input_shape' {m[TditKeys.InputShape]} does not match the config's {InputShape(config)}");

        TditDiffusion diffusion;
        try
        {
            using var d = JsonDocument.Parse(Get(TditKeys.Diffusion));
            var r = d.RootElement;
            diffusion = new TditDiffusion
            {
                Steps = r.GetProperty("steps").GetInt32(),
                Schedule = r.GetProperty("schedule").GetString() ?? "",
                BetaStart = r.GetProperty("beta_start").GetDouble(),
                BetaEnd = r.GetProperty("beta_end").GetDouble(),
            };
            if (r.GetProperty("learn_sigma").GetBoolean() != config.LearnSigma)
                throw Bad("metadata 'diffusion' learn_sigma disagrees with the config");
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw Bad($"metadata 'diffusion' is not the expected JSON object (steps, schedule, beta_start, beta_end, learn_sigma): {e.Message}");
        }
        CheckDiffusion(diffusion, s => Bad($"metadata 'diffusion': {s}"));

        var weightsName = Get(TditKeys.Weights);
        TditWeights weights = weightsName switch
        {
            "ema" => TditWeights.Ema,
            "raw" => TditWeights.Raw,
            "random" => TditWeights.Random,
            _ => throw Bad($"metadata 'weights' is '{weightsName}', expected ema, raw or random"),
        };

        m.TryGetValue(TditKeys.TernaryLayout, out var layout);
        if (config.Ternary && string.IsNullOrWhiteSpace(layout)) throw Bad("a ternary model's __metadata__ has no 'ternary_layout'");
        if (!config.Ternary && layout is not null) throw Bad("a full-precision model (Ternary = false) has a 'ternary_layout'");

        TditLatent? latent = null;
        if (m.TryGetValue(TditKeys.Latent, out var latentJson))
        {
            try
            {
                using var d = JsonDocument.Parse(latentJson);
                var r = d.RootElement;
                var sha = r.GetProperty("vae_sha256");
                latent = new TditLatent
                {
                    Vae = r.GetProperty("vae").GetString() ?? "",
                    VaeSha256 = sha.ValueKind == JsonValueKind.Null ? null : sha.GetString(),
                    ScalingFactor = r.GetProperty("scaling_factor").GetDouble(),
                };
                if (!r.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).SequenceEqual([config.InChannels, config.InputSize, config.InputSize]))
                    throw Bad($"metadata 'latent' shape {r.GetProperty("shape").GetRawText()} does not match the config's {InputShape(config)}");
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw Bad($"metadata 'latent' is not the expected JSON object (vae, vae_sha256, scaling_factor, shape): {e.Message}");
            }
            CheckLatent(latent, s => Bad($"metadata 'latent': {s}"));
        }

        return new TditMetadata
        {
            Config = config,
            Preset = Get(TditKeys.Preset),
            Classes = classes,
            Diffusion = diffusion,
            Source = Get(TditKeys.Source),
            Weights = weights,
            TernaryLayout = layout,
            Latent = latent,
            Extra = m.Where(kv => !TditKeys.Reserved.Contains(kv.Key)).ToDictionary(),
        };
    }

    /// <summary>"[C,H,W]" of the model input.</summary>
    static string InputShape(TerDiTConfig c) => string.Create(CultureInfo.InvariantCulture, $"[{c.InChannels},{c.InputSize},{c.InputSize}]");

    static string WeightsName(TditWeights w) => w switch
    {
        TditWeights.Ema => "ema",
        TditWeights.Raw => "raw",
        TditWeights.Random => "random",
        _ => throw new ArgumentOutOfRangeException(nameof(w), w, "unknown weights kind"),
    };

    static void CheckLatent(TditLatent l, Func<string, Exception> error)
    {
        if (string.IsNullOrWhiteSpace(l.Vae)) throw error("the VAE name is empty");
        if (l.VaeSha256 is { } h && (h.Length != 64 || !h.All(char.IsAsciiHexDigitLower)))
            throw error($"vae_sha256 '{h}' is not 64 lower-case hex digits");
        if (!(l.ScalingFactor > 0) || !double.IsFinite(l.ScalingFactor)) throw error($"scaling factor must be positive and finite, got {l.ScalingFactor}");
    }

    static void CheckDiffusion(TditDiffusion d, Func<string, Exception> error)
    {
        if (d.Steps <= 0) throw error($"diffusion steps must be positive, got {d.Steps}");
        if (string.IsNullOrWhiteSpace(d.Schedule)) throw error("diffusion schedule name is empty");
        if (!(d.BetaStart > 0 && d.BetaStart <= d.BetaEnd && d.BetaEnd < 1))
            throw error($"diffusion betas must satisfy 0 < beta_start <= beta_end < 1, got {d.BetaStart}, {d.BetaEnd}");
    }
}

/// <summary>The <c>__metadata__</c> keys of a <c>.tdit</c> file.</summary>
public static class TditKeys
{
    public const string Format = "format";
    public const string FormatVersion = "format_version";
    public const string Config = "config";
    public const string Preset = "preset";
    public const string Classes = "classes";
    public const string InputShape = "input_shape";
    public const string Diffusion = "diffusion";
    public const string Source = "source";
    public const string Weights = "weights";
    public const string TernaryLayout = "ternary_layout";
    public const string Latent = "latent";
    public const string Checksum = "checksum";

    /// <summary>Value of <c>format</c>.</summary>
    public const string FormatName = "terdit-packed";
    /// <summary>The <c>format_version</c> this code writes.</summary>
    public const string CurrentVersion = "1";
    /// <summary>The <c>format_version</c> values this code reads.</summary>
    public static readonly IReadOnlySet<string> SupportedVersions = new HashSet<string> { "1" };

    public static readonly IReadOnlySet<string> Reserved = new HashSet<string>
    {
        Format, FormatVersion, Config, Preset, Classes, InputShape, Diffusion, Source, Weights, TernaryLayout, Latent, Checksum,
    };
}
