using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using TerDiT.Data;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Import;
using TerDiT.Runtime.Vae;
using TerDiT.Vae;

namespace TerDiT.Fuzz;

/// <summary>
/// Seeds of the readers of files made outside this project: <c>corpus/pth/</c> (the authors' checkpoints as
/// <c>terdit import</c> reads them), <c>corpus/vae/</c> (a diffusers VAE's weights) and <c>corpus/latents/</c>
/// (a <c>terdit encode</c> latents file). Each is a valid file of a micro model (0.4–46 KB), the same bytes on every run.
/// </summary>
static class ImportSeeds
{
    /// <summary>
    /// The model of the pth target's weights: D = 8, one block, and what <see cref="AuthorsCheckpoint.InferConfig"/>
    /// reads from <see cref="Targets.AuthorsArgs"/> (ImageNet's 1000 classes, 64² images = 8² latents) with
    /// <see cref="Targets.AuthorsHeads"/> heads.
    /// </summary>
    static readonly TerDiTConfig AuthorsMicro = new()
    {
        Name = "micro", InChannels = 4, InputSize = 8, PatchSize = 2, HiddenSize = 8, Depth = 1, NumHeads = Targets.AuthorsHeads,
        NumClasses = 1000, QkNorm = true,
    };

    /// <summary>Two levels of 4 channels, 2 groups, one layer a block: decodes 4 × h × w latents to 3 × 2h × 2w images.</summary>
    public static readonly VaeConfig MicroVae = new() { BlockOutChannels = [4, 4], LayersPerBlock = 1, NormGroups = 2 };

    public static void Write(string fuzzDir)
    {
        string Dir(string target) => Directory.CreateDirectory(Path.Combine(fuzzDir, "corpus", target)).FullName;
        var random = new Random(6);

        var pth = Dir("pth");
        File.Copy(Path.Combine(fuzzDir, "..", "tests", "fixtures", "authors-terdit", "ternary", "model_args.pth"), Path.Combine(pth, "model_args.pth"), overwrite: true);
        File.WriteAllBytes(Path.Combine(pth, "micro-packed-f16.pth"), AuthorsWeights(AuthorsMicro, packed: true, "Half", random));
        File.WriteAllBytes(Path.Combine(pth, "micro-float-bf16.pth"), AuthorsWeights(AuthorsMicro, packed: false, "BFloat16", random));

        var vae = Dir("vae");
        var scratch = Directory.CreateTempSubdirectory("terdit-seeds-").FullName;
        try
        {
            TorchSharp.torch.random.manual_seed(6);
            using (var model = new AutoencoderKL(MicroVae)) model.Save(scratch);
            var path = Path.Combine(scratch, VaeWeights.WeightsFileName);
            File.Copy(path, Path.Combine(vae, "micro-f32.safetensors"), overwrite: true);
            // The decoder's tensors only, as F16 under the attention names of older diffusers versions.
            using var full = SafetensorsFile.Open(path);
            var decoder = full.Tensors.Values.Where(t => !t.Name.StartsWith("encoder.", StringComparison.Ordinal) && t.Name != "quant_conv.weight" && t.Name != "quant_conv.bias")
                .Select(t => (t.Name.Replace(".to_q.", ".query.").Replace(".to_out.0.", ".proj_attn."), "F16", t.Shape,
                    (ReadOnlyMemory<byte>)MemoryMarshal.AsBytes(full.ReadFloats(t.Name).Select(v => (Half)v).ToArray().AsSpan()).ToArray()));
            SafetensorsFile.Write(Path.Combine(vae, "micro-decoder-f16-old-names.safetensors"), new Dictionary<string, string>(), decoder);
        }
        finally { Directory.Delete(scratch, recursive: true); }

        var latents = Dir("latents");
        float[] Values(int n, float scale) => Enumerable.Range(0, n).Select(_ => (float)random.NextDouble() * scale).ToArray();
        new LatentSet(Values(3 * 4 * 2 * 2, 2), Values(3 * 4 * 2 * 2, 0.1f), [0, 1, 1], channels: 4, size: 2, imageSize: 16, ["cat", "dog"],
            new TditLatent { Vae = "micro", VaeSha256 = new string('a', 64), ScalingFactor = 0.18215 }).Save(Path.Combine(latents, "micro.latents"));
        new LatentSet(Values(1 * 1 * 1 * 1, 1), Values(1, 1), [0], channels: 1, size: 1, imageSize: 8, ["one"],
            new TditLatent { Vae = "micro", ScalingFactor = 1 }).Save(Path.Combine(latents, "one-unpinned.latents"));
        WriteRegressions(fuzzDir, latents, vae);
    }

    /// <summary>Hand-made hostile files of each reader, edited from the seeds: each must be refused with a message.</summary>
    static void WriteRegressions(string fuzzDir, string latentSeeds, string vaeSeeds)
    {
        string Dir(string target) => Directory.CreateDirectory(Path.Combine(fuzzDir, "regressions", target)).FullName;

        // A checkpoint whose pickle would run a shell command under Python's unpickler.
        File.WriteAllBytes(Path.Combine(Dir("pth"), "posix-system.pth"), TorchZip(("data.pkl", PosixSystemPickle()), ("version", "3\n"u8.ToArray())));

        // Latents whose class names hold an escaped lone surrogate, and whose label lies outside the classes.
        var latents = Dir("latents");
        using (var seed = SafetensorsFile.Open(Path.Combine(latentSeeds, "micro.latents")))
        {
            void Edit(string name, Func<string, string, string> metadata, Func<string, byte[], byte[]>? data = null) => SafetensorsFile.Write(Path.Combine(latents, name),
                seed.Metadata.ToDictionary(kv => kv.Key, kv => metadata(kv.Key, kv.Value)),
                seed.Tensors.Values.Select(t => (t.Name, t.DType, t.Shape, (ReadOnlyMemory<byte>)(data?.Invoke(t.Name, seed.Bytes(t.Name).ToArray()) ?? seed.Bytes(t.Name).ToArray()))));
            Edit("lone-surrogate-class.latents", (k, v) => k == "classes" ? "[\"cat\",\"\\ud800\"]" : v);
            Edit("label-2-of-2-classes.latents", (_, v) => v, (name, bytes) => name == "labels" ? MemoryMarshal.AsBytes<long>([0, 1, 2]).ToArray() : bytes);
        }

        // VAE weights naming the same attention tensor under its old and its current name.
        using (var seed = SafetensorsFile.Open(Path.Combine(vaeSeeds, "micro-f32.safetensors")))
        {
            const string q = "decoder.mid_block.attentions.0.to_q.weight";
            SafetensorsFile.Write(Path.Combine(Dir("vae"), "query-and-to_q.safetensors"), new Dictionary<string, string>(),
                seed.Tensors.Values.Select(t => (t.Name, t.DType, t.Shape, (ReadOnlyMemory<byte>)seed.Bytes(t.Name).ToArray()))
                    .Append((q.Replace(".to_q.", ".query."), "F32", seed.Tensor(q).Shape, seed.Bytes(q).ToArray())));
        }
    }

    /// <summary>
    /// A state dict of the authors' model for <paramref name="config"/> as their code names it, saved as
    /// <c>torch.save</c> does: ternary weights packed (uint8, random codes 0–2) or as float latent weights,
    /// the float tensors random in <paramref name="floatStorage"/> (<c>Half</c>, <c>BFloat16</c>, <c>Float</c>).
    /// </summary>
    static byte[] AuthorsWeights(TerDiTConfig config, bool packed, string floatStorage, Random random)
    {
        var tensors = new List<(string Name, string Storage, long[] Shape, byte[] Data)>();
        foreach (var spec in ParameterSchema.Enumerate(config))
        {
            string theirs = TheirName(spec.Name);
            if (AuthorsCheckpoint.OurName(theirs) != spec.Name) throw new InvalidOperationException($"'{spec.Name}' has no name in the authors' code");
            if (spec.Kind == ParameterKind.TernaryWeight && packed)
            {
                var shape = RowQuarterPacking.PackedShape((int)spec.Shape[0], (int)spec.Shape[1]);
                var codes = new byte[shape[0] * shape[1]];
                for (int i = 0; i < codes.Length; i++) codes[i] = (byte)(random.Next(3) << 6 | random.Next(3) << 4 | random.Next(3) << 2 | random.Next(3));
                tensors.Add((theirs, "Byte", shape, codes));
            }
            else
            {
                var values = Enumerable.Range(0, (int)spec.Elements).Select(_ => (float)(random.NextDouble() - 0.5) * 0.2f).ToArray();
                tensors.Add((theirs, floatStorage, spec.Shape, floatStorage switch
                {
                    "Half" => MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray(),
                    "BFloat16" => MemoryMarshal.AsBytes(values.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >> 16)).ToArray().AsSpan()).ToArray(),
                    _ => MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
                }));
            }
        }
        return TorchZip([("data.pkl", StateDictPickle(tensors.Select(t => (t.Name, t.Storage, t.Shape)).ToList())),
            .. tensors.Select((t, i) => ($"data/{i}", t.Data)), ("version", "3\n"u8.ToArray())]);
    }

    /// <summary>A zip in <c>torch.save</c>'s layout: the members, stored (uncompressed), under the folder <c>archive/</c>.</summary>
    static byte[] TorchZip(params (string Name, byte[] Data)[] members)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in members)
            {
                var entry = zip.CreateEntry("archive/" + name, CompressionLevel.NoCompression);
                entry.LastWriteTime = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero); // the same bytes on every run
                using var s = entry.Open();
                s.Write(data);
            }
        return buffer.ToArray();
    }

    /// <summary>What Python's pickle writes (protocol 2) for an object whose <c>__reduce__</c> returns <c>(os.system, ("id",))</c>.</summary>
    static byte[] PosixSystemPickle() => [0x80, 2, .. "cposix\nsystem\nX"u8, 2, 0, 0, 0, .. "id"u8, 0x85, (byte)'R', (byte)'.'];

    /// <summary>The authors' name of one of our parameters (the inverse of <see cref="AuthorsCheckpoint.OurName"/>).</summary>
    static string TheirName(string ours)
    {
        string s = ours.StartsWith("blocks.", StringComparison.Ordinal) ? "layers." + ours["blocks.".Length..] : ours;
        s = s.Replace("t_embedder.fc1.", "t_embedder.mlp.0.", StringComparison.Ordinal)
             .Replace("t_embedder.fc2.", "t_embedder.mlp.2.", StringComparison.Ordinal)
             .Replace("adaLN_modulation.", "adaLN_modulation.1.", StringComparison.Ordinal)
             .Replace("adaLN_norm.weight", "adaLN_modulation.2.weight", StringComparison.Ordinal);
        return s.EndsWith(".alpha", StringComparison.Ordinal) ? s + "s" : s;
    }

    /// <summary>
    /// The pickle (protocol 2) <c>torch.save</c> writes for an <c>OrderedDict</c> of contiguous tensors, tensor i
    /// over storage key "i" of <c>torch.{Storage}Storage</c>.
    /// </summary>
    static byte[] StateDictPickle(IReadOnlyList<(string Name, string Storage, long[] Shape)> tensors)
    {
        var p = new List<byte> { 0x80, 2 };
        void Raw(string ascii) => p.AddRange(Encoding.ASCII.GetBytes(ascii));
        void Str(string s) { p.Add((byte)'X'); p.AddRange(BitConverter.GetBytes(Encoding.UTF8.GetByteCount(s))); p.AddRange(Encoding.UTF8.GetBytes(s)); }
        void Int(long v) { p.Add(0x8a); p.Add(8); p.AddRange(BitConverter.GetBytes(v)); }
        void Ints(IEnumerable<long> values) { p.Add((byte)'('); foreach (long v in values) Int(v); p.Add((byte)'t'); }
        Raw("ccollections\nOrderedDict\n)R(");
        for (int i = 0; i < tensors.Count; i++)
        {
            var (name, storage, shape) = tensors[i];
            Str(name);
            Raw("ctorch._utils\n_rebuild_tensor_v2\n(");
            Raw("("); Str("storage"); Raw($"ctorch\n{storage}Storage\n"); Str(i.ToString(System.Globalization.CultureInfo.InvariantCulture)); Str("cpu");
            Int(shape.Aggregate(1L, (a, b) => a * b)); Raw("tQ");
            Int(0);
            Ints(shape);
            Ints(shape.Select((_, d) => shape.Skip(d + 1).Aggregate(1L, (a, b) => a * b)));
            p.Add(0x89); // requires_grad = False
            Raw("ccollections\nOrderedDict\n)RtR");
        }
        Raw("u.");
        return p.ToArray();
    }
}
