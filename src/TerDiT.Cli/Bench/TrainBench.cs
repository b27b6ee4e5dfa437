using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using TerDiT.Cli.Commands;
using TerDiT.Data;
using TerDiT.Runtime.Config;
using TerDiT.Training;
using TorchSharp;
using TerDiT.Runtime;

namespace TerDiT.Cli.Bench;

/// <summary>
/// <c>terdit bench train</c>: training step time and images/s of each preset, ternary vs full precision,
/// same batch, measured in the same run with the two variants' steps interleaved (so load from other
/// processes hits both alike). Reports medians and the ratio ternary/FP of the step time.
/// With <c>--gpus N</c> the same measurement runs data-parallel on N GPUs (<c>--batch</c> is the global
/// batch, as in <c>train</c>); rank 0 times the steps, all-reduce included, and writes the JSON.
/// </summary>
static class TrainBench
{
    public static Command Create()
    {
        var presets = new Option<string>("--presets") { Description = "comma-separated presets", DefaultValueFactory = _ => "TerDiT-Tiny,TerDiT-S" };
        var batch = new Option<int>("--batch") { Description = "batch size", DefaultValueFactory = _ => 16 };
        var steps = new Option<int>("--steps") { Description = "timed steps per variant", DefaultValueFactory = _ => 10 };
        var warmup = new Option<int>("--warmup") { Description = "untimed steps per variant first", DefaultValueFactory = _ => 2 };
        var dataDir = new Option<string?>("--data-dir") { Description = "Fashion-MNIST folder (default: the system one)" };
        var output = new Option<string>("--out") { Description = "JSON results file", DefaultValueFactory = _ => "bench/results/train-cpu.json" };
        var device = DeviceOption.Create();
        var threads = ThreadsOption.Create();
        var precision = PrecisionOption.Create();
        var gpus = GpusOption.Create("data-parallel ranks, one GPU each (needs --device cuda; --batch is the global batch)");
        var command = new Command("train", "Benchmark training steps: ternary vs full precision.");
        foreach (var o in new Option[] { presets, batch, steps, warmup, dataDir, output, device, precision, threads, gpus }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            ThreadsOption.Apply(p.GetValue(threads));
            int b = p.GetValue(batch), n = p.GetValue(steps), w = p.GetValue(warmup);
            if (b <= 0 || n <= 0 || w < 0) throw new ArgumentException("--batch and --steps must be positive, --warmup ≥ 0");
            int worldSize = p.GetValue(gpus);
            GpusOption.CheckTraining(worldSize, p.GetValue(device)!, b);
            if (GpusOption.LaunchIfNeeded(p, worldSize, Path.GetTempPath(), forwardAllOutput: false) is { } exitCode) return exitCode;
            var dev = DeviceOption.Resolve(p.GetValue(device)!);
            using var communicator = GpusOption.Join(worldSize, dev);
            bool main = communicator is null || communicator.Rank == 0;
            var results = new JsonArray();
            foreach (var name in p.GetValue(presets)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var config = Presets.Get(name);
                // Fashion-MNIST for the 1-channel presets; random bytes shaped like the latents for the paper's.
                var images = config.InChannels == 1
                    ? DatasetSource.Load(DatasetSource.FashionMnistName, config, p.GetValue(dataDir))
                    : RandomImages(config, count: Math.Max(4 * b, 64));
                var (ternary, full) = Measure(config, images, b, n, w, dev, p.GetValue(precision), communicator);
                double ratio = BenchTiming.Median(ternary) / BenchTiming.Median(full);
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name}: ternary {BenchTiming.Median(ternary) * 1000:F1} ms/step ({b / BenchTiming.Median(ternary):F1} img/s), full precision {BenchTiming.Median(full) * 1000:F1} ms/step ({b / BenchTiming.Median(full):F1} img/s), ternary/FP time {ratio:F3}"));
                results.Add(new JsonObject
                {
                    ["preset"] = name,
                    ["parameters_ternary"] = ParameterSchema.ParameterCount(config with { Ternary = true }),
                    ["parameters_full_precision"] = ParameterSchema.ParameterCount(config with { Ternary = false }),
                    ["ternary"] = Summary(ternary, b),
                    ["full_precision"] = Summary(full, b),
                    ["ratio_step_time_ternary_over_fp"] = Math.Round(ratio, 4),
                });
            }
            var doc = new JsonObject
            {
                ["benchmark"] = "training step (forward + backward + AdamW + EMA), Fashion-MNIST batches",
                ["command"] = "terdit " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
                ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                ["machine"] = Machine(dev),
                ["gpus"] = worldSize, ["batch"] = b, ["batch_per_gpu"] = b / worldSize, ["timed_steps"] = n, ["warmup_steps"] = w,
                ["precision"] = p.GetValue(precision).ToString().ToLowerInvariant(),
                ["method"] = "ternary and full-precision steps interleaved; medians of per-step wall time",
                ["results"] = results,
            };
            if (!main) return 0;
            var path = p.GetValue(output)!;
            AtomicFile.WriteAllText(path, doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
            stdout.WriteLine($"results: {path}");
            return 0;
        }));
        return command;
    }

    /// <summary>Per-step seconds of the ternary and the full-precision variant, steps interleaved.</summary>
    static (List<double> Ternary, List<double> Full) Measure(TerDiTConfig config, LabeledImages images, int batch, int steps, int warmup,
        torch.Device device, TrainPrecision precision, Distributed.ICommunicator? communicator)
    {
        var root = Directory.CreateTempSubdirectory("terdit-bench").FullName;
        try
        {
            var options = new TrainOptions { Steps = warmup + steps, BatchSize = batch, CheckpointEvery = 0, Precision = precision };
            using var ternary = Trainer.Start(config with { Ternary = true }, options, images, "fashion-mnist", Path.Combine(root, "ternary"), device, communicator: communicator);
            using var full = Trainer.Start(config with { Ternary = false }, options, images, "fashion-mnist", Path.Combine(root, "full"), device, communicator: communicator);
            var (t, f) = (new List<double>(), new List<double>());
            for (int i = 0; i < warmup + steps; i++)
            {
                double a = ternary.TrainStep().StepSeconds, b = full.TrainStep().StepSeconds;
                if (i >= warmup) { t.Add(a); f.Add(b); }
            }
            return (t, f);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    /// <summary>Uniform random bytes in the config's data shape, labels cycling through its classes (timing only).</summary>
    static LabeledImages RandomImages(TerDiTConfig config, int count)
    {
        var pixels = new byte[(long)count * config.InChannels * config.InputSize * config.InputSize];
        new Random(0).NextBytes(pixels);
        var labels = Enumerable.Range(0, count).Select(i => i % config.NumClasses).ToArray();
        var names = Enumerable.Range(0, config.NumClasses).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        return new LabeledImages(pixels, labels, config.InChannels, config.InputSize, config.InputSize, names);
    }

    static JsonObject Summary(List<double> seconds, int batch) => new()
    {
        ["median_step_s"] = Math.Round(BenchTiming.Median(seconds), 5),
        ["min_step_s"] = Math.Round(seconds.Min(), 5),
        ["max_step_s"] = Math.Round(seconds.Max(), 5),
        ["images_per_s"] = Math.Round(batch / BenchTiming.Median(seconds), 2),
    };

    internal static JsonObject Machine(torch.Device device)
    {
        var machine = BenchMachine.Describe();
        machine["torch_threads"] = torch.get_num_threads();
        machine["device"] = device.type.ToString();
        machine["torchsharp"] = typeof(torch).Assembly.GetName().Version?.ToString();
        return machine;
    }
}
