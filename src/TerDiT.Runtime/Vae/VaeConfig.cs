using System.Text.Json;
using TerDiT.Runtime.Import;

namespace TerDiT.Runtime.Vae;

/// <summary>
/// The architecture of a diffusers <c>AutoencoderKL</c> (the Stable Diffusion VAE family), read from its
/// <c>config.json</c>. Missing keys take diffusers' defaults; only the plain KL autoencoder is accepted:
/// <c>DownEncoderBlock2D</c>/<c>UpDecoderBlock2D</c> blocks, SiLU, group norm, no latent shift.
/// Stable Diffusion's VAE: channels (128, 256, 512, 512), 2 layers a block, 32 groups, 4 latent
/// channels, scaling factor 0.18215, 8× downsampling.
/// </summary>
public sealed record VaeConfig
{
    public int InChannels { get; init; } = 3;
    public int OutChannels { get; init; } = 3;
    /// <summary>Channels of each resolution level, highest resolution first.</summary>
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [64];
    public int LayersPerBlock { get; init; } = 1;
    public int LatentChannels { get; init; } = 4;
    public int NormGroups { get; init; } = 32;
    public double ScalingFactor { get; init; } = 0.18215;
    public bool UseQuantConv { get; init; } = true;
    public bool UsePostQuantConv { get; init; } = true;
    public bool MidBlockAttention { get; init; } = true;

    /// <summary>The architecture of Stable Diffusion's VAE (<c>stabilityai/sd-vae-ft-ema</c>, <c>-mse</c>).</summary>
    public static VaeConfig StableDiffusion => new() { BlockOutChannels = [128, 256, 512, 512], LayersPerBlock = 2 };

    /// <summary>Image side / latent side: 2^(levels − 1).</summary>
    public int DownsampleFactor => 1 << (BlockOutChannels.Count - 1);

    /// <summary>Largest channel count or level count accepted from a file.</summary>
    const int MaxChannels = 8192, MaxLevels = 8, MaxLayers = 16;

    /// <summary>Parses and validates <c>config.json</c> text; <paramref name="where"/> prefixes errors.</summary>
    /// <exception cref="ImportFormatException">Malformed JSON, wrong types, an unsupported block or activation, inconsistent sizes.</exception>
    public static VaeConfig Parse(string json, string where)
    {
        ImportFormatException Bad(string what) => new($"{where}: {what}");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw Bad($"not valid JSON: {e.Message}"); }
        using (doc)
        {
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw Bad("config is not a JSON object");
            JsonElement? Get(string key) => r.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;
            int Int(string key, int fallback) => Get(key) is { } v
                ? v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw Bad($"'{key}' is not an integer")
                : fallback;
            bool Bool(string key, bool fallback) => Get(key) is { } v
                ? v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Bad($"'{key}' is not a boolean")
                : fallback;
            string Text(JsonElement v, string key)
            {
                if (v.ValueKind != JsonValueKind.String) throw Bad($"'{key}' is not a string");
                try { return v.GetString()!; }
                catch (InvalidOperationException) { throw Bad($"'{key}' is not valid text (an escaped lone surrogate)"); }
            }
            string[] Strings(string key) => Get(key) is { ValueKind: JsonValueKind.Array } v
                ? v.EnumerateArray().Select(e => Text(e, key)).ToArray()
                : throw Bad($"'{key}' is missing or not an array");

            if (Get("_class_name") is { } cls && Text(cls, "_class_name") is var name && name != "AutoencoderKL")
                throw Bad($"_class_name is '{name}'; only AutoencoderKL (the Stable Diffusion VAE) is supported");
            if (Get("act_fn") is { } act && Text(act, "act_fn") is var fn && fn != "silu") throw Bad($"act_fn '{fn}' is not supported (silu is)");
            if (Get("shift_factor") is not null) throw Bad("a latent shift_factor is not supported (Stable Diffusion's VAE has none)");
            int[] channels = Get("block_out_channels") is { ValueKind: JsonValueKind.Array } bc
                ? bc.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int c) ? c : throw Bad("'block_out_channels' holds a non-integer")).ToArray()
                : [64];
            var down = Strings("down_block_types");
            var up = Strings("up_block_types");
            if (down.Any(t => t != "DownEncoderBlock2D") || up.Any(t => t != "UpDecoderBlock2D"))
                throw Bad("only DownEncoderBlock2D and UpDecoderBlock2D blocks are supported");
            if (down.Length != channels.Length || up.Length != channels.Length)
                throw Bad($"{down.Length} down and {up.Length} up blocks for {channels.Length} block_out_channels");
            double scale = Get("scaling_factor") is { } s ? s.ValueKind == JsonValueKind.Number && s.TryGetDouble(out double d) ? d : throw Bad("'scaling_factor' is not a number") : 0.18215;

            var config = new VaeConfig
            {
                InChannels = Int("in_channels", 3), OutChannels = Int("out_channels", 3), BlockOutChannels = channels,
                LayersPerBlock = Int("layers_per_block", 1), LatentChannels = Int("latent_channels", 4), NormGroups = Int("norm_num_groups", 32),
                ScalingFactor = scale, UseQuantConv = Bool("use_quant_conv", true), UsePostQuantConv = Bool("use_post_quant_conv", true),
                MidBlockAttention = Bool("mid_block_add_attention", true),
            };
            try { return config.Validate(); }
            catch (ArgumentException e) { throw Bad(e.Message); }
        }
    }

    /// <summary>The config as diffusers writes <c>config.json</c> (the keys <see cref="Parse"/> reads).</summary>
    public string ToJson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            void Strings(string key, string value)
            {
                w.WriteStartArray(key);
                for (int i = 0; i < BlockOutChannels.Count; i++) w.WriteStringValue(value);
                w.WriteEndArray();
            }
            w.WriteStartObject();
            w.WriteString("_class_name", "AutoencoderKL");
            w.WriteNumber("in_channels", InChannels);
            w.WriteNumber("out_channels", OutChannels);
            Strings("down_block_types", "DownEncoderBlock2D");
            Strings("up_block_types", "UpDecoderBlock2D");
            w.WriteStartArray("block_out_channels");
            foreach (int c in BlockOutChannels) w.WriteNumberValue(c);
            w.WriteEndArray();
            w.WriteNumber("layers_per_block", LayersPerBlock);
            w.WriteString("act_fn", "silu");
            w.WriteNumber("latent_channels", LatentChannels);
            w.WriteNumber("norm_num_groups", NormGroups);
            w.WriteNumber("scaling_factor", ScalingFactor);
            w.WriteBoolean("use_quant_conv", UseQuantConv);
            w.WriteBoolean("use_post_quant_conv", UsePostQuantConv);
            w.WriteBoolean("mid_block_add_attention", MidBlockAttention);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Reads <c>DIR/config.json</c>.</summary>
    public static VaeConfig Load(string directory)
    {
        var path = Path.Combine(directory, "config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"{directory} has no config.json (expected a diffusers AutoencoderKL folder: config.json + diffusion_pytorch_model.safetensors)");
        var info = new FileInfo(path);
        if (info.Length > 1 << 20) throw new ImportFormatException($"{path}: {info.Length} bytes is too large for a VAE config");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Throws <see cref="ArgumentException"/> when sizes are out of range or inconsistent.</summary>
    public VaeConfig Validate()
    {
        void Require(bool ok, string what) { if (!ok) throw new ArgumentException(what); }
        Require(BlockOutChannels.Count is >= 1 and <= MaxLevels, $"{BlockOutChannels.Count} resolution levels; 1 to {MaxLevels} are supported");
        Require(InChannels is > 0 and <= 64 && OutChannels is > 0 and <= 64 && LatentChannels is > 0 and <= 64, "image and latent channels must be in 1..64");
        Require(LayersPerBlock is > 0 and <= MaxLayers, $"layers_per_block must be in 1..{MaxLayers}");
        Require(NormGroups > 0, "norm_num_groups must be positive");
        foreach (int c in BlockOutChannels)
            Require(c is > 0 and <= MaxChannels && c % NormGroups == 0, $"block channels {c} must be in 1..{MaxChannels} and a multiple of {NormGroups} groups");
        Require(ScalingFactor > 0 && double.IsFinite(ScalingFactor), $"scaling factor must be positive, got {ScalingFactor}");
        return this;
    }
}
