using System.CommandLine;
using System.Globalization;
using System.Runtime.CompilerServices;
using TerDiT.Imaging;
using TerDiT.Runtime;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Sampling;
using TerDiT.Training;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit sample</c>: a PNG grid, one row per class; same arguments → same bytes. From a checkpoint
/// (<c>--checkpoint</c>, TorchSharp) or from a packed model (<c>--model</c>, the pure-C# runtime, which
/// never loads libtorch: that path lives in <see cref="SamplePacked"/> and touches no TorchSharp type).
/// The two paths draw their noise from different generators, so the same seed gives different images.
/// </summary>
static class SampleCommand
{
    /// <summary>The options both paths share.</summary>
    sealed record Settings(string? Classes, int PerClass, int Steps, SamplerKind Sampler, double Cfg, ulong Seed, string Out, int? Threads);

    public static Command Create()
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "a .ckpt file, or a run directory (its latest checkpoint); runs on TorchSharp" };
        var model = new Option<string?>("--model") { Description = $"a packed .tdit model (terdit pack); runs on the pure-C# runtime, without libtorch (default, without --checkpoint: the shipped {ShippedModel.FileName})" };
        var classes = new Option<string?>("--classes") { Description = "comma-separated class indices, one grid row each (default: every class)" };
        var perClass = new Option<int>("--per-class") { Description = "images per class (grid columns)", DefaultValueFactory = _ => 4 };
        var steps = new Option<int>("--steps") { Description = "sampling steps (respaced from 1000)", DefaultValueFactory = _ => 50 };
        var sampler = new Option<string>("--sampler") { Description = "ddim (eta 0) or ddpm", DefaultValueFactory = _ => "ddim" };
        var cfg = new Option<double>("--cfg") { Description = "classifier-free guidance scale (1: none)", DefaultValueFactory = _ => 1.5 };
        var seed = new Option<ulong>("--seed") { Description = "seed of the sampling noise", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "PNG file to write", Required = true };
        var device = DeviceOption.Create();
        var threads = ThreadsOption.Create();
        var weights = new Option<string>("--weights") { Description = "ema or raw (--checkpoint only; a packed model holds one set)", DefaultValueFactory = _ => "ema" };
        var mode = RuntimeModeOption.Create();
        sampler.AcceptOnlyFromAmong("ddim", "ddpm");
        weights.AcceptOnlyFromAmong("ema", "raw");

        var command = new Command("sample", "Sample a grid of images (one row per class) from a checkpoint or a packed model into a PNG.");
        foreach (var o in new Option[] { checkpoint, model, classes, perClass, steps, sampler, cfg, seed, output, device, weights, threads, mode }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            string? ckptPath = p.GetValue(checkpoint), modelPath = p.GetValue(model);
            if (ckptPath is not null && modelPath is not null) throw new ArgumentException("give one of --checkpoint CKPT and --model MODEL.tdit, not both");
            if (ckptPath is null && modelPath is null) modelPath = ShippedModel.Find();
            double scale = p.GetValue(cfg);
            if (scale < 1 || !double.IsFinite(scale)) throw new ArgumentException($"--cfg must be ≥ 1 (1 = no guidance), not {scale}");
            var s = new Settings(p.GetValue(classes), p.GetValue(perClass), p.GetValue(steps),
                p.GetValue(sampler) == "ddpm" ? SamplerKind.Ddpm : SamplerKind.Ddim, scale, p.GetValue(seed), p.GetValue(output)!, p.GetValue(threads));
            if (s.Threads is <= 0) throw new ArgumentException($"--threads must be positive, not {s.Threads}");
            RuntimeModeOption.Check(modelPath is not null, p.GetValue(device)!, p.GetValue(mode)!);
            if (modelPath is not null) return SamplePacked(stdout, modelPath, s, RuntimeModeOption.Resolve(p.GetValue(mode)!));
            return SampleCheckpoint(stdout, ckptPath!, s, p.GetValue(device)!, p.GetValue(weights) == "raw" ? WeightsKind.Raw : WeightsKind.Ema);
        }));
        return command;
    }

    /// <summary>The runtime path: no TorchSharp type anywhere in it (the JIT compiles it alone), so libtorch is never loaded.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    static int SamplePacked(TextWriter stdout, string modelPath, Settings s, GemmMode mode)
    {
        var options = RuntimeModeOption.Options(mode, s.Threads);
        using var pipe = TerDiTPipeline.Load(modelPath, options);
        var c = pipe.Config;
        var rows = ParseClasses(s.Classes, c.NumClasses);
        if (s.PerClass <= 0) throw new ArgumentException($"--per-class must be positive, not {s.PerClass}");
        var images = pipe.Sample(rows, s.PerClass, s.Steps, s.Sampler, s.Cfg, s.Seed); // (N, C, H, W)
        PngGrid.Save(s.Out, TerDiTPipeline.ToPixels(images), rows.Count * s.PerClass, c.InChannels, c.InputSize, c.InputSize, rows.Count, s.PerClass);
        stdout.WriteLine($"{s.Out}: {rows.Count}×{s.PerClass} samples of {modelPath} (runtime, {mode}, {options.Threads} threads)");
        return 0;
    }

    /// <summary>The TorchSharp path.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    static int SampleCheckpoint(TextWriter stdout, string checkpoint, Settings s, string device, WeightsKind weights)
    {
        ThreadsOption.Apply(s.Threads);
        var dev = DeviceOption.Resolve(device);
        var path = Checkpoint.Resolve(checkpoint);
        using var ckpt = Checkpoint.Load(path);
        using var model = ckpt.CreateModel(weights, dev);
        var rows = ParseClasses(s.Classes, ckpt.Config.NumClasses);
        using var images = ClassGridSampler.Sample(model, rows, s.PerClass, s.Sampler, s.Steps, s.Cfg, s.Seed, dev);
        PngGrid.Save(s.Out, images, rows.Count, s.PerClass);
        stdout.WriteLine($"{s.Out}: {rows.Count}×{s.PerClass} samples of step {ckpt.Step} ({path})");
        return 0;
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
