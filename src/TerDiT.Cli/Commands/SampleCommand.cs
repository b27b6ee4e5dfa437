using TerDiT.Runtime.Sampling;
using System.CommandLine;
using System.Globalization;
using TerDiT.Diffusion;
using TerDiT.Imaging;
using TerDiT.Training;

namespace TerDiT.Cli.Commands;

/// <summary><c>terdit sample</c>: a PNG grid from a checkpoint, one row per class; same arguments → same bytes.</summary>
static class SampleCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "a .ckpt file, or a run directory (its latest checkpoint)", Required = true };
        var classes = new Option<string?>("--classes") { Description = "comma-separated class indices, one grid row each (default: every class)" };
        var perClass = new Option<int>("--per-class") { Description = "images per class (grid columns)", DefaultValueFactory = _ => 4 };
        var steps = new Option<int>("--steps") { Description = "sampling steps (respaced from 1000)", DefaultValueFactory = _ => 50 };
        var sampler = new Option<string>("--sampler") { Description = "ddim (eta 0) or ddpm", DefaultValueFactory = _ => "ddim" };
        var cfg = new Option<double>("--cfg") { Description = "classifier-free guidance scale (1: none)", DefaultValueFactory = _ => 1.5 };
        var seed = new Option<ulong>("--seed") { Description = "seed of the sampling noise", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "PNG file to write", Required = true };
        var device = DeviceOption.Create();
        var threads = ThreadsOption.Create();
        var weights = new Option<string>("--weights") { Description = "ema or raw", DefaultValueFactory = _ => "ema" };
        sampler.AcceptOnlyFromAmong("ddim", "ddpm");
        weights.AcceptOnlyFromAmong("ema", "raw");

        var command = new Command("sample", "Sample a grid of images (one row per class) from a checkpoint into a PNG.");
        foreach (var o in new Option[] { checkpoint, classes, perClass, steps, sampler, cfg, seed, output, device, weights, threads }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            ThreadsOption.Apply(p.GetValue(threads));
            var dev = DeviceOption.Resolve(p.GetValue(device)!);
            var path = Checkpoint.Resolve(p.GetValue(checkpoint)!);
            using var ckpt = Checkpoint.Load(path);
            using var model = ckpt.CreateModel(p.GetValue(weights) == "raw" ? WeightsKind.Raw : WeightsKind.Ema, dev);
            var rows = ParseClasses(p.GetValue(classes), ckpt.Config.NumClasses);
            int cols = p.GetValue(perClass);
            var kind = p.GetValue(sampler) == "ddpm" ? SamplerKind.Ddpm : SamplerKind.Ddim;
            using var images = ClassGridSampler.Sample(model, rows, cols, kind, p.GetValue(steps), p.GetValue(cfg), p.GetValue(seed), dev);
            var outPath = p.GetValue(output)!;
            PngGrid.Save(outPath, images, rows.Count, cols);
            stdout.WriteLine($"{outPath}: {rows.Count}×{cols} samples of step {ckpt.Step} ({path})");
            return 0;
        }));
        return command;
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
