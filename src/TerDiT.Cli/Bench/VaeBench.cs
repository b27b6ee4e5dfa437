using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using TerDiT.Packing;
using TerDiT.Runtime;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Diffusion;
using TerDiT.Runtime.Vae;
using TerDiT.Vae;
using TorchSharp;

namespace TerDiT.Cli.Bench;

/// <summary>
/// <c>terdit bench vae</c>: decoding one image with the Stable Diffusion VAE (full size, random weights), the
/// runtime's <see cref="VaeDecoder"/> against the TorchSharp <see cref="AutoencoderKL"/> in fp32, interleaved.
/// <c>terdit bench latent</c>: seconds per image end to end on the runtime — sampling a TerDiT-600M-shaped
/// model (random-init ternary, 4×32×32 latents, DDIM, guidance 1.5) and decoding with the full-size VAE.
/// </summary>
static class VaeBench
{
    public static Command CreateDecode()
    {
        var size = new Option<int>("--image-size") { Description = "side of the decoded image", DefaultValueFactory = _ => 256 };
        var threads = new Option<int>("--threads") { Description = "threads for libtorch and the runtime", DefaultValueFactory = _ => 2 };
        var repetitions = new Option<int>("--repetitions") { Description = "timed decodes per engine (median reported)", DefaultValueFactory = _ => 5 };
        var output = new Option<string>("--out") { Description = "JSON results file", DefaultValueFactory = _ => "bench/results/vae-decode-cpu.json" };
        var command = new Command("vae", "Benchmark the runtime's VAE decoder against TorchSharp fp32 (Stable Diffusion VAE, random weights).");
        foreach (var o in new Option[] { size, threads, repetitions, output }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            int s = p.GetValue(size), t = p.GetValue(threads), n = p.GetValue(repetitions);
            if (s <= 0 || s % 8 != 0 || t <= 0 || n <= 0) throw new ArgumentException("--image-size must be a positive multiple of 8, --threads and --repetitions positive");
            Decode(stdout, s, t, n, p.GetValue(output)!);
            return 0;
        }));
        return command;
    }

    public static Command CreateEndToEnd()
    {
        var steps = new Option<string>("--steps") { Description = "comma-separated DDIM step counts", DefaultValueFactory = _ => "25,50" };
        var threads = new Option<int>("--threads") { Description = "runtime threads", DefaultValueFactory = _ => 2 };
        var modes = new Option<string>("--modes") { Description = "comma-separated runtime modes (exact, a8)", DefaultValueFactory = _ => "exact,a8" };
        var output = new Option<string>("--out") { Description = "JSON results file", DefaultValueFactory = _ => "bench/results/latent-e2e-cpu.json" };
        var command = new Command("latent", "Benchmark seconds per 256² image on the CPU runtime: TerDiT-600M sampling plus VAE decoding.");
        foreach (var o in new Option[] { steps, threads, modes, output }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            var counts = p.GetValue(steps)!.Split(',', StringSplitOptions.TrimEntries).Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            var modeList = p.GetValue(modes)!.Split(',', StringSplitOptions.TrimEntries).Select(m => m switch
            {
                "exact" => GemmMode.Exact,
                "a8" => GemmMode.A8,
                _ => throw new ArgumentException($"unknown mode '{m}' (exact, a8)"),
            }).ToArray();
            if (counts.Any(c => c is < 1 or > 1000) || p.GetValue(threads) <= 0) throw new ArgumentException("steps must be in 1..1000 and --threads positive");
            EndToEnd(stdout, counts, modeList, p.GetValue(threads), p.GetValue(output)!);
            return 0;
        }));
        return command;
    }

    /// <summary>A full-size Stable Diffusion VAE with TorchSharp's default random initialisation, seeded, written as a diffusers folder.</summary>
    static AutoencoderKL RandomVae(string directory)
    {
        torch.manual_seed(0);
        var vae = new AutoencoderKL(VaeConfig.StableDiffusion);
        vae.eval();
        vae.Save(directory);
        return vae;
    }

    static void Decode(TextWriter stdout, int size, int threads, int repetitions, string outPath)
    {
        torch.set_num_threads(threads);
        string loadStart = RuntimeBench.LoadAverage();
        var dir = Directory.CreateTempSubdirectory("terdit-bench-vae").FullName;
        try
        {
            using var torchVae = RandomVae(dir);
            using var weights = VaeWeights.Open(dir);
            var decoder = new VaeDecoder(weights, new RuntimeOptions { Threads = threads });
            int side = size / 8;
            var latents = new float[4 * side * side];
            GaussianNoise.Fill(1, 0, latents);
            float[] runtimeImage = [];
            using var z = torch.tensor(latents.Select(v => (float)(v / VaeConfig.StableDiffusion.ScalingFactor)).ToArray(), [1, 4, side, side]);
            torch.Tensor? torchImage = null;
            Action runtime = () => runtimeImage = decoder.Decode(latents, 1, side, side);
            Action reference = () =>
            {
                using var _ = torch.no_grad();
                torchImage?.Dispose();
                torchImage = torchVae.Decode(z);
                Thread.Sleep(TimeSpan.FromSeconds(BenchTiming.OmpSettleSeconds)); // libtorch's OpenMP threads stop spinning (not timed below)
            };
            stdout.WriteLine("warm-up …");
            BenchTiming.WarmUp([runtime, reference], 1, 0);
            var runtimeTimes = new List<double>();
            var torchTimes = new List<double>();
            for (int i = 0; i < repetitions; i++)
            {
                runtimeTimes.Add(Timed(runtime));
                torchTimes.Add(Timed(() =>
                {
                    using var _ = torch.no_grad();
                    torchImage?.Dispose();
                    torchImage = torchVae.Decode(z);
                }));
                Thread.Sleep(TimeSpan.FromSeconds(BenchTiming.OmpSettleSeconds));
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {i + 1}/{repetitions}: runtime {runtimeTimes[^1]:F2} s, TorchSharp {torchTimes[^1]:F2} s"));
            }
            var expected = torchImage!.data<float>().ToArray();
            double err = 0, scale = 0;
            for (int i = 0; i < expected.Length; i++) (err, scale) = (Math.Max(err, Math.Abs(runtimeImage[i] - expected[i])), Math.Max(scale, Math.Abs(expected[i])));
            torchImage.Dispose();
            double rt = BenchTiming.Median(runtimeTimes), ts = BenchTiming.Median(torchTimes);
            Write(outPath, new JsonObject
            {
                ["benchmark"] = "VAE decode of one image: runtime VaeDecoder vs TorchSharp AutoencoderKL fp32 (Stable Diffusion VAE architecture, random weights)",
                ["command"] = Command(),
                ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                ["machine"] = TrainBench.Machine(torch.CPU),
                ["load_average_start"] = loadStart,
                ["image_size"] = size,
                ["threads"] = threads,
                ["method"] = "one warm-up decode each; then --repetitions rounds of one runtime decode and one TorchSharp decode, in one process, with a 0.5 s pause after each TorchSharp call so libtorch's OpenMP threads stop spinning; medians of wall time",
                ["runtime_s"] = Math.Round(rt, 3),
                ["torch_fp32_s"] = Math.Round(ts, 3),
                ["speedup"] = Math.Round(ts / rt, 3),
                ["runtime_s_all"] = new JsonArray(runtimeTimes.Select(v => (JsonNode)Math.Round(v, 3)).ToArray()),
                ["torch_fp32_s_all"] = new JsonArray(torchTimes.Select(v => (JsonNode)Math.Round(v, 3)).ToArray()),
                ["max_relative_difference"] = err / scale,
            });
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{size}² decode: runtime {rt:F2} s, TorchSharp fp32 {ts:F2} s ({ts / rt:F2}×); max relative difference {err / scale:E1}; {outPath}"));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    static void EndToEnd(TextWriter stdout, int[] stepCounts, GemmMode[] modes, int threads, string outPath)
    {
        string loadStart = RuntimeBench.LoadAverage();
        var dir = Directory.CreateTempSubdirectory("terdit-bench-latent").FullName;
        try
        {
            var config = Presets.Get("TerDiT-600M");
            var model = Path.Combine(dir, "600m.tdit");
            var vaeDir = Path.Combine(dir, "vae");
            stdout.WriteLine("packing a random-init TerDiT-600M and writing a random full-size VAE …");
            ModelPacker.PackRandomInit(config, model);
            using (RandomVae(vaeDir)) { }
            // The packed random-init model has no latent record; the benchmark decodes its samples as if it had one.
            var results = new JsonArray();
            foreach (var mode in modes)
            {
                using var vae = VaeWeights.Open(vaeDir);
                var options = new RuntimeOptions { Mode = mode, Threads = threads };
                using var file = TditFile.Open(model);
                using var pipe = new TerDiTPipeline(new RuntimeModel(new TditWeightSource(file), options), options.MaxBatch, decoder: new VaeDecoder(vae, options));
                pipe.Sample([207], 1, 1, SamplerKind.Ddim, 1.5, 0); // warm-up: one step and one decode
                foreach (int steps in stepCounts)
                {
                    double sampling = 0;
                    var clock = Stopwatch.StartNew();
                    pipe.Sample([207], 1, steps, SamplerKind.Ddim, 1.5, 0, new Progress(p => { if (p.Done == p.Total) sampling = clock.Elapsed.TotalSeconds; }));
                    double total = clock.Elapsed.TotalSeconds;
                    results.Add(new JsonObject
                    {
                        ["mode"] = mode.ToString().ToLowerInvariant(), ["steps"] = steps,
                        ["seconds_per_image"] = Math.Round(total, 2), ["sampling_s"] = Math.Round(sampling, 2), ["decode_s"] = Math.Round(total - sampling, 2),
                        ["seconds_per_step"] = Math.Round(sampling / steps, 3),
                    });
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{mode}, {steps} steps: {total:F1} s per image (sampling {sampling:F1} s, decoding {total - sampling:F1} s)"));
                }
            }
            Write(outPath, new JsonObject
            {
                ["benchmark"] = "end to end on the CPU runtime: one 256² image from a TerDiT-600M-shaped model (random-init ternary, 4×32×32 latents, 1000 classes) with DDIM and classifier-free guidance 1.5 (one forward at batch 2 per step), decoded by the full-size Stable Diffusion VAE (random weights)",
                ["command"] = Command(),
                ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                ["machine"] = TrainBench.Machine(torch.CPU),
                ["load_average_start"] = loadStart,
                ["threads"] = threads,
                ["method"] = "per mode: one warm-up sample (1 step + decode), then one timed sample per step count; sampling time up to the last step's end, decoding the rest",
                ["results"] = results,
            });
            stdout.WriteLine($"results: {outPath}");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>Calls back on the sampling thread (<see cref="Progress{T}"/> would post to the thread pool).</summary>
    sealed class Progress(Action<SamplingProgress> report) : IProgress<SamplingProgress>
    {
        public void Report(SamplingProgress value) => report(value);
    }

    static double Timed(Action a)
    {
        long t0 = Stopwatch.GetTimestamp();
        a();
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    static string Command() => "terdit " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));

    static void Write(string path, JsonObject doc)
    {
        AtomicFile.WriteAllText(path, doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
    }
}
