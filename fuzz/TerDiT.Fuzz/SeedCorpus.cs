using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using TerDiT.Model;
using TerDiT.Packing;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;
using TerDiT.Training;
using static TorchSharp.torch;

namespace TerDiT.Fuzz;

/// <summary>
/// Writes the committed inputs: <c>corpus/TARGET/</c>, small valid files of a micro model (so a mutation is
/// cheap to run) in each variant the loaders distinguish, and <c>regressions/TARGET/</c>, hand-made files of
/// each known way a file once broke a loader (every one must now be refused with a message).
/// </summary>
static class SeedCorpus
{
    /// <summary>4×4 single-channel images, 2×2 patches (4 tokens), D = 8, one block: a few KB per file.</summary>
    static readonly TerDiTConfig Micro = new()
    {
        Name = "micro", InChannels = 1, InputSize = 4, PatchSize = 2, HiddenSize = 8, Depth = 1, NumHeads = 2, NumClasses = 2, FfnMultipleOf = 8,
    };

    public static void Write(string fuzzDir)
    {
        string Dir(string kind, string target) => Directory.CreateDirectory(Path.Combine(fuzzDir, kind, target)).FullName;
        var tdit = Dir("corpus", "tdit");
        ModelPacker.PackRandomInit(Micro, Path.Combine(tdit, "micro-ternary-f16.tdit"), seed: 1);
        ModelPacker.PackRandomInit(Micro, Path.Combine(tdit, "micro-ternary-f32.tdit"), seed: 2, TditDType.F32);
        ModelPacker.PackRandomInit(Micro with { Ternary = false, QkNorm = false }, Path.Combine(tdit, "micro-full-precision.tdit"), seed: 3);
        ModelPacker.PackRandomInit(Micro with { AdaLnNorm = false, LearnSigma = false }, Path.Combine(tdit, "micro-no-adaln-norm.tdit"), seed: 4);

        var request = Dir("corpus", "request");
        foreach (var (name, body) in new[]
        {
            ("full", """{"classes":["class 0",1],"per_class":2,"steps":4,"sampler":"ddpm","cfg":2.5,"seed":7,"mode":"a8"}"""),
            ("one-class", """{"class":1}"""),
            ("invalid-fields", """{"classes":[],"per_class":0,"steps":5000,"cfg":"NaN","sampler":"euler","mode":"fast"}"""),
        })
            File.WriteAllText(Path.Combine(request, name + ".json"), body);
        var requestBad = Dir("regressions", "request");
        foreach (var (name, body) in new[]
        {
            ("null-body", "null"),
            ("huge-counts", """{"classes":[0,1],"per_class":2147483647,"steps":2147483647,"seed":18446744073709551615}"""),
            ("lone-surrogate-class", """{"class":"\ud800"}"""),
        })
            File.WriteAllText(Path.Combine(requestBad, name + ".json"), body);

        var ckpt = Dir("corpus", "ckpt");
        WriteCheckpoint(Path.Combine(ckpt, "micro-ternary.ckpt"), Micro, optimizer: false);
        WriteCheckpoint(Path.Combine(ckpt, "micro-ternary-adamw.ckpt"), Micro, optimizer: true);
        WriteCheckpoint(Path.Combine(ckpt, "micro-full-precision.ckpt"), Micro with { Ternary = false, AlphaInit = AlphaInit.Absmean }, optimizer: false);

        var ckptBad = Dir("regressions", "ckpt");
        var valid = File.ReadAllBytes(Path.Combine(ckpt, "micro-ternary.ckpt"));
        void Ckpt(string name, Action<JsonObject> edit) => File.WriteAllBytes(Path.Combine(ckptBad, name + ".ckpt"), EditCheckpoint(valid, edit));
        foreach (var dtype in new[] { "-1", "-2", "-128" })
            Ckpt($"dtype{dtype}", h => h["tensors"]![0]!["dtype"] = dtype);
        foreach (var (key, value) in new (string, long)[] { ("HiddenSize", 4096), ("NumClasses", 10_000_000), ("Depth", 1_000_000), ("InChannels", 1_000_000), ("InputSize", 65536), ("InputSize", 1024), ("InputSize", 512), ("AlphaInit", 7) })
            Ckpt($"config-{key}-{value}", h => h["config"]![key] = value);
        Ckpt("overlapping-offsets", h => { h["tensors"]![1]!["offset"] = 0; });
        Ckpt("step-1e18", h => h["step"] = 1_000_000_000_000_000_000);
        var text = (byte[])valid.Clone(); // same-length splices into the header text
        int at = text.AsSpan().IndexOf("fashion-mnist"u8);
        "\\ud800x"u8.CopyTo(text.AsSpan(at)); // an escaped lone surrogate (JsonNode would write U+FFFD for one in a string)
        File.WriteAllBytes(Path.Combine(ckptBad, "lone-surrogate.ckpt"), text);
        text = (byte[])valid.Clone();
        text[at] = 0xC3; text[at + 1] = 0x28; // not UTF-8
        File.WriteAllBytes(Path.Combine(ckptBad, "invalid-utf8.ckpt"), text);

        var tditBad = Dir("regressions", "tdit");
        var packed = File.ReadAllBytes(Path.Combine(tdit, "micro-ternary-f16.tdit"));
        void Tdit(string name, params (string Key, string From, string To)[] edits) =>
            File.WriteAllBytes(Path.Combine(tditBad, name + ".tdit"), edits.Aggregate(packed, (file, e) => EditTditHeader(file, e.Key, e.From, e.To)));
        foreach (var size in new[] { 512, 1024, 65536 }) // the input size is in no tensor's shape: only the config and input_shape say it
            Tdit($"config-InputSize-{size}", ("config", "\"InputSize\":4", $"\"InputSize\":{size}"), ("input_shape", "[1,4,4]", $"[1,{size},{size}]"));
        Tdit("config-AlphaInit-7", ("config", "\"AlphaInit\":\"Normal\"", "\"AlphaInit\":7"));
        File.WriteAllBytes(Path.Combine(tditBad, "lone-surrogate.tdit"), SpliceTditHeader(packed, "random-init", "\\ud800"));
        ImportSeeds.Write(fuzzDir);
    }

    static void WriteCheckpoint(string path, TerDiTConfig config, bool optimizer)
    {
        using var model = new TerDiTModel(config, seed: 5);
        var weights = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var moments = optimizer
            ? weights.SelectMany(kv => new[] { ("exp_avg." + kv.Key, zeros_like(kv.Value)), ("exp_avg_sq." + kv.Key, ones_like(kv.Value)) }).ToDictionary()
            : [];
        new Checkpoint
        {
            Config = config, Options = new TrainOptions { BatchSize = 4 }, Step = 3, Data = new DataInfo("fashion-mnist", 8), DataPosition = (1, 4),
            OptimizerStep = 3, Model = weights, Ema = weights, OptimizerState = moments,
        }.Save(path);
        foreach (var t in moments.Values) t.Dispose();
    }

    /// <summary>A checkpoint with its JSON header edited (the hash is left stale: the ckpt target recomputes it).</summary>
    static byte[] EditCheckpoint(byte[] file, Action<JsonObject> edit)
    {
        const int prefix = 20;
        long n = BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(12));
        var header = JsonNode.Parse(file.AsSpan(prefix, (int)n))!.AsObject();
        edit(header);
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var result = new byte[prefix + json.Length + (file.Length - prefix - (int)n)];
        file.AsSpan(0, prefix).CopyTo(result);
        BinaryPrimitives.WriteInt64LittleEndian(result.AsSpan(12), json.Length);
        json.CopyTo(result, prefix);
        file.AsSpan(prefix + (int)n).CopyTo(result.AsSpan(prefix + json.Length));
        return result;
    }

    /// <summary>A .tdit file with one replacement inside one metadata string (the tdit target recomputes the checksum).</summary>
    static byte[] EditTditHeader(byte[] file, string key, string from, string to)
    {
        long n = BinaryPrimitives.ReadInt64LittleEndian(file);
        var header = JsonNode.Parse(file.AsSpan(8, (int)n))!.AsObject();
        var metadata = header["__metadata__"]!.AsObject();
        string value = (string)metadata[key]!;
        if (!value.Contains(from, StringComparison.Ordinal)) throw new InvalidOperationException($"metadata '{key}' has no '{from}': {value}");
        metadata[key] = value.Replace(from, to, StringComparison.Ordinal);
        return WithHeader(file, Encoding.UTF8.GetBytes(header.ToJsonString()));
    }

    /// <summary>A .tdit file with a text splice in its header JSON (for escapes a JSON writer would not produce).</summary>
    static byte[] SpliceTditHeader(byte[] file, string from, string to)
    {
        long n = BinaryPrimitives.ReadInt64LittleEndian(file);
        string json = Encoding.UTF8.GetString(file.AsSpan(8, (int)n));
        if (!json.Contains(from, StringComparison.Ordinal)) throw new InvalidOperationException($"the header has no '{from}'");
        return WithHeader(file, Encoding.UTF8.GetBytes(json.Replace(from, to, StringComparison.Ordinal)));
    }

    /// <summary>The file with its header replaced by <paramref name="header"/> (length prefix updated, data kept).</summary>
    static byte[] WithHeader(byte[] file, byte[] header)
    {
        long n = BinaryPrimitives.ReadInt64LittleEndian(file);
        var result = new byte[8 + header.Length + (file.Length - 8 - (int)n)];
        BinaryPrimitives.WriteInt64LittleEndian(result, header.Length);
        header.CopyTo(result, 8);
        file.AsSpan(8 + (int)n).CopyTo(result.AsSpan(8 + header.Length));
        return result;
    }
}
