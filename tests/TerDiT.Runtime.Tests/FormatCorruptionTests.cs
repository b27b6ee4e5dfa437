using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using TerDiT.Runtime.Format;
using Xunit;

namespace TerDiT.Runtime.Tests;

/// <summary>Every kind of damage to a .tdit file is refused with a message that names it.</summary>
public sealed class FormatCorruptionTests : IDisposable
{
    readonly FormatTestFiles files = new();
    readonly byte[] valid;

    public FormatCorruptionTests() => valid = File.ReadAllBytes(files.Write("valid.tdit", FormatTestFiles.Odd).Path);

    public void Dispose() => files.Dispose();

    /// <summary>Writes <paramref name="bytes"/> as "bad.tdit", opens it and returns the refusal's message.</summary>
    string Refusal(byte[] bytes)
    {
        string path = files.PathOf("bad.tdit");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<TditFormatException>(() => TditFile.Open(path).Dispose());
        Assert.StartsWith("bad.tdit: ", e.Message);
        return e.Message;
    }

    /// <summary>The valid file with its header (and data) edited; the checksum is recomputed unless said otherwise.</summary>
    string RefusalOfEdit(Action<JsonObject> editHeader, Func<byte[], byte[]>? editData = null, bool rehash = true)
    {
        var p = FormatTestFiles.Parse(valid);
        editHeader(p.Header);
        return Refusal(FormatTestFiles.Build(p.Header, editData?.Invoke(p.Data) ?? p.Data, rehash));
    }

    /// <summary>A file that is only a header of these bytes.</summary>
    static byte[] Header(byte[] json)
    {
        var b = new byte[8 + json.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)json.Length);
        json.CopyTo(b, 8);
        return b;
    }

    static byte[] Header(string json) => Header(Encoding.UTF8.GetBytes(json));

    /// <summary>Name of the first tensor in file order (which starts at data offset 0).</summary>
    string First => FormatTestFiles.Parse(valid).Tensors().First().Name;
    string Last => FormatTestFiles.Parse(valid).Tensors().Last().Name;

    [Fact]
    public void ValidFileOpens()
    {
        File.WriteAllBytes(files.PathOf("ok.tdit"), valid);
        using var f = TditFile.Open(files.PathOf("ok.tdit"));
        Assert.NotEmpty(f.Tensors);
        // The edit round trip of the test helpers itself yields a valid file.
        var p = FormatTestFiles.Parse(valid);
        File.WriteAllBytes(files.PathOf("ok2.tdit"), FormatTestFiles.Build(p.Header, p.Data));
        TditFile.Open(files.PathOf("ok2.tdit")).Dispose();
    }

    [Fact]
    public void TooShortFiles()
    {
        Assert.Contains("file is 0 bytes", Refusal([]));
        Assert.Contains("file is 7 bytes", Refusal(valid[..7]));
    }

    [Fact]
    public void HeaderLengthOutOfBounds()
    {
        var b = (byte[])valid.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)b.Length);
        Assert.Contains("runs past the end", Refusal(b));
        BinaryPrimitives.WriteUInt64LittleEndian(b, 1UL << 40);
        Assert.Contains("exceeds the 100000000-byte cap", Refusal(b));
        BinaryPrimitives.WriteUInt64LittleEndian(b, ulong.MaxValue);
        Assert.Contains("exceeds", Refusal(b));
    }

    [Fact]
    public void HeaderNotJsonOrNotAnObject()
    {
        Assert.Contains("not valid JSON", Refusal(Header("{not json")));
        Assert.Contains("not valid UTF-8", Refusal(Header([.. "{\"a\":\"x"u8, 0xC3, 0x28, (byte)'"', (byte)'}'])));
        Assert.Contains("JSON Array, expected an object", Refusal(Header("[1,2]")));
        Assert.Contains("has the key 'a' twice", Refusal(Header("{\"a\":1,\"a\":2}")));
    }

    [Fact]
    public void MetadataMissingOrWrongFormat()
    {
        Assert.Contains("no __metadata__", RefusalOfEdit(h => h.Remove("__metadata__")));
        Assert.Contains("format' is 'pt', expected 'terdit-packed'", RefusalOfEdit(h => h["__metadata__"]!["format"] = "pt"));
        Assert.Contains("unsupported format_version '2'; this reader supports 1", RefusalOfEdit(h => h["__metadata__"]!["format_version"] = "2"));
        Assert.Contains("values are strings", RefusalOfEdit(h => h["__metadata__"]!["preset"] = 3));
        Assert.Contains("metadata 'config' is invalid", RefusalOfEdit(h => h["__metadata__"]!["config"] = "{\"HiddenSize\": 40, \"NumHeads\": 3}"));
        Assert.Contains("'classes' has 2 names but the config has 3", RefusalOfEdit(h => h["__metadata__"]!["classes"] = "[\"a\",\"b\"]"));
        Assert.Contains("'weights' is 'best'", RefusalOfEdit(h => h["__metadata__"]!["weights"] = "best"));
        Assert.Contains("no 'ternary_layout'", RefusalOfEdit(h => h["__metadata__"]!.AsObject().Remove("ternary_layout")));
        Assert.Contains("no 'checksum'", RefusalOfEdit(h => h["__metadata__"]!.AsObject().Remove("checksum"), rehash: false));
    }

    [Fact]
    public void InputShapeIsParsedAsJson()
    {
        var p = FormatTestFiles.Parse(valid);
        p.Meta["input_shape"] = "[2, 8, 8]";  // other spacing, same JSON
        File.WriteAllBytes(files.PathOf("spaced.tdit"), FormatTestFiles.Build(p.Header, p.Data));
        using (var f = TditFile.Open(files.PathOf("spaced.tdit"))) Assert.Equal("[2, 8, 8]", f.Metadata["input_shape"]);
        Assert.Contains("metadata 'input_shape' [2,8,9] does not match the config's [2,8,8]", RefusalOfEdit(h => h["__metadata__"]!["input_shape"] = "[2,8,9]"));
        Assert.Contains("does not match", RefusalOfEdit(h => h["__metadata__"]!["input_shape"] = "[2,8]"));
        Assert.Contains("'input_shape' is not a JSON array of integers", RefusalOfEdit(h => h["__metadata__"]!["input_shape"] = "2x8x8"));
        Assert.Contains("'input_shape' is not a JSON array of integers", RefusalOfEdit(h => h["__metadata__"]!["input_shape"] = "[2,8,8.5]"));
    }

    [Fact]
    public void UnknownDtype() =>
        Assert.Contains($"tensor '{First}' has dtype 'BF16'", RefusalOfEdit(h => h[First]!["dtype"] = "BF16"));

    [Fact]
    public void ShapeDisagreesWithOffsets()
    {
        Assert.Contains($"tensor '{First}'", RefusalOfEdit(h => h[First]!["shape"]![0] = 1000));
        Assert.Contains("but its data_offsets", RefusalOfEdit(h => h[First]!["shape"]![0] = 1000));
        Assert.Contains("non-negative", RefusalOfEdit(h => h[First]!["shape"]![0] = -1));
        Assert.Contains("overflows a 64-bit byte count", RefusalOfEdit(h => h[First]!["shape"] = new JsonArray(1L << 62, 1L << 62)));
        Assert.Contains("not [begin, end]", RefusalOfEdit(h => h[First]!["data_offsets"] = new JsonArray(5, 1)));
    }

    [Fact]
    public void OverlappingOffsets()
    {
        // Two tensors of the same size: point wk at wq's bytes.
        var wq = FormatTestFiles.Parse(valid).Tensors().Single(t => t.Name == "blocks.0.attention.wq.weight");
        var msg = RefusalOfEdit(h => h["blocks.0.attention.wk.weight"]!["data_offsets"] = new JsonArray(wq.Begin, wq.End));
        Assert.Contains("overlap tensor", msg);
    }

    [Fact]
    public void GapOrTrailingBytesInDataSection()
    {
        var last = FormatTestFiles.Parse(valid).Tensors().Last();
        Assert.Contains("gap: bytes [", RefusalOfEdit(
            h => h[last.Name]!["data_offsets"] = new JsonArray(last.Begin + 4, last.End + 4),
            d => [.. d, 0, 0, 0, 0]));
        Assert.Contains("4 bytes after the last tensor", RefusalOfEdit(_ => { }, d => [.. d, 1, 2, 3, 4]));
    }

    [Fact]
    public void TruncatedDataSection()
    {
        var msg = Refusal(valid[..^100]);
        Assert.Contains("run past the end of the", msg);
        Assert.Contains("(truncated file?)", msg);
    }

    [Fact]
    public void FlippedDataByteFailsTheChecksum()
    {
        var b = (byte[])valid.Clone();
        b[^50] ^= 0x10;
        Assert.Contains("checksum mismatch", Refusal(b));
        // Without verification the same file opens, and the last tensor (holding the byte) reads as flipped.
        File.WriteAllBytes(files.PathOf("ok.tdit"), valid);
        using var bad = TditFile.Open(files.PathOf("bad.tdit"), new TditReadOptions { VerifyChecksum = false });
        using var ok = TditFile.Open(files.PathOf("ok.tdit"));
        Assert.False(bad.Bytes(Last).SequenceEqual(ok.Bytes(Last)));
    }

    [Fact]
    public void FlippedHeaderByteIsRefused()
    {
        var b = (byte[])valid.Clone();
        int at = Encoding.UTF8.GetString(b).IndexOf("\"format\"", StringComparison.Ordinal) + 2;
        b[at] ^= 0x01;  // "format" → "gormat"
        Assert.Contains("'format' is missing", Refusal(b));
    }

    [Fact]
    public void TensorSetMustMatchTheConfig()
    {
        var last = FormatTestFiles.Parse(valid).Tensors().Last();
        var missing = RefusalOfEdit(h => h.Remove(last.Name), d => d[..(int)last.Begin]);
        Assert.Contains($"tensor '{last.Name}'", missing);
        Assert.Contains("required by the config is missing", missing);

        long dataLength = FormatTestFiles.Parse(valid).Data.Length;
        var extra = RefusalOfEdit(h => h["extra.weight"] = new JsonObject
        {
            ["dtype"] = "F32", ["shape"] = new JsonArray(1), ["data_offsets"] = new JsonArray(dataLength, dataLength + 4),
        }, d => [.. d, 0, 0, 128, 63]);
        Assert.Contains("1 tensor(s) not in the config's parameter schema: 'extra.weight'", extra);

        // x_embedder.bias (42) stored as [21, 2]: same bytes, wrong shape.
        Assert.Contains("tensor 'x_embedder.bias' is F32 [21, 2]; the config needs F32 or F16 [42]",
            RefusalOfEdit(h => h["x_embedder.bias"]!["shape"] = new JsonArray(21, 2)));
        // A packed weight [42, 32] flattened.
        Assert.Contains("a ternary weight [42, 42] in layout 'terdit-2bit-128' must be U8 [42, 32]",
            RefusalOfEdit(h => h["blocks.0.attention.wq.weight"]!["shape"] = new JsonArray(42 * 32)));
        // The tensors of D = 42 under a config that says D = 48.
        Assert.Contains("tensor 'x_embedder.weight' is F32 [42, 32]; the config needs F32 or F16 [48, 32]",
            RefusalOfEdit(h => h["__metadata__"]!["config"] = (FormatTestFiles.Odd with { HiddenSize = 48 }).ToJson()));
    }

    [Fact]
    public void InvalidTritCodeIsRefused()
    {
        const string name = "blocks.1.feed_forward.w2.weight";
        var t = FormatTestFiles.Parse(valid).Tensors().Single(t => t.Name == name);
        var msg = RefusalOfEdit(_ => { }, d =>
        {
            d[t.Begin + 70] |= 0b11_00_00_00;  // row 2 (32-byte rows), byte 6: column 102's field holds code 3
            return d;
        });
        Assert.Contains($"ternary weight '{name}' is not valid terdit-2bit-128 data: byte 70 (row 2) holds the invalid trit code 3", msg);
    }

    [Fact]
    public void LoneSurrogateInTheHeaderNamesTheFile()
    {
        Assert.Contains("not valid Unicode", Refusal(Header("{\"__metadata__\":{\"format\":\"\\ud800\"}}")));
        Assert.Contains("not valid Unicode", Refusal(Header("{\"\\udc00x\":{}}")));
    }

    [Fact]
    public void DirectoryIsNamedAsSuch()
    {
        var e = Assert.Throws<TditFormatException>(() => TditFile.Open(files.Directory).Dispose());
        Assert.Contains("is a directory", e.Message);
    }

    /// <summary>A config whose sizes lie outside its bounds is refused as a config, whatever tensors the file holds.</summary>
    [Fact]
    public void ConfigOutsideItsBounds()
    {
        Assert.Contains("InputSize 65536 is outside 1..8192", RefusalOfEdit(h => h["__metadata__"]!["config"] = (FormatTestFiles.Odd with { InputSize = 65536 }).ToJson()));
        Assert.Contains("AlphaInit 7 is not one of", RefusalOfEdit(h => h["__metadata__"]!["config"] =
            FormatTestFiles.Odd.ToJson().Replace("\"AlphaInit\":\"Normal\"", "\"AlphaInit\":7")));
    }
}
