using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;
using Xunit;
using Xunit.Abstractions;

namespace TerDiT.Runtime.Tests;

public sealed class FormatTests(ITestOutputHelper output) : IDisposable
{
    readonly FormatTestFiles files = new();

    public void Dispose() => files.Dispose();

    [Theory]
    [InlineData(TditDType.F32)]
    [InlineData(TditDType.F16)]
    public void RoundTripKeepsMetadataConfigAndBytes(TditDType fullPrecision)
    {
        var (path, meta, contents) = files.Write("m.tdit", FormatTestFiles.Odd, fullPrecision);
        using var f = TditFile.Open(path);

        Assert.Equal(meta.Config, f.Config);
        Assert.Equal(meta.Preset, f.Info.Preset);
        Assert.Equal(meta.Classes, f.Info.Classes);
        Assert.Equal(meta.Source, f.Info.Source);
        Assert.Equal(meta.Weights, f.Info.Weights);
        Assert.Equal(meta.TernaryLayout, f.Info.TernaryLayout);
        Assert.Equal(meta.Diffusion, f.Info.Diffusion);
        Assert.Equal(meta.Extra, f.Info.Extra);
        Assert.Equal("terdit-packed", f.Metadata["format"]);
        Assert.Equal("1", f.Metadata["format_version"]);
        Assert.Equal("[2,8,8]", f.Metadata["input_shape"]);

        var schema = ParameterSchema.Enumerate(FormatTestFiles.Odd).ToList();
        Assert.Equal(schema.Select(p => p.Name).Order(), f.Tensors.Select(t => t.Name).Order());
        foreach (var p in schema)
        {
            var t = f.Tensor(p.Name);
            Assert.Equal(p.Kind, t.Kind);
            Assert.True(contents[p.Name].AsSpan().SequenceEqual(f.Bytes(p.Name)), p.Name);
            if (t.DType == TditDType.U8)
                Assert.Equal(new[] { p.Shape[0], (p.Shape[1] + 127) / 128 * 32 }, t.Shape);  // terdit-2bit-128: whole 32-byte blocks
            else
            {
                Assert.Equal(p.Shape, t.Shape);
                Assert.Equal(p.Kind == ParameterKind.Full ? fullPrecision : TditDType.F32, t.DType);
                float[] expected = t.DType == TditDType.F32
                    ? MemoryMarshal.Cast<byte, float>(contents[p.Name]).ToArray()
                    : MemoryMarshal.Cast<byte, Half>(contents[p.Name]).ToArray().Select(h => (float)h).ToArray();
                Assert.Equal(expected, f.ReadFloats(p.Name));
            }
        }
        Assert.Equal(new FileInfo(path).Length, f.Sizes.FileBytes);
        Assert.Equal(TditSizes.Estimate(meta, fullPrecision), f.Sizes);
    }

    [Fact]
    public void FloatWritesConvertToTheDeclaredDtype()
    {
        // 16 channels, patch 8: final_layer.linear.weight is (8·8·32, 42) = 86016 elements, more than one 64K conversion chunk.
        var c = FormatTestFiles.Odd with { InChannels = 16, PatchSize = 8 };
        var meta = FormatTestFiles.Metadata(c);
        var decls = TditSchema.Declarations(c, meta.TernaryLayout, TditDType.F16).ToList();
        var contents = FormatTestFiles.Contents(decls);
        var rng = new Random(7);
        var floats = new Dictionary<string, float[]>();
        string path = files.PathOf("f.tdit");
        using (var w = new TditWriter(path, meta, decls))
        {
            foreach (var d in decls)
            {
                if (d.DType == TditDType.U8) { w.Write(d.Name, contents[d.Name]); continue; }
                var v = floats[d.Name] = Enumerable.Range(0, (int)d.Shape.Aggregate(1L, (a, b) => a * b))
                    .Select(_ => (float)(rng.NextDouble() * 200 - 100)).ToArray();
                if (d.DType == TditDType.F32) w.Write(d.Name, v.Select(x => (Half)x).ToArray().AsSpan());  // Half → F32 widens
                else w.Write(d.Name, v.AsSpan());                                                            // float → F16 rounds
            }
            w.Commit();
        }
        Assert.Contains(floats.Values, v => v.Length > 1 << 16);
        using var f = TditFile.Open(path);
        foreach (var (name, v) in floats)
        {
            var expected = v.Select(x => (float)(Half)x).ToArray();  // both paths round once to half
            Assert.Equal(expected, f.ReadFloats(name));
        }
        Assert.Equal(floats["x_embedder.bias"].Select(x => (float)(Half)x), f.ReadFloats("x_embedder.bias"));
        Assert.Throws<InvalidOperationException>(() => f.Floats("x_embedder.bias"));  // F16 has no zero-copy float view
        Assert.Equal(f.ReadFloats("blocks.0.attention.wq.alpha"), f.Floats("blocks.0.attention.wq.alpha").ToArray());
    }

    [Fact]
    public void FileIsPlainSafetensorsWithAlignedData()
    {
        var (path, meta, contents) = files.Write("s.tdit", FormatTestFiles.Odd);
        var bytes = File.ReadAllBytes(path);
        var p = FormatTestFiles.Parse(bytes);

        Assert.Equal(0, p.DataStart % 64);
        Assert.Equal("terdit-packed", (string)p.Meta["format"]!);
        Assert.Equal(meta.Config, TerDiTConfig.FromJson((string)p.Meta["config"]!));
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(p.Data)), (string)p.Meta["checksum"]!);
        Assert.All(p.Meta, kv => Assert.Equal(System.Text.Json.JsonValueKind.String, kv.Value!.GetValueKind()));

        long at = 0;
        int misaligned = 0;
        var sizes = new Dictionary<string, int> { ["U8"] = 1, ["F16"] = 2, ["F32"] = 4 };
        foreach (var (name, dtype, shape, begin, end) in p.Tensors())
        {
            Assert.Equal(at, begin);                                   // contiguous, no gap or overlap
            Assert.Equal(shape.Aggregate(1L, (a, b) => a * b) * sizes[dtype], end - begin);
            Assert.True(contents[name].AsSpan().SequenceEqual(p.Data.AsSpan((int)begin, (int)(end - begin))), name);
            long fileOffset = p.DataStart + begin;
            Assert.Equal(0, fileOffset % sizes[dtype]);                // every tensor aligned to its element
            if ((end - begin) % 64 == 0) Assert.Equal(0, fileOffset % 64);
            else misaligned++;
            at = end;
        }
        Assert.Equal(p.Data.Length, at);                              // the offsets cover the data section
        Assert.True(misaligned > 0, "the odd config should exercise the non-64-multiple tail");
    }

    [Fact]
    public void AFileFromAnotherSafetensorsWriterIsReadable()
    {
        // Rebuilt by the test's own writer: different header spacing, 8-byte (not 64) alignment, other order.
        var (path, _, contents) = files.Write("a.tdit", FormatTestFiles.Odd);
        var p = FormatTestFiles.Parse(File.ReadAllBytes(path));
        var header = new System.Text.Json.Nodes.JsonObject { ["__metadata__"] = p.Meta.DeepClone() };
        var data = new List<byte>();
        foreach (var (name, dtype, shape, _, _) in p.Tensors().Reverse())
        {
            header[name] = new System.Text.Json.Nodes.JsonObject
            {
                ["dtype"] = dtype, ["shape"] = new System.Text.Json.Nodes.JsonArray(shape.Select(x => (System.Text.Json.Nodes.JsonNode?)x).ToArray()),
                ["data_offsets"] = new System.Text.Json.Nodes.JsonArray(data.Count, data.Count + contents[name].Length),
            };
            data.AddRange(contents[name]);
        }
        string other = files.PathOf("other.tdit");
        File.WriteAllBytes(other, FormatTestFiles.Build(header, data.ToArray()));
        using var f = TditFile.Open(other);
        foreach (var (name, bytes) in contents) Assert.True(bytes.AsSpan().SequenceEqual(f.Bytes(name)), name);
    }

    [Fact]
    public void FullPrecisionModelRoundTrips()
    {
        var c = FormatTestFiles.Odd with { Ternary = false };
        var (path, _, contents) = files.Write("fp.tdit", c);
        using var f = TditFile.Open(path);
        Assert.False(f.Config.Ternary);
        Assert.False(f.Metadata.ContainsKey("ternary_layout"));
        Assert.Equal(0, f.Sizes.PackedTernaryBytes);
        Assert.All(f.Tensors, t => Assert.Equal(TditDType.F32, t.DType));
        foreach (var (name, bytes) in contents) Assert.True(bytes.AsSpan().SequenceEqual(f.Bytes(name)), name);
    }

    /// <summary>
    /// The packed shape comes from the file's layout row alone: a file naming terdit-2bit-128 with rows of
    /// ceil(cols / 4) bytes (4 trits a byte, no 128-trit blocks) is refused, and a layout that is not in the
    /// table is refused by reader and writer alike.
    /// </summary>
    [Fact]
    public void PackedShapesComeFromTheLayoutTable()
    {
        var c = FormatTestFiles.Odd;
        var decls = TditSchema.Declarations(c, TernaryPacking.LayoutName).ToList();
        Assert.Equal(new long[] { 42, 32 }, decls.Single(d => d.Name == "blocks.0.attention.wq.weight").Shape);    // 42 trits: one block
        Assert.Equal(new long[] { 42, 32 }, decls.Single(d => d.Name == "blocks.0.feed_forward.w2.weight").Shape); // 112 trits: one block

        var (path, _, _) = files.Write("q.tdit", c);
        var p = FormatTestFiles.Parse(File.ReadAllBytes(path));
        var header = (System.Text.Json.Nodes.JsonObject)p.Header.DeepClone();
        var cols = ParameterSchema.Enumerate(c).Where(s => s.Kind == ParameterKind.TernaryWeight).ToDictionary(s => s.Name, s => s.Shape[1]);
        var data = new List<byte>();
        foreach (var (name, dtype, stored, begin, end) in p.Tensors())
        {
            var (shape, bytes) = (stored, p.Data[(int)begin..(int)end]);
            if (dtype == "U8") { shape = [shape[0], (cols[name] + 3) / 4]; bytes = bytes[..(int)(shape[0] * shape[1])]; }  // still valid codes
            header[name] = new System.Text.Json.Nodes.JsonObject
            {
                ["dtype"] = dtype, ["shape"] = new System.Text.Json.Nodes.JsonArray(shape.Select(x => (System.Text.Json.Nodes.JsonNode?)x).ToArray()),
                ["data_offsets"] = new System.Text.Json.Nodes.JsonArray(data.Count, data.Count + bytes.Length),
            };
            data.AddRange(bytes);
        }
        string fourPerByte = files.PathOf("four-per-byte.tdit");
        File.WriteAllBytes(fourPerByte, FormatTestFiles.Build(header, data.ToArray()));
        var e = Assert.Throws<TditFormatException>(() => TditFile.Open(fourPerByte));
        Assert.Contains("must be U8 [", e.Message);
        Assert.Contains("in layout 'terdit-2bit-128' must be U8 [42, 32]", e.Message);

        p.Meta["ternary_layout"] = "pad16";
        string unknown = files.PathOf("pad16.tdit");
        File.WriteAllBytes(unknown, FormatTestFiles.Build(p.Header, p.Data));
        var e2 = Assert.Throws<TditFormatException>(() => TditFile.Open(unknown));
        Assert.Contains("ternary_layout 'pad16' is not supported", e2.Message);
        Assert.Throws<ArgumentException>(() => TditSchema.Declarations(c, "pad16").ToList());
        var e3 = Assert.Throws<TditFormatException>(() => new TditWriter(files.PathOf("w.tdit"), FormatTestFiles.Metadata(c, "pad16"), decls));
        Assert.Contains("ternary_layout 'pad16' is not supported", e3.Message);
    }

    [Fact]
    public void WriterRefusesInvalidPackedBytes()
    {
        var meta = FormatTestFiles.Metadata(FormatTestFiles.Odd);
        var decls = TditSchema.Declarations(meta.Config, meta.TernaryLayout).ToList();
        using var w = new TditWriter(files.PathOf("v.tdit"), meta, decls);
        var bad = new byte[42 * 32];
        bad[33] = 0b11;  // row 1, byte 1: column 1 holds code 3
        var e = Assert.Throws<ArgumentException>(() => w.Write("blocks.0.attention.wq.weight", bad));
        Assert.Contains("byte 33 (row 1) holds the invalid trit code 3", e.Message);
    }

    [Fact]
    public void AbandonedWriteLeavesTargetAndNoTempFile()
    {
        var (path, _, _) = files.Write("t.tdit", FormatTestFiles.Odd);
        var before = File.ReadAllBytes(path);
        var meta = FormatTestFiles.Metadata(FormatTestFiles.Odd) with { Source = "other" };
        var decls = TditSchema.Declarations(meta.Config, meta.TernaryLayout).ToList();
        using (var w = new TditWriter(path, meta, decls))
        {
            w.Write(decls[0].Name, new byte[w.Layout.Tensors.Single(t => t.Name == decls[0].Name).ByteLength]);
            Assert.Equal(2, Directory.GetFiles(files.Directory).Length);           // target + temp while writing
            var e = Assert.Throws<InvalidOperationException>(() => w.Commit());     // tensors missing
            Assert.Contains("not written", e.Message);
            Assert.Throws<ArgumentException>(() => w.Write(decls[1].Name, new byte[3]));  // wrong length
            Assert.Throws<ArgumentException>(() => w.Write("nope", new byte[3]));
            Assert.Throws<InvalidOperationException>(() => w.Write(decls[0].Name, new byte[w.Layout.Tensors.Single(t => t.Name == decls[0].Name).ByteLength]));
        }
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(files.Directory));
    }

    [Fact]
    public void CommittedWriteReplacesTargetAndLeavesNoTempFile()
    {
        var (path, _, _) = files.Write("r.tdit", FormatTestFiles.Odd);
        var (path2, _, contents) = files.Write("r.tdit", FormatTestFiles.Odd with { Depth = 1 });
        Assert.Equal(path, path2);
        Assert.Equal(new[] { path }, Directory.GetFiles(files.Directory));
        using var f = TditFile.Open(path);
        Assert.Equal(1, f.Config.Depth);
        Assert.Equal(contents.Count, f.Tensors.Count);
    }

    [Fact]
    public void WriterRefusesDeclarationsThatDoNotMatchTheConfig()
    {
        var meta = FormatTestFiles.Metadata(FormatTestFiles.Odd);
        var decls = TditSchema.Declarations(meta.Config, meta.TernaryLayout).ToList();
        string path = files.PathOf("w.tdit");
        var e = Assert.Throws<TditFormatException>(() => new TditWriter(path, meta, decls.Skip(1)));
        Assert.Contains("'x_embedder.weight'", e.Message);
        Assert.Contains("missing", e.Message);
        var e2 = Assert.Throws<TditFormatException>(() => new TditWriter(path, meta, decls.Append(new("extra", TditDType.F32, [1]))));
        Assert.Contains("'extra'", e2.Message);
        Assert.Throws<ArgumentException>(() => new TditWriter(path, meta with { Classes = ["a"] }, decls));
        Assert.Throws<ArgumentException>(() => new TditWriter(path, meta with { TernaryLayout = null }, decls));
        var reserved = meta with { Extra = new Dictionary<string, string> { ["checksum"] = "x" } };
        Assert.Throws<ArgumentException>(() => new TditWriter(path, reserved, decls));
        Assert.Empty(Directory.GetFiles(files.Directory));
    }

    [Fact]
    public void SizeEstimateOfTerDiT600M()
    {
        var c = Presets.Get("TerDiT-600M");
        var meta = FormatTestFiles.Metadata(c) with { Classes = Enumerable.Range(0, 1000).Select(i => $"n{i:D8}").ToArray() };
        long ternary = ParameterSchema.TernaryParameterCount(c), all = ParameterSchema.ParameterCount(c);
        long alphas = ParameterSchema.Enumerate(c).Count(p => p.Kind == ParameterKind.TernaryScale);

        var f32 = TditSizes.Estimate(meta, TditDType.F32);
        var f16 = TditSizes.Estimate(meta, TditDType.F16);
        Assert.Equal(ternary / 4, f32.PackedTernaryBytes);                   // 600M: every ternary row is a multiple of 4
        Assert.Equal(4 * alphas, f32.ScaleBytes);
        Assert.Equal(4 * (all - ternary - alphas), f32.FullPrecisionBytes);
        Assert.Equal(2 * (all - ternary - alphas), f16.FullPrecisionBytes);
        Assert.Equal(4 * all, f32.Fp32EquivalentBytes);
        Assert.InRange(f32.HeaderBytes, 1, 200_000);
        Assert.Equal(f32.HeaderBytes + f32.PackedTernaryBytes + f32.ScaleBytes + f32.FullPrecisionBytes, f32.FileBytes);
        foreach (var (name, s) in new[] { ("F32", f32), ("F16", f16) })
            output.WriteLine($"TerDiT-600M, full precision {name}: file {s.FileBytes:N0} B (header {s.HeaderBytes:N0}, packed {s.PackedTernaryBytes:N0}, " +
                $"scales {s.ScaleBytes:N0}, full {s.FullPrecisionBytes:N0}), fp32 {s.Fp32EquivalentBytes:N0} B, {s.CompressionRatio:F2}x smaller");
        Assert.True(f16.CompressionRatio >= 14, $"F16 full precision: {f16.CompressionRatio:F2}x");
        Assert.True(f32.CompressionRatio >= 13.9, $"F32 full precision: {f32.CompressionRatio:F2}x");
    }
}
