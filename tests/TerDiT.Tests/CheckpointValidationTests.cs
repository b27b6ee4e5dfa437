using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using TerDiT.Model;
using TerDiT.Runtime.Config;
using TerDiT.Testing;
using TerDiT.Training;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

/// <summary>
/// A checkpoint is untrusted input even with a valid checksum (anyone can recompute it after editing): every header
/// field is checked, and the tensor list against the config's schema, before libtorch allocates anything.
/// </summary>
public sealed class CheckpointValidationTests : IDisposable
{
    readonly TempDirectory dir = new("ckpt-validation");
    readonly string validPath;

    public CheckpointValidationTests()
    {
        validPath = Checkpoint.PathFor(dir, 3);
        Write(validPath, 3);
    }

    public void Dispose() => dir.Dispose();

    static void Write(string path, long step)
    {
        using var model = new TerDiTModel(Fixtures.Micro, seed: 5);
        var weights = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        new Checkpoint
        {
            Config = Fixtures.Micro, Options = new TrainOptions { BatchSize = 4 }, Step = step, Data = new DataInfo("fashion-mnist", 8), DataPosition = (1, 4),
            OptimizerStep = step, Model = weights, Ema = weights, OptimizerState = new Dictionary<string, Tensor>(),
        }.Save(path);
    }

    /// <summary>The valid checkpoint with its JSON header edited and its SHA-256 recomputed, as an attacker would.</summary>
    string Edited(Action<JsonObject> edit, string name = "edited.ckpt")
    {
        var file = File.ReadAllBytes(validPath);
        long n = BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(12));
        var header = JsonNode.Parse(file.AsSpan(20, (int)n))!.AsObject();
        edit(header);
        return Rebuilt(file, Encoding.UTF8.GetBytes(header.ToJsonString()), name);
    }

    /// <summary>The valid checkpoint with the header bytes replaced (length and hash updated).</summary>
    string Rebuilt(byte[] file, byte[] header, string name)
    {
        long n = BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(12));
        var data = file.AsSpan(20 + (int)n, file.Length - 32 - 20 - (int)n);
        var result = new byte[20 + header.Length + data.Length + 32];
        file.AsSpan(0, 20).CopyTo(result);
        BinaryPrimitives.WriteInt64LittleEndian(result.AsSpan(12), header.Length);
        header.CopyTo(result, 20);
        data.CopyTo(result.AsSpan(20 + header.Length));
        SHA256.HashData(result.AsSpan(0, result.Length - 32), result.AsSpan(result.Length - 32));
        var path = dir.File(name);
        File.WriteAllBytes(path, result);
        return path;
    }

    string Refusal(string path)
    {
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path).Dispose());
        Assert.Contains(path, e.Message);
        return e.Message;
    }

    [Fact]
    public void ValidCheckpointLoads()
    {
        using var ckpt = Checkpoint.Load(validPath);
        Assert.Equal(Fixtures.Micro, ckpt.Config);
        Assert.Equal(ParameterSchema.Enumerate(Fixtures.Micro).Count(), ckpt.Ema.Count);
    }

    /// <summary>Numeric dtypes reached Enum.Parse and then libtorch: a native crash, 10 GB, or an out-of-bounds read.</summary>
    [Theory]
    [InlineData("-1")]
    [InlineData("-2")]
    [InlineData("-128")]
    [InlineData("6")]
    [InlineData("ComplexFloat32")]
    public void DtypeOutsideTheWhitelistIsRefusedBeforeLibtorch(string dtype) =>
        Assert.Contains($"dtype '{dtype}'", Refusal(Edited(h => h["tensors"]![0]!["dtype"] = dtype)));

    /// <summary>Each of these made the old loader allocate gigabytes (or run for ever) before refusing.</summary>
    [Theory]
    [InlineData("HiddenSize", 4096, "the config needs a floating tensor [4096, 4]")]
    [InlineData("NumClasses", 10_000_000, "the config needs a floating tensor")]
    [InlineData("Depth", 1_000_000, "outside 1..1024")]
    [InlineData("InChannels", 1_000_000, "outside 1..1024")]
    [InlineData("InputSize", 65536, "outside 1..8192")]
    [InlineData("InputSize", 1024, "tokens, more than 65536")]
    [InlineData("AlphaInit", 7, "AlphaInit 7 is not one of Normal, Absmean")]
    public void ConfigMustAgreeWithTheTensorsAndItsBounds(string key, long value, string expected) =>
        Assert.Contains(expected, Refusal(Edited(h => h["config"]![key] = value)));

    [Fact]
    public void TensorListMustTileTheDataSection()
    {
        Assert.Contains("expected", Refusal(Edited(h => h["tensors"]![1]!["offset"] = 0)));                  // overlaps the first
        Assert.Contains("bytes, its entry says", Refusal(Edited(h => h["tensors"]![0]!["length"] = 4)));
        Assert.Contains("cover", Refusal(Edited(h => ((JsonArray)h["tensors"]!).RemoveAt(((JsonArray)h["tensors"]!).Count - 1))));
        Assert.Contains("non-negative", Refusal(Edited(h => h["tensors"]![0]!["shape"]![0] = -8)));
        Assert.Contains("overflows", Refusal(Edited(h => h["tensors"]![0]!["shape"] = new JsonArray(1L << 40, 1L << 40))));
        Assert.Contains("repeated name", Refusal(Edited(h => h["tensors"]![1]!["name"] = (string)h["tensors"]![0]!["name"]!)));
        Assert.Contains("unknown field", Refusal(Edited(h => h["tensors"]![0]!["strides"] = 1)));
    }

    [Fact]
    public void TensorSetMustBeTheSchemas()
    {
        Assert.Contains("tensor 'model.x_embedder.weight' [32, 4] required by the config is missing", Refusal(Edited(h => h["tensors"]![0]!["name"] = "model.extra")));
        Assert.Contains("1 tensor(s) not in the config's parameter schema: 'ema.extra'", Refusal(Edited(h =>
        {
            var list = (JsonArray)h["tensors"]!;
            var last = list[^1]!;
            list.Add(new JsonObject
            {
                ["name"] = "ema.extra", ["dtype"] = "Float32", ["shape"] = new JsonArray(0), ["offset"] = (long)last["offset"]! + (long)last["length"]!, ["length"] = 0,
            });
        })));
        Assert.Contains("the config needs a floating tensor", Refusal(Edited(h =>
        {
            var t = h["tensors"]![0]!;
            t["dtype"] = "Int32"; // same byte size as Float32
        })));
    }

    [Fact]
    public void AbsurdStepsAndPositionsAreRefused()
    {
        Assert.Contains("outside 0..1000000000", Refusal(Edited(h => h["step"] = 1_000_000_000_000_000_000)));
        Assert.Contains("outside 0..1000000000", Refusal(Edited(h => h["optimizer"]!["step"] = -1)));
        Assert.Contains("does not fit 8 images", Refusal(Edited(h => h["rng"]!["cursor"] = 8)));
        Assert.Contains("steps must lie in", Refusal(Edited(h => h["options"]!["Steps"] = long.MaxValue)));
        Assert.Contains("--precision 9 is not one of Fp32, Bf16", Refusal(Edited(h => h["options"]!["Precision"] = 9)));
    }

    [Fact]
    public void BadTextIsRefusedWithTheFileName()
    {
        var file = File.ReadAllBytes(validPath);
        long n = BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(12));
        var header = file.AsSpan(20, (int)n).ToArray();
        int at = header.AsSpan().IndexOf("fashion-mnist"u8);
        header[at] = 0xC3; header[at + 1] = 0x28; // an invalid UTF-8 sequence
        Assert.Contains("not valid UTF-8", Refusal(Rebuilt(file, header, "utf8.ckpt")));
        // Escaped lone surrogates (JsonNode would write U+FFFD for a lone surrogate in a string, so they are spliced in as text).
        string Spliced(string from, string to) => Rebuilt(file, Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(file.AsSpan(20, (int)n)).Replace(from, to)), "surrogate.ckpt");
        Assert.Contains("malformed", Refusal(Spliced("\"fashion-mnist\"", "\"\\ud800\"")));
        Assert.Contains("malformed", Refusal(Spliced("\"name\":\"model.", "\"name\":\"\\ud800model.")));
        Assert.Contains("malformed", Refusal(Spliced("\"format\":", "\"\\udc00\":1,\"format\":")));
    }

    [Fact]
    public void ResumeFallsBackToTheNewestValidCheckpointAndSaysSo()
    {
        Write(Checkpoint.PathFor(dir, 6), 6);
        var newest = Checkpoint.PathFor(dir, 9);
        File.WriteAllBytes(newest, File.ReadAllBytes(Checkpoint.PathFor(dir, 6))[..^10]); // truncated
        using var ckpt = Checkpoint.LoadLatestValid(dir, out var path, out var skipped);
        Assert.Equal(6, ckpt.Step);
        Assert.Equal(Checkpoint.PathFor(dir, 6), path);
        Assert.Contains(newest, Assert.Single(skipped));

        File.WriteAllBytes(Checkpoint.PathFor(dir, 6), [1, 2, 3]);
        File.WriteAllBytes(validPath, [1, 2, 3]);
        Assert.Contains(newest, Assert.Throws<InvalidDataException>(() => Checkpoint.LoadLatestValid(dir, out _, out _)).Message);
    }
}
