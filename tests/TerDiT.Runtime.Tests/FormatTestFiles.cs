using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;
using TerDiT.Testing;

namespace TerDiT.Runtime.Tests;

/// <summary>
/// Test files for the .tdit container: small models written with deterministic random contents, and
/// a minimal safetensors reader/rebuilder written independently of the production code (header
/// length + JSON + offsets), used both to check interoperability and to craft corrupted files.
/// </summary>
sealed class FormatTestFiles : IDisposable
{
    /// <summary>
    /// D = 42, 3 classes: no width is a multiple of 128 (packed rows of one 32-byte block, 42 − 128 columns
    /// of padding), and the F32 biases of 42 floats are not multiples of 64 bytes.
    /// </summary>
    public static readonly TerDiTConfig Odd = new()
    {
        Name = "odd", InChannels = 2, InputSize = 8, PatchSize = 4, HiddenSize = 42, Depth = 2, NumHeads = 3,
        NumClasses = 3, FfnMultipleOf = 8,
    };

    readonly TempDirectory directory = new("tdit-tests");

    /// <summary>The test's own directory, deleted on <see cref="Dispose"/>.</summary>
    public string Directory => directory.Path;

    public void Dispose() => directory.Dispose();

    public string PathOf(string name) => directory.File(name);

    public static TditMetadata Metadata(TerDiTConfig c, string layout = TernaryPacking.LayoutName) => new()
    {
        Config = c,
        Preset = c.Name,
        Classes = Enumerable.Range(0, c.NumClasses).Select(i => $"class \"{i}\" é").ToArray(),
        Source = "runs/x/checkpoints/step-0001000.ckpt",
        Weights = TditWeights.Ema,
        TernaryLayout = c.Ternary ? layout : null,
        Extra = new Dictionary<string, string> { ["note"] = "test" },
    };

    /// <summary>
    /// Deterministic contents for every declared tensor: for U8 random bytes whose four 2-bit fields are
    /// each a valid trit code (0, 1 or 2, padding included), random floats otherwise.
    /// </summary>
    public static Dictionary<string, byte[]> Contents(IEnumerable<TditTensorDecl> decls, int seed = 1)
    {
        var rng = new Random(seed);
        var result = new Dictionary<string, byte[]>();
        foreach (var d in decls)
        {
            long n = d.Shape.Aggregate(1L, (a, b) => a * b);
            if (d.DType == TditDType.U8)
            {
                var b = new byte[n];
                for (long i = 0; i < n; i++) b[i] = (byte)(rng.Next(3) | rng.Next(3) << 2 | rng.Next(3) << 4 | rng.Next(3) << 6);
                result[d.Name] = b;
            }
            else
            {
                var f = new float[n];
                for (int i = 0; i < n; i++) f[i] = (float)(rng.NextDouble() * 2 - 1);
                result[d.Name] = d.DType == TditDType.F32 ? Floats(f) : Halves(f);
            }
        }
        return result;
    }

    public static byte[] Floats(float[] f)
    {
        var b = new byte[f.Length * 4];
        for (int i = 0; i < f.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), f[i]);
        return b;
    }

    static byte[] Halves(float[] f)
    {
        var b = new byte[f.Length * 2];
        for (int i = 0; i < f.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(b.AsSpan(2 * i), (Half)f[i]);
        return b;
    }

    /// <summary>Writes a model file with <see cref="TditWriter"/> (raw byte writes) and returns what was written.</summary>
    public (string Path, TditMetadata Metadata, Dictionary<string, byte[]> Contents) Write(string name, TerDiTConfig c,
        TditDType fullPrecision = TditDType.F32)
    {
        var meta = Metadata(c);
        var decls = TditSchema.Declarations(c, meta.TernaryLayout, fullPrecision).ToList();
        var contents = Contents(decls);
        string path = PathOf(name);
        using var w = new TditWriter(path, meta, decls);
        foreach (var d in decls.AsEnumerable().Reverse()) w.Write(d.Name, contents[d.Name]);  // any order works
        w.Commit();
        return (path, meta, contents);
    }

    /// <summary>An independently parsed safetensors file: its header JSON and data section.</summary>
    public sealed record Parsed(ulong HeaderLength, JsonObject Header, byte[] Data)
    {
        public JsonObject Meta => Header["__metadata__"]!.AsObject();
        public long DataStart => 8 + (long)HeaderLength;

        /// <summary>Tensor entries sorted by their begin offset.</summary>
        public IEnumerable<(string Name, string DType, long[] Shape, long Begin, long End)> Tensors() =>
            Header.Where(p => p.Key != "__metadata__")
                .Select(p => (p.Key, (string)p.Value!["dtype"]!, p.Value!["shape"]!.AsArray().Select(x => (long)x!).ToArray(),
                    (long)p.Value!["data_offsets"]![0]!, (long)p.Value!["data_offsets"]![1]!))
                .OrderBy(t => t.Item4);
    }

    /// <summary>The safetensors format as its README states it: u64 LE N, N bytes of UTF-8 JSON, the byte buffer.</summary>
    public static Parsed Parse(byte[] file)
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(file, 8, (int)n))!.AsObject();
        return new Parsed(n, header, file[(8 + (int)n)..]);
    }

    /// <summary>
    /// Serialises a (possibly modified) header and data section back to a file, padding the header
    /// with spaces to 8 bytes; with <paramref name="rehash"/> the checksum is recomputed so only the
    /// intended defect remains.
    /// </summary>
    public static byte[] Build(JsonObject header, byte[] data, bool rehash = true)
    {
        if (rehash && header["__metadata__"] is JsonObject meta)
            meta["checksum"] = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        var file = new byte[8 + padded + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)padded);
        json.CopyTo(file, 8);
        file.AsSpan(8 + json.Length, padded - json.Length).Fill((byte)' ');
        data.CopyTo(file, 8 + padded);
        return file;
    }
}
