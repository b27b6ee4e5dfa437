using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;
using TerDiT.Runtime;

namespace TerDiT.Evaluation;

/// <summary>How a saved classifier was trained and how well it scores; stored in the weights file.</summary>
public sealed record ClassifierProvenance(int TrainImages, int Epochs, int Seed, double TestAccuracy, int TestImages, double TrainSeconds);

public sealed partial class FeatureClassifier
{
    /// <summary>File name of the committed weights, under <c>models/</c> in the repository and in the app's output.</summary>
    public const string DefaultFileName = "fmnist-classifier.safetensors";
    const string FormatName = "terdit-fmnist-classifier";
    const string FormatVersion = "1";
    const long MaxHeaderBytes = 1 << 20;

    /// <summary>
    /// Writes the weights (every float32 entry of the state dict: parameters and BatchNorm running statistics) as a
    /// safetensors file: 8-byte little-endian header length, a JSON header (tensor name → dtype <c>F32</c>, shape,
    /// data offsets; <c>__metadata__</c> with format, version, architecture, dimensions, provenance and the SHA-256 of
    /// the data section), then the little-endian float32 data. Written to a temp file and renamed.
    /// </summary>
    public void Save(string path, ClassifierProvenance provenance)
    {
        RequireLittleEndian();
        var entries = FloatState();
        var header = new JsonObject();
        var data = new MemoryStream();
        foreach (var (name, t) in entries)
        {
            var values = t.detach().cpu().contiguous().data<float>().ToArray();
            long begin = data.Length;
            data.Write(MemoryMarshal.AsBytes(values.AsSpan())); // host order = little-endian (RequireLittleEndian)
            header[name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(begin, data.Length),
            };
        }
        var bytes = data.ToArray();
        header["__metadata__"] = new JsonObject
        {
            ["format"] = FormatName,
            ["format_version"] = FormatVersion,
            ["architecture"] = Architecture,
            ["input_size"] = Str(InputSize),
            ["feature_dim"] = Str(FeatureDim),
            ["num_classes"] = Str(NumClasses),
            ["provenance"] = JsonSerializer.Serialize(provenance),
            ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(bytes)),
        };
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8; // safetensors pads the header with spaces to 8-byte alignment
        AtomicFile.Write(path, file =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(len, padded);
            file.Write(len);
            file.Write(json);
            for (int i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
            file.Write(bytes);
        });
        Provenance = provenance;
    }

    /// <summary>Loads a classifier saved by <see cref="Save"/> onto <paramref name="device"/> (CPU by default), in eval mode.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is truncated, not this format, of another architecture, or its
    /// checksum does not match (corrupt); the message names the file and the problem.</exception>
    public static FeatureClassifier Load(string path, Device? device = null)
    {
        RequireLittleEndian();
        if (!File.Exists(path)) throw new FileNotFoundException($"classifier weights not found: {path}", path);
        var b = File.ReadAllBytes(path);
        InvalidDataException Bad(string why) => new($"{path}: {why}; the classifier weights are corrupt or not a {FormatName} file " +
            "(retrain with models/fmnist-classifier.train.cs, see docs/EVAL.md)");

        if (b.Length < 8) throw Bad("file shorter than its 8-byte header length");
        long headerLen = BinaryPrimitives.ReadInt64LittleEndian(b);
        if (headerLen <= 0 || headerLen > MaxHeaderBytes || 8 + headerLen > b.Length) throw Bad($"header length {headerLen} does not fit the {b.Length}-byte file");
        JsonObject header;
        try { header = JsonNode.Parse(b.AsSpan(8, (int)headerLen))?.AsObject() ?? throw Bad("empty header"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { throw Bad($"header is not a JSON object ({e.Message})"); }
        var data = b.AsSpan(8 + (int)headerLen);

        var meta = header["__metadata__"] as JsonObject ?? throw Bad("no __metadata__ in the header");
        string Meta(string key) => (meta[key] as JsonValue)?.TryGetValue<string>(out var v) == true ? v : throw Bad($"metadata '{key}' missing");
        if (Meta("format") != FormatName) throw Bad($"format is '{Meta("format")}'");
        if (Meta("format_version") != FormatVersion) throw Bad($"format version {Meta("format_version")} is not {FormatVersion}");
        if (Meta("architecture") != Architecture) throw Bad($"architecture '{Meta("architecture")}' is not {Architecture}");
        var entries = new Dictionary<string, (long[] Shape, long Begin, long End)>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            try
            {
                if ((string?)node?["dtype"] != "F32") throw Bad($"tensor '{name}' is not F32");
                var shape = node!["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                var offsets = node["data_offsets"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0]) throw Bad($"tensor '{name}' has data_offsets [{string.Join(", ", offsets)}]");
                entries[name] = (shape, offsets[0], offsets[1]);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
            {
                throw Bad($"tensor '{name}' has a malformed entry ({e.Message})");
            }
        }
        long described = entries.Values.Select(e => e.End).DefaultIfEmpty(0).Max();
        if (data.Length != described) throw Bad($"data section holds {data.Length} bytes, the header describes {described} (truncated?)");
        var sha = Convert.ToHexStringLower(SHA256.HashData(data));
        if (sha != Meta("sha256")) throw Bad($"checksum mismatch: data SHA-256 is {sha}, the header says {Meta("sha256")}");
        ClassifierProvenance provenance;
        try { provenance = JsonSerializer.Deserialize<ClassifierProvenance>(Meta("provenance")) ?? throw Bad("provenance is null"); }
        catch (JsonException e) { throw Bad($"provenance unreadable ({e.Message})"); }

        var model = new FeatureClassifier();
        try
        {
            var state = model.FloatState();
            if (entries.Count != state.Count) throw Bad($"{entries.Count} tensors in the file, the architecture has {state.Count}");
            using var noGrad = no_grad();
            foreach (var (name, t) in state)
            {
                if (!entries.TryGetValue(name, out var e)) throw Bad($"tensor '{name}' missing");
                if (!e.Shape.SequenceEqual(t.shape)) throw Bad($"tensor '{name}' has shape ({string.Join(", ", e.Shape)}), expected ({string.Join(", ", t.shape)})");
                if (e.End - e.Begin != t.numel() * sizeof(float)) throw Bad($"tensor '{name}' data_offsets [{e.Begin}, {e.End}] do not hold {t.numel()} floats");
                using var values = tensor(MemoryMarshal.Cast<byte, float>(data[(int)e.Begin..(int)e.End]).ToArray(), t.shape);
                t.copy_(values);
            }
        }
        catch { model.Dispose(); throw; }
        model.Provenance = provenance;
        model.to(device ?? CPU);
        model.eval();
        return model;
    }

    /// <summary>
    /// Loads the committed classifier: the first <see cref="DefaultFileName"/> found in <c>models/</c> or directly in the
    /// app's base directory, or in <c>models/</c> of the base directory's ancestors or of the current directory's
    /// ancestors (a repository checkout).
    /// </summary>
    /// <exception cref="FileNotFoundException">None found; the message lists the places searched.</exception>
    public static FeatureClassifier LoadDefault(Device? device = null)
    {
        var searched = new List<string>();
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            var candidate = Path.Combine(start, DefaultFileName);
            searched.Add(candidate);
            if (File.Exists(candidate)) return Load(candidate, device);
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                candidate = Path.Combine(dir.FullName, "models", DefaultFileName);
                searched.Add(candidate);
                if (File.Exists(candidate)) return Load(candidate, device);
            }
        }
        throw new FileNotFoundException($"classifier weights {DefaultFileName} not found; searched: {string.Join(", ", searched.Distinct())}. " +
            "They are committed under models/ in the repository (train anew with models/fmnist-classifier.train.cs, see docs/EVAL.md).", DefaultFileName);
    }

    /// <summary>The float32 state entries (parameters and running statistics), in the state dict's order.</summary>
    List<(string Name, Tensor Tensor)> FloatState() =>
        state_dict().Where(kv => kv.Value.dtype == ScalarType.Float32).Select(kv => (kv.Key, kv.Value)).ToList();

    static void RequireLittleEndian()
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("the classifier weights file is little-endian float32; big-endian hosts are not supported");
    }

    static string Str(int v) => v.ToString(CultureInfo.InvariantCulture);
}
