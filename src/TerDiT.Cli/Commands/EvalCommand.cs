using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using TerDiT.Data;
using TerDiT.Evaluation;
using TerDiT.Runtime;
using TerDiT.Runtime.Imaging;
using TerDiT.Runtime.Diffusion;
using TerDiT.Training;
using static TorchSharp.torch;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit eval</c>: samples N images with balanced classes (sample i asks for class i mod 10) from a checkpoint
/// (TorchSharp, CPU or CUDA) or a packed model (the pure-C# runtime, exact or a8) and
/// scores them against the Fashion-MNIST test split with the committed classifier (FID, precision, recall, class
/// accuracy; docs/EVAL.md). Batch b draws its noise from a CPU generator seeded <c>Seeds.Derive(seed, 4, b)</c>, so the
/// result depends on the seed and the batch size, and only the batch's images are alive at a time.
/// </summary>
static class EvalCommand
{
    /// <summary>Seed stream of the per-batch sampling generators.</summary>
    const ulong BatchStream = 4;
    const int GridColumns = 8;

    public static Command Create()
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "a .ckpt file, or a run directory (its latest checkpoint)" };
        var packed = new Option<string?>("--model") { Description = "a packed .tdit model, sampled on the packed runtime (CPU, or the CUDA backend with --device cuda) instead of --checkpoint" };
        var mode = RuntimeModeOption.Create();
        var weights = new Option<string>("--weights") { Description = "ema or raw (--checkpoint only)", DefaultValueFactory = _ => "ema" };
        var samples = new Option<int>("--samples") { Description = "images to generate (balanced classes)", Required = true };
        var steps = SamplerOption.CreateSteps();
        var sampler = SamplerOption.Create();
        var cfg = new Option<double>("--cfg") { Description = "classifier-free guidance scale (1: none)", DefaultValueFactory = _ => 1.5 };
        var seed = new Option<ulong>("--seed") { Description = "seed of the sampling noise", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch") { Description = "images sampled at once (bounds the memory)", DefaultValueFactory = _ => 100 };
        var referenceDir = new Option<string?>("--reference-dir") { Description = $"Fashion-MNIST IDX folder whose test split is the reference (default {FashionMnist.DefaultDirectory})" };
        var output = new Option<string?>("--out") { Description = "JSON file for the results (written atomically)" };
        var grid = new Option<string?>("--grid") { Description = "PNG of the first samples: one row per class, up to 8 columns" };
        var device = DeviceOption.Create();
        var threads = ThreadsOption.Create();
        weights.AcceptOnlyFromAmong("ema", "raw");

        var command = new Command("eval", "Sample N images from a checkpoint or a packed model and score them: FID, precision, recall, class accuracy.");
        foreach (var o in new Option[] { checkpoint, packed, mode, weights, samples, steps, sampler, cfg, seed, batch, referenceDir, output, grid, device, threads }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            var clock = Stopwatch.StartNew();
            ThreadsOption.Apply(p.GetValue(threads));
            int n = p.GetValue(samples), batchSize = p.GetValue(batch), stepCount = p.GetValue(steps);
            if (n < 10) throw new ArgumentException($"--samples must be at least 10 (one per class), not {n}");
            if (batchSize <= 0) throw new ArgumentException($"--batch must be positive, not {batchSize}");
            if (stepCount <= 0) throw new ArgumentException($"--steps must be positive, not {stepCount}");
            // Kept for scoring: 128 float64 features per sample (twice while gathered), and the k-NN distances of
            // precision/recall in row blocks of 1024 (three float64 temporaries per block).
            MemoryBudget.Require(MemoryBudget.Multiply(n, 2 * 128 * 8 + 3 * 1024 * 8), $"--samples {n}: scoring {n} samples");
            var gridPath = p.GetValue(grid);
            var outPath = p.GetValue(output);
            var kind = SamplerOption.Resolve(p.GetValue(sampler)!);
            double cfgScale = p.GetValue(cfg);
            ulong baseSeed = p.GetValue(seed);

            string? ckptArg = p.GetValue(checkpoint), modelPath = p.GetValue(packed);
            if ((ckptArg is null) == (modelPath is null)) throw new ArgumentException("give one of --checkpoint CKPT and --model MODEL.tdit");
            RuntimeModeOption.Check(modelPath is not null, p.GetValue(mode)!);
            var dev = DeviceOption.Resolve(p.GetValue(device)!);
            using SampleSource source = modelPath is not null
                ? PackedSampleSource.Open(modelPath, RuntimeModeOption.Resolve(p.GetValue(mode)!), p.GetValue(device)!, p.GetValue(threads), batchSize)
                : CheckpointSampleSource.Open(ckptArg!, p.GetValue(weights) == "raw" ? WeightsKind.Raw : WeightsKind.Ema, p.GetValue(device)!, p.GetValue(threads));
            var config = source.Config;
            source.CheckSteps(kind, stepCount);
            if (config.InChannels != 1 || config.InputSize != FeatureClassifier.InputSize || config.NumClasses != FeatureClassifier.NumClasses)
                throw new ArgumentException($"eval scores 1×{FeatureClassifier.InputSize}×{FeatureClassifier.InputSize} images of {FeatureClassifier.NumClasses} classes; " +
                                            $"{source.Path} holds a {config.InChannels}×{config.InputSize}×{config.InputSize} model of {config.NumClasses} classes");
            var reference = FashionMnist.Load(Split.Test, p.GetValue(referenceDir));
            using var classifier = FeatureClassifier.LoadDefault(dev);
            using var evaluator = new Evaluator(classifier, reference);
            stdout.WriteLine($"evaluating {source.Description}: " +
                             $"{n} samples, {stepCount} {p.GetValue(sampler)} steps, cfg {cfgScale.ToString(CultureInfo.InvariantCulture)}, batch {batchSize}, device {dev.type}, " +
                             $"{evaluator.ReferenceCount} reference images");

            // The first grid images (sample i is class i mod 10), (gridCount, 1, 32, 32) floats.
            int gridColumns = Math.Min(GridColumns, n / FeatureClassifier.NumClasses), gridCount = gridColumns * FeatureClassifier.NumClasses;
            var gridImages = new List<float>();
            int batchIndex = 0, imageLength = config.InChannels * config.InputSize * config.InputSize;
            Tensor Generate(int[] classes)
            {
                ulong batchSeed = Seeds.Derive(baseSeed, BatchStream, (ulong)batchIndex++);
                var images = source.Sample(classes, kind, stepCount, cfgScale, batchSeed); // (B, 1, 32, 32)
                if (gridPath is not null && gridImages.Count < gridCount * imageLength)
                    gridImages.AddRange(images.Take(gridCount * imageLength - gridImages.Count));
                return tensor(images, [classes.Length, config.InChannels, config.InputSize, config.InputSize]);
            }

            var result = RunWithProgress(stdout, n, (report) => evaluator.EvaluateSamples(Generate, n, batchSize, report));
            if (gridPath is not null) SaveGrid(gridPath, gridImages, gridColumns, imageLength);
            double seconds = clock.Elapsed.TotalSeconds;

            PrintTable(stdout, result, seconds);
            if (outPath is not null)
            {
                var json = new JsonObject
                {
                    ["command"] = "terdit " + string.Join(' ', p.Tokens.Select(t => Quote(t.Value))),
                    [modelPath is null ? "checkpoint" : "packed_model"] = Path.GetFullPath(source.Path),
                    ["step"] = source.Step,
                    ["model"] = config.Name,
                    ["ternary"] = config.Ternary,
                    ["settings"] = new JsonObject
                    {
                        ["weights"] = modelPath is null ? p.GetValue(weights) : null, ["mode"] = modelPath is null ? null : p.GetValue(mode), ["samples"] = n, ["steps"] = stepCount, ["sampler"] = p.GetValue(sampler),
                        ["cfg"] = cfgScale, ["seed"] = baseSeed, ["batch"] = batchSize, ["device"] = dev.type.ToString().ToLowerInvariant(),
                        ["reference_dir"] = p.GetValue(referenceDir) ?? FashionMnist.DefaultDirectory,
                        ["classifier"] = classifier.Provenance is { } prov ? JsonSerializer.SerializeToNode(prov) : null,
                    },
                    ["result"] = JsonNode.Parse(result.ToJson()),
                    ["elapsed_s"] = Math.Round(seconds, 3),
                };
                AtomicFile.WriteAllText(outPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
                stdout.WriteLine($"results: {outPath}");
            }
            if (gridPath is not null) stdout.WriteLine($"grid: {gridPath} ({FeatureClassifier.NumClasses}×{gridColumns}, one row per class)");
            return 0;
        }));
        return command;
    }

    /// <summary>Runs <paramref name="body"/> with a live bar on an interactive console, else a plain line per batch.</summary>
    static T RunWithProgress<T>(TextWriter stdout, int total, Func<Action<int, int>, T> body)
    {
        if (ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive)
        {
            T result = default!;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("sampling", maxValue: total);
                    result = body((done, n) => { task.Value = done; task.Description = $"sampled {done}/{n}"; });
                });
            return result;
        }
        var clock = Stopwatch.StartNew();
        return body((done, n) => stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"sampled {done}/{n} ({done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9):F1} img/s)")));
    }

    /// <summary>Rows = classes, column j = sample j·10 + class (the first samples in order).</summary>
    static void SaveGrid(string path, List<float> samples, int columns, int imageLength)
    {
        if (columns == 0) throw new ArgumentException("--grid needs at least 10 samples");
        int classes = FeatureClassifier.NumClasses, size = FeatureClassifier.InputSize;
        var all = samples.ToArray(); // (10·columns, 1, 32, 32), sample i of class i mod 10
        var grid = new float[all.Length]; // (10·columns, 1, 32, 32), row-major by class
        for (int c = 0; c < classes; c++)
            for (int j = 0; j < columns; j++)
                all.AsSpan((j * classes + c) * imageLength, imageLength).CopyTo(grid.AsSpan((c * columns + j) * imageLength));
        PngGrid.Save(path, grid, classes * columns, 1, size, size, classes, columns);
    }

    static void PrintTable(TextWriter stdout, EvalResult r, double seconds)
    {
        var console = ReferenceEquals(stdout, Console.Out)
            ? AnsiConsole.Console
            : AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stdout), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        var table = new Table().AddColumn("metric").AddColumn(new TableColumn("value").RightAligned());
        string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
        table.AddRow("FID", F(r.Fid, "F4"));
        table.AddRow("precision", F(r.Precision, "F4"));
        table.AddRow("recall", F(r.Recall, "F4"));
        table.AddRow("class accuracy", F(r.ClassAccuracy, "F4"));
        table.AddRow("samples", r.N.ToString(CultureInfo.InvariantCulture));
        table.AddRow("reference (FID / P&R)", $"{r.ReferenceN} / {r.PrecisionRecallReferenceN}");
        table.AddRow("seconds", F(seconds, "F1"));
        console.Write(table);
    }

    static string Quote(string token) => token.Length > 0 && !token.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'') ? token : $"'{token.Replace("'", "'\\''")}'";

}
