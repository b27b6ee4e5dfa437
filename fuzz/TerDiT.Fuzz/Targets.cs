using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TerDiT.Data;
using TerDiT.Imaging;
using TerDiT.Runtime;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Import;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Diffusion;
using TerDiT.Runtime.Vae;
using TerDiT.Serve;
using TerDiT.Training;

namespace TerDiT.Fuzz;

/// <summary>
/// Every fuzz target: one entry per loader of outside bytes. Each loads the file as the CLI does and then
/// uses it for one sampling step of one image with guidance, so that a config that passes validation but
/// cannot run is found too. A new target is one more entry here, a seed folder under fuzz/corpus, and a
/// line in fuzz/README.md.
/// </summary>
static class Targets
{
    /// <summary>Heads of the pth target's model (its name is outside the authors' registry, as the fixture's is).</summary>
    public const int AuthorsHeads = 2;

    /// <summary>The training arguments of the committed authors' fixture (64² images, 1000 classes), which the pth target imports with.</summary>
    public static readonly Lazy<AuthorsModelArgs> AuthorsArgs = new(() => AuthorsModelArgs.Read(Path.Combine(AppContext.BaseDirectory, "model_args.pth")));

    static readonly Lazy<JsonSerializerOptions> RequestJson = new(() =>
    {
        var options = new JsonSerializerOptions();
        ServeApp.ConfigureJson(options);
        return options;
    });

    /// <summary>The micro model of the tdit corpus, served on the CPU (its classes and limits are what requests are checked against).</summary>
    static readonly Lazy<ServedModel> ServedMicroModel = new(() =>
        ServedModel.LoadCpu(Path.Combine(AppContext.BaseDirectory, "micro-ternary-f16.tdit"), GemmMode.Exact, threads: 1));

    public static readonly IReadOnlyList<FuzzTarget> All =
    [
        // Packed model: validation, weight loading, runtime forward. The checksum is recomputed so mutations reach the parser.
        new("tdit", "tdit", path =>
        {
            using var pipe = TerDiTPipeline.Load(path, new RuntimeOptions { Threads = 1, MaxBatch = 1 });
            pipe.Sample([0], 1, 1, SamplerKind.Ddim, 1.5, 0);
        }, [typeof(TditFormatException), typeof(InsufficientMemoryException)], RepairTditChecksum),

        // Training checkpoint: container, header and schema validation, model construction, a TorchSharp forward.
        new("ckpt", "ckpt", path =>
        {
            using var ckpt = Checkpoint.Load(path);
            using var model = ckpt.CreateModel(WeightsKind.Ema);
            using var images = ClassGridSampler.Sample(model, [0], 1, SamplerKind.Ddim, 1, 1.5, 0);
        }, [typeof(InvalidDataException), typeof(InsufficientMemoryException)], RepairCheckpointHash),

        // HTTP request body of POST /v1/generations: the service's own parse (JSON, then the record with the
        // service's options) and validation against a served micro model; invalid JSON is the only exception
        // (the service answers 400), every other fault must come back as a validation error.
        new("request", "json", path =>
        {
            var bytes = File.ReadAllBytes(path);
            using (JsonDocument.Parse(bytes)) { }
            var request = JsonSerializer.Deserialize<GenerationRequest>(bytes, RequestJson.Value);
            request?.Validate(ServedMicroModel.Value, new ServeLimits(), out _, out _);
        }, [typeof(JsonException)], RefusalsNameTheFile: false),

        // The authors' PyTorch checkpoints as terdit import reads them: the zip, the pickle, then either the
        // training arguments (a namespace root, model_args.pth) or the weights, imported to a packed model with
        // the arguments of the committed fixture.
        new("pth", "pth", path =>
        {
            using (var file = TorchCheckpoint.Open(path))
                if (file.Root is PickleNamespace ns)
                {
                    AuthorsModelArgs.FromNamespace(ns, file.Name);
                    return;
                }
            AuthorsCheckpoint.Import(AuthorsArgs.Value, path, Path.ChangeExtension(path, ".tdit"), new AuthorsImportOptions { Heads = AuthorsHeads });
        }, [typeof(ImportFormatException)]),

        // A diffusers VAE's weights (sample --vae): validation against a micro VAE's config, the runtime decoder
        // built from them, and one latent decoded.
        new("vae", "safetensors", path =>
        {
            using var weights = VaeWeights.Open(ImportSeeds.MicroVae, path, "micro");
            new VaeDecoder(weights, new RuntimeOptions { Threads = 1 }).Decode(new float[4 * 2 * 2], 1, 2, 2);
        }, [typeof(ImportFormatException), typeof(InsufficientMemoryException)]),

        // A latents file (train --data FILE.latents): the class names train reads first, then the whole set.
        new("latents", "latents", path =>
        {
            LatentSet.ClassNamesOf(path);
            LatentSet.Load(path);
        }, [typeof(ImportFormatException)]),
    ];

    public static FuzzTarget Get(string name) =>
        All.FirstOrDefault(t => t.Name == name) ?? throw new ArgumentException($"unknown target '{name}'; targets: {string.Join(", ", All.Select(t => t.Name))}");

    /// <summary>A checkpoint ends in the SHA-256 of everything before it: recompute it (inputs shorter than the hash stay as they are).</summary>
    static byte[] RepairCheckpointHash(byte[] input)
    {
        if (input.Length < 32) return input;
        var bytes = (byte[])input.Clone();
        SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32), bytes.AsSpan(bytes.Length - 32));
        return bytes;
    }

    /// <summary>
    /// A .tdit header holds <c>"checksum":"sha256:HEX"</c> of the data section: recompute it in place when the
    /// header length and the field are found (otherwise the input stays as it is).
    /// </summary>
    static byte[] RepairTditChecksum(byte[] input)
    {
        if (input.Length < 8) return input;
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(input);
        if (n > (ulong)(input.Length - 8)) return input;
        var key = "\"checksum\":\"sha256:"u8;
        int at = input.AsSpan(8, (int)n).IndexOf(key);
        if (at < 0 || at + key.Length + 64 > (int)n) return input;
        var bytes = (byte[])input.Clone();
        var hex = Convert.ToHexStringLower(SHA256.HashData(bytes.AsSpan(8 + (int)n)));
        Encoding.ASCII.GetBytes(hex).CopyTo(bytes, 8 + at + key.Length);
        return bytes;
    }
}
