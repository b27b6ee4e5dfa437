using System.CommandLine;
using System.Globalization;
using TerDiT.Runtime;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Imaging;
using TerDiT.Runtime.Diffusion;
using TerDiT.Training;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit sample</c>: a PNG grid, one row per class; same arguments → same bytes. From a packed model
/// (<c>--model</c>, default the shipped one: the pure-C# runtime) or a checkpoint (<c>--checkpoint</c>,
/// TorchSharp), both through <see cref="SampleSource"/>. This file names no TorchSharp type and
/// <see cref="PackedSampleSource"/> uses only the runtime assembly, which cannot reference TorchSharp, so a
/// packed model is sampled without loading libtorch. A latent model (packed, with a <c>latent</c> record) is
/// decoded to RGB by its VAE (<c>--vae DIR</c>).
/// </summary>
static class SampleCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "a .ckpt file, or a run directory (its latest checkpoint); runs on TorchSharp" };
        var model = new Option<string?>("--model") { Description = $"a packed .tdit model (terdit pack); runs on the pure-C# runtime, without libtorch (default, without --checkpoint: the shipped {ShippedModel.FileName})" };
        var classes = new Option<string?>("--classes") { Description = "comma-separated class indices, one grid row each (default: every class)" };
        var perClass = new Option<int>("--per-class") { Description = "images per class (grid columns)", DefaultValueFactory = _ => 4 };
        var steps = SamplerOption.CreateSteps();
        var sampler = SamplerOption.Create();
        var cfg = new Option<double>("--cfg") { Description = "classifier-free guidance scale (1: none)", DefaultValueFactory = _ => 1.5 };
        var seed = new Option<ulong>("--seed") { Description = "seed of the sampling noise", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "PNG file to write", Required = true };
        var device = DeviceOption.Create();
        var threads = ThreadsOption.Create();
        var weights = new Option<string>("--weights") { Description = "ema or raw (--checkpoint only; a packed model holds one set)", DefaultValueFactory = _ => "ema" };
        var mode = RuntimeModeOption.Create();
        var vae = new Option<string?>("--vae") { Description = "for a latent model (--model): the diffusers AutoencoderKL folder that decodes its latents (e.g. stabilityai/sd-vae-ft-ema)" };
        var cfgChannels = new Option<int?>("--cfg-channels")
        {
            Description = "epsilon channels classifier-free guidance applies to (--model; default all; 3 reproduces DiT's and the TerDiT authors' rule)",
        };
        weights.AcceptOnlyFromAmong("ema", "raw");

        var command = new Command("sample", "Sample a grid of images (one row per class) from a checkpoint or a packed model into a PNG.");
        foreach (var o in new Option[] { checkpoint, model, classes, perClass, steps, sampler, cfg, seed, output, device, weights, threads, mode, vae, cfgChannels }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            string? ckptPath = p.GetValue(checkpoint), modelPath = p.GetValue(model);
            if (ckptPath is not null && modelPath is not null) throw new ArgumentException("give one of --checkpoint CKPT and --model MODEL.tdit, not both");
            if (ckptPath is null && modelPath is null) modelPath = ShippedModel.Find();
            double scale = p.GetValue(cfg);
            if (scale < 1 || !double.IsFinite(scale)) throw new ArgumentException($"--cfg must be ≥ 1 (1 = no guidance), not {scale}");
            int? threadCount = p.GetValue(threads);
            if (threadCount is <= 0) throw new ArgumentException($"--threads must be positive, not {threadCount}");
            int stepCount = p.GetValue(steps);
            if (stepCount < 1) throw new ArgumentException($"--steps must be positive, not {stepCount}");
            string? vaeDir = p.GetValue(vae);
            int? guided = p.GetValue(cfgChannels);
            if (modelPath is null && (vaeDir is not null || guided is not null))
                throw new ArgumentException("--vae and --cfg-channels apply to a packed model (--model); pack the checkpoint first (terdit pack)");
            RuntimeModeOption.Check(modelPath is not null, p.GetValue(mode)!);

            using SampleSource source = modelPath is not null
                ? PackedSampleSource.Open(modelPath, RuntimeModeOption.Resolve(p.GetValue(mode)!), p.GetValue(device)!, threadCount,
                    vae: vaeDir, guidedChannels: guided, progress: stdout)
                : CheckpointSampleSource.Open(ckptPath!, p.GetValue(weights) == "raw" ? WeightsKind.Raw : WeightsKind.Ema, p.GetValue(device)!, threadCount);
            var c = source.Config;
            var kind = SamplerOption.Resolve(p.GetValue(sampler)!);
            source.CheckSteps(kind, stepCount);
            var rows = ParseClasses(p.GetValue(classes), c.NumClasses);
            int columns = p.GetValue(perClass);
            if (columns <= 0) throw new ArgumentException($"--per-class must be positive, not {columns}");
            CheckGrid(c, rows.Count, columns);
            int[] labels = rows.SelectMany(k => Enumerable.Repeat(k, columns)).ToArray(); // row r holds classes[r]
            var images = NamingTheModel(source.Path, () => source.Sample(labels, kind,
                stepCount, scale, p.GetValue(seed))); // (N, C, H, W)
            string png = p.GetValue(output)!;
            PngGrid.Save(png, images, labels.Length, source.ImageChannels, source.ImageSize, source.ImageSize, rows.Count, columns);
            stdout.WriteLine($"{png}: {rows.Count}×{columns} samples of {source.Description}");
            return 0;
        }));
        return command;
    }

    /// <summary>Runs <paramref name="sample"/>; a memory refusal (sizes from the model's config) gets the model file's name in front.</summary>
    static T NamingTheModel<T>(string path, Func<T> sample)
    {
        try { return sample(); }
        catch (InsufficientMemoryException e) { throw new InsufficientMemoryException($"{path}: {e.Message}", e); }
    }

    /// <summary>
    /// Refuses, before sampling, a grid whose images (float and 8-bit) and PNG canvas need more memory than the
    /// machine has; sampling itself runs in bounded chunks whatever the count.
    /// </summary>
    static void CheckGrid(TerDiTConfig c, int rows, int perClass)
    {
        long images = (long)rows * perClass, imageBytes = (long)c.InChannels * c.InputSize * c.InputSize;
        long width = MemoryBudget.Multiply(perClass, c.InputSize + PngGrid.Padding) + PngGrid.Padding;
        long height = MemoryBudget.Multiply(rows, c.InputSize + PngGrid.Padding) + PngGrid.Padding;
        string what = $"--per-class {perClass}: a grid of {rows}×{perClass} images of {c.InChannels}×{c.InputSize}×{c.InputSize}";
        if (width > int.MaxValue || height > int.MaxValue) throw new ArgumentException($"{what} is wider than a PNG can be");
        long canvas = MemoryBudget.Multiply(width * height, c.InChannels);
        MemoryBudget.RequireArray(canvas, what);
        MemoryBudget.Require(MemoryBudget.Multiply(images, 5 * imageBytes) + canvas, what);
    }

    /// <summary>"0,3,7" → [0, 3, 7]; null → every class.</summary>
    public static IReadOnlyList<int> ParseClasses(string? text, int numClasses)
    {
        if (text is null) return Enumerable.Range(0, numClasses).ToArray();
        var result = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int c) || c >= numClasses)
                throw new ArgumentException($"--classes: '{part}' is not a class index in 0..{numClasses - 1}");
            result.Add(c);
        }
        return result;
    }
}
