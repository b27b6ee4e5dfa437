using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using TerDiT.Diffusion;
using TerDiT.Model;
using TerDiT.Packing;
using TerDiT.Runtime;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Diffusion;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TorchSharp;

namespace TerDiT.Cli.Bench;

/// <summary>
/// <c>terdit bench runtime</c>: the packed runtime against TorchSharp fp32 on this machine, in one run.
/// (1) One sampling step — DDIM, guidance 1.5, one image, so one forward at batch 2 (M = 2·tokens rows)
/// plus the sampler's arithmetic and the x_T draw — for each preset: runtime Exact and A8 on a packed
/// random-init ternary model (F16 full-precision tensors) against TorchSharp on the dense
/// (<c>Ternary = false</c>) model of the same shape (the same FLOPs), TorchSharp in this process and the
/// runtime in a child process without libtorch, the two timed in alternating rounds (see <see cref="MeasureStep"/>),
/// medians over the rounds. (2) <see cref="GemmBench"/> at the 600M shapes. (3) Peak resident
/// memory (VmHWM) while sampling the largest preset, each engine in its own child process
/// (<c>terdit bench runtime-memory</c>, hidden).
/// </summary>
static class RuntimeBench
{
    const double Guidance = 1.5;

    public static Command Create()
    {
        var presets = new Option<string>("--presets") { Description = "comma-separated presets", DefaultValueFactory = _ => "TerDiT-Tiny,TerDiT-S,TerDiT-600M" };
        var threads = new Option<int>("--threads") { Description = "threads for libtorch and the runtime", DefaultValueFactory = _ => 2 };
        var warmup = new Option<int>("--warmup") { Description = "untimed steps per engine first", DefaultValueFactory = _ => 1 };
        var repetitions = new Option<int>("--repetitions") { Description = "timed steps per engine in each round (median of all rounds reported)", DefaultValueFactory = _ => 5 };
        var rounds = new Option<int>("--rounds") { Description = "alternations of TorchSharp and runtime timing per preset", DefaultValueFactory = _ => 3 };
        var output = new Option<string?>("--out") { Description = "JSON results file (default bench/results/runtime-cpu.json, with --device cuda runtime-cuda.json)" };
        var device = new Option<string>("--device") { Description = "cpu: the CPU runtime against TorchSharp; cuda: the CUDA backend (PyTorch baselines: bench/torch_runtime.py)", DefaultValueFactory = _ => "cpu" };
        var batches = new Option<string>("--batches") { Description = "--device cuda: comma-separated batch sizes (a step is one forward of 2·batch images)", DefaultValueFactory = _ => "1,4,16" };
        var gemmRows = new Option<string>("--gemm-rows") { Description = "--device cuda: comma-separated M of the GEMM-only measurements at the 4.2B shapes (empty: none)", DefaultValueFactory = _ => "512,2048,8192" };
        var modelDir = new Option<string?>("--model-dir") { Description = "--device cuda: folder for the random 600M/4.2B .tdit files, kept for the PyTorch baselines (default: a temporary folder)" };
        device.AcceptOnlyFromAmong("cpu", "cuda");
        var command = new Command("runtime", "Benchmark the packed runtime (exact, a8) against TorchSharp fp32: step time, GEMM throughput, peak memory; --device cuda: the CUDA backend.");
        foreach (var o in new Option[] { presets, threads, warmup, repetitions, rounds, output, device, batches, gemmRows, modelDir }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            if (p.GetValue(device) == "cuda")
            {
                var cudaPresets = p.GetResult(presets) is null ? ["TerDiT-S", "TerDiT-600M", "TerDiT-4.2B"] : p.GetValue(presets)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                foreach (var name in cudaPresets) Presets.Get(name);
                int[] Ints(string text, string option) => text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                    .Select(v => int.TryParse(v, CultureInfo.InvariantCulture, out int i) && i > 0 ? i : throw new ArgumentException($"{option}: '{v}' is not a positive integer")).ToArray();
                CudaRuntimeBench.Run(stdout, new CudaRuntimeBench.Settings(cudaPresets, Ints(p.GetValue(batches)!, "--batches"), Ints(p.GetValue(gemmRows)!, "--gemm-rows"),
                    p.GetValue(warmup), p.GetValue(repetitions) * p.GetValue(rounds), p.GetValue(output) ?? "bench/results/runtime-cuda.json", p.GetValue(modelDir)));
                return 0;
            }
            int t = p.GetValue(threads), w = p.GetValue(warmup), n = p.GetValue(repetitions), r = p.GetValue(rounds);
            if (t <= 0 || w < 0 || n <= 0 || r <= 0) throw new ArgumentException("--threads, --repetitions and --rounds must be positive, --warmup ≥ 0");
            var names = p.GetValue(presets)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (names.Length == 0) throw new ArgumentException("--presets is empty");
            foreach (var name in names) Presets.Get(name);
            Run(stdout, names, t, w, n, r, p.GetValue(output) ?? "bench/results/runtime-cpu.json");
            return 0;
        }));
        return command;
    }

    /// <summary>The hidden child command: prints <c>vmhwm_kb: N</c> after one sampling step of one engine.</summary>
    public static Command CreateMemoryChild()
    {
        var engine = new Option<string>("--engine") { Required = true };
        var model = new Option<string?>("--model");
        var preset = new Option<string?>("--preset");
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 2 };
        engine.AcceptOnlyFromAmong("runtime-exact", "runtime-a8", "torch");
        var command = new Command("runtime-memory", "Child process of 'bench runtime': peak memory of one sampling step.") { Hidden = true };
        foreach (var o in new Option[] { engine, model, preset, threads }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            var e = p.GetValue(engine)!;
            if (e == "torch") TorchMemoryChild(Presets.Get(p.GetValue(preset) ?? throw new ArgumentException("--preset is required for torch")), p.GetValue(threads));
            else RuntimeMemoryChild(p.GetValue(model) ?? throw new ArgumentException("--model is required for the runtime"), e == "runtime-a8" ? GemmMode.A8 : GemmMode.Exact, p.GetValue(threads));
            stdout.WriteLine($"vmhwm_kb: {Status("VmHWM")}");
            stdout.WriteLine($"libtorch_mapped: {LibtorchMapped().ToString().ToLowerInvariant()}");
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// The hidden child command: loads a packed model twice (exact and a8) in a process without libtorch, as
    /// the runtime is deployed, warms both up, prints <c>load_s</c> and <c>ready</c>, then serves the parent
    /// on stdin: each line <c>run N</c> warms both up again briefly, times N steps of each engine (alternating) and
    /// prints <c>exact_s</c> and <c>a8_s</c> (the N times, space-separated) and <c>done</c>; at end of input it
    /// prints <c>libtorch_mapped</c> and exits.
    /// </summary>
    public static Command CreateStepsChild()
    {
        var model = new Option<string>("--model") { Required = true };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 2 };
        var warmup = new Option<int>("--warmup") { DefaultValueFactory = _ => 1 };
        var command = new Command("runtime-steps", "Child process of 'bench runtime': runtime step times without libtorch.") { Hidden = true };
        foreach (var o in new Option[] { model, threads, warmup }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            ServeRuntimeSteps(p.GetValue(model)!, p.GetValue(threads), p.GetValue(warmup), Console.In, stdout);
            stdout.WriteLine($"libtorch_mapped: {LibtorchMapped().ToString().ToLowerInvariant()}");
            return 0;
        }));
        return command;
    }

    /// <param name="TorchS">The baseline: the faster of TorchSharp with <c>--threads</c> and with one thread (libtorch's
    /// OpenMP threads spin at barriers, which on a machine busy with other processes can make one thread faster).</param>
    sealed record StepResult(string Preset, int Rows, double TorchThreadsS, double TorchOneS, double ExactS, double A8S, long FileBytes, double Compression, double LoadS)
    {
        public double TorchS => Math.Min(TorchThreadsS, TorchOneS);
        public double ExactSpeedup => TorchS / ExactS;
        public double A8Speedup => TorchS / A8S;
    }

    static void Run(TextWriter stdout, string[] presets, int threads, int warmup, int repetitions, int rounds, string outPath)
    {
        torch.set_num_threads(threads);
        string load0 = LoadAverage();
        var tmp = Directory.CreateTempSubdirectory("terdit-bench-runtime").FullName;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stdout), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        console.Profile.Width = 150;
        try
        {
            var steps = new List<StepResult>();
            string? largestModel = null;
            foreach (var name in presets)
            {
                var r = MeasureStep(Presets.Get(name), Path.Combine(tmp, $"{name}.tdit"), threads, warmup, repetitions, rounds);
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name}: torch {r.TorchThreadsS * 1000:F1} ms ({threads} threads) / {r.TorchOneS * 1000:F1} ms (1 thread), exact {r.ExactS * 1000:F1} ms ({r.ExactSpeedup:F2}×), a8 {r.A8S * 1000:F1} ms ({r.A8Speedup:F2}×)"));
                steps.Add(r);
                largestModel = Path.Combine(tmp, $"{name}.tdit");
            }
            var gemm = GemmBench.Run(Presets.Get(GemmBench.DefaultPreset), 512, threads, 2, 11, stdout.WriteLine);

            var largest = presets[^1];
            var memory = new Dictionary<string, (long Kb, bool Libtorch)>
            {
                ["runtime-exact"] = MemoryChild(["--engine", "runtime-exact", "--model", largestModel!, "--threads", $"{threads}"]),
                ["runtime-a8"] = MemoryChild(["--engine", "runtime-a8", "--model", largestModel!, "--threads", $"{threads}"]),
                ["torch"] = MemoryChild(["--engine", "torch", "--preset", largest, "--threads", $"{threads}"]),
            };
            string load1 = LoadAverage();

            var table = new Table().Title("one sampling step (DDIM, cfg 1.5, batch 1 → forward at batch 2), median ms; speedups over the faster torch");
            foreach (var h in new[] { "preset", "M rows", ".tdit bytes", "× < fp32", $"torch fp32 {threads} thr", "torch fp32 1 thr", "runtime exact", "exact speedup", "runtime a8", "a8 speedup" }) table.AddColumn(h);
            foreach (var r in steps)
                table.AddRow(r.Preset, $"{r.Rows}", $"{r.FileBytes:N0}", F(r.Compression, 2), F(r.TorchThreadsS * 1000, 1), F(r.TorchOneS * 1000, 1), F(r.ExactS * 1000, 1),
                    F(r.ExactSpeedup, 2) + "×", F(r.A8S * 1000, 1), F(r.A8Speedup, 2) + "×");
            console.Write(table);
            var gt = new Table().Title($"GEMM at the 600M shapes, M = 512, {threads} threads, GOP/s (fraction of the fp32 peak {F(gemm[0].PeakGflops, 0)})");
            foreach (var h in new[] { "shape", "K → N", "torch", "exact", "exact ×", "a8", "a8 ×" }) gt.AddColumn(h);
            foreach (var g in gemm)
                gt.AddRow(g.Name, $"{g.K} → {g.N}", $"{F(g.TorchGops, 1)} ({g.TorchPeakFraction:P0})", $"{F(g.ExactGops, 1)} ({g.ExactPeakFraction:P0})",
                    F(g.ExactSpeedup, 2) + "×", $"{F(g.A8Gops, 1)} ({g.A8PeakFraction:P0})", F(g.A8Speedup, 2) + "×");
            console.Write(gt);
            long torchKb = memory["torch"].Kb;
            var mt = new Table().Title($"peak resident memory (VmHWM) sampling {largest}, each engine in its own process");
            foreach (var h in new[] { "engine", "VmHWM MiB", "÷ torch", "libtorch mapped" }) mt.AddColumn(h);
            foreach (var (engine, (kb, lib)) in memory) mt.AddRow(engine, F(kb / 1024.0, 0), F((double)kb / torchKb, 3), lib ? "yes" : "no");
            console.Write(mt);

            var doc = new JsonObject
            {
                ["benchmark"] = "packed runtime (TerDiTPipeline, exact and a8) vs TorchSharp fp32 dense model: one sampling step, GEMM, peak memory",
                ["command"] = "terdit " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
                ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                ["machine"] = TrainBench.Machine(torch.CPU),
                ["load_average_start"] = load0,
                ["load_average_end"] = load1,
                ["threads"] = threads, ["warmup"] = warmup, ["repetitions"] = repetitions, ["rounds"] = rounds,
                ["method"] = "step = a 1-step DDIM sample with cfg 1.5 of one image (one forward at batch 2, sampler arithmetic, x_T draw); "
                    + "runtime on a packed random-init ternary model (F16 full-precision tensors, memory-mapped), TorchSharp on the Ternary=false model "
                    + "of the same shape (same FLOPs), at --threads and at 1 thread, the faster of the two being the baseline of the speedups; TorchSharp's two thread settings interleaved in this process, the runtime (exact and a8 interleaved) in a long-lived child process without libtorch, each engine as deployed; "
                    + "after warm-up, --rounds alternations of --repetitions TorchSharp steps and --repetitions runtime steps (the machine's speed drifts over a run), medians of wall time over all rounds",
                ["steps"] = new JsonArray(steps.Select(r => (JsonNode)new JsonObject
                {
                    ["preset"] = r.Preset, ["rows_m"] = r.Rows, ["tdit_bytes"] = r.FileBytes, ["compression_vs_fp32"] = Math.Round(r.Compression, 3),
                    ["pipeline_load_s"] = Math.Round(r.LoadS, 4),
                    ["torch_fp32_ms"] = Math.Round(r.TorchThreadsS * 1000, 2), ["torch_fp32_1_thread_ms"] = Math.Round(r.TorchOneS * 1000, 2),
                    ["baseline_ms"] = Math.Round(r.TorchS * 1000, 2), ["runtime_exact_ms"] = Math.Round(r.ExactS * 1000, 2), ["runtime_a8_ms"] = Math.Round(r.A8S * 1000, 2),
                    ["speedup_exact"] = Math.Round(r.ExactSpeedup, 3), ["speedup_a8"] = Math.Round(r.A8Speedup, 3),
                }).ToArray()),
                ["gemm"] = JsonSerializer.SerializeToNode(gemm.Select(g => new
                {
                    g.Name, g.M, g.K, g.N, torch_gops = Math.Round(g.TorchGops, 2), exact_gops = Math.Round(g.ExactGops, 2), a8_gops = Math.Round(g.A8Gops, 2),
                    exact_speedup = Math.Round(g.ExactSpeedup, 3), a8_speedup = Math.Round(g.A8Speedup, 3), peak_gflops = Math.Round(g.PeakGflops, 1),
                    torch_peak_fraction = Math.Round(g.TorchPeakFraction, 3), exact_peak_fraction = Math.Round(g.ExactPeakFraction, 3), a8_peak_fraction = Math.Round(g.A8PeakFraction, 3),
                })),
                ["memory"] = new JsonObject
                {
                    ["preset"] = largest,
                    ["method"] = "VmHWM of a child process that loads the model and runs one sampling step (batch 1, cfg 1.5); torch: dense fp32 model",
                    ["vmhwm_kb"] = new JsonObject(memory.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value.Kb))),
                    ["libtorch_mapped"] = new JsonObject(memory.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value.Libtorch))),
                    ["ratio_runtime_exact_over_torch"] = Math.Round((double)memory["runtime-exact"].Kb / torchKb, 4),
                    ["ratio_runtime_a8_over_torch"] = Math.Round((double)memory["runtime-a8"].Kb / torchKb, 4),
                },
            };
            AtomicFile.WriteAllText(outPath, doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            stdout.WriteLine($"results: {outPath}");
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }

    static string F(double v, int digits) => v.ToString("F" + digits, CultureInfo.InvariantCulture);

    /// <summary>
    /// Packs a random-init ternary model and times TorchSharp steps here and the runtime's steps in a child
    /// process that never loads libtorch (<c>bench runtime-steps</c>), alternating the two in
    /// <paramref name="rounds"/> rounds so that drift in the machine's speed (other tenants) falls on both.
    /// Each engine runs as it is deployed: in one process, libtorch's OpenMP workers keep spinning after a
    /// call and took the cores from the runtime step that followed (TerDiT-Tiny: 7–10 ms a step that way,
    /// 2.5 ms alone; with <c>OMP_WAIT_POLICY=PASSIVE</c> 2.8 ms), so the child is only told to run after a
    /// pause of <see cref="BenchTiming.OmpSettleSeconds"/>.
    /// </summary>
    static StepResult MeasureStep(TerDiTConfig config, string packed, int threads, int warmup, int repetitions, int rounds)
    {
        var sizes = ModelPacker.PackRandomInit(config with { Ternary = true }, packed);
        using var dense = new TerDiTModel(config with { Ternary = false }, 0);
        dense.eval();
        using var child = RuntimeStepsProcess.Start(packed, threads, warmup);
        Action[] torchSteps = [TorchStep(dense, threads), TorchStep(dense, 1)];
        BenchTiming.WarmUp(torchSteps, warmup, WarmupSeconds);
        var torchTimes = torchSteps.Select(_ => new List<double>()).ToArray();
        var (exact, a8) = (new List<double>(), new List<double>());
        for (int round = 0; round < rounds; round++)
        {
            BenchTiming.WarmUp(torchSteps, 1, RewarmSeconds);
            var t = BenchTiming.Time(torchSteps, repetitions);
            for (int i = 0; i < t.Length; i++) torchTimes[i].AddRange(t[i]);
            Thread.Sleep(TimeSpan.FromSeconds(BenchTiming.OmpSettleSeconds));
            var (e, a) = child.Run(repetitions);
            exact.AddRange(e);
            a8.AddRange(a);
        }
        if (child.Finish()) throw new InvalidOperationException("the runtime step child mapped libtorch");
        return new StepResult(config.Name, 2 * config.Tokens, BenchTiming.Median(torchTimes[0]), BenchTiming.Median(torchTimes[1]),
            BenchTiming.Median(exact), BenchTiming.Median(a8), sizes.FileBytes, sizes.CompressionRatio, child.LoadS);
    }

    /// <summary>
    /// Warm-up before the first round (tiered compilation must have promoted the hot managed code, runtime
    /// kernels and TorchSharp's wrappers alike; one step of a small model is over long before that otherwise),
    /// and before every round (after seconds idle, the cores run a small model's first steps up to 1.5× slower:
    /// TerDiT-Tiny a8 1.8 ms a step after 6 s idle, 1.2 ms after 1 s).
    /// </summary>
    const double WarmupSeconds = 3, RewarmSeconds = 0.5;

    /// <summary>The runtime's side of <see cref="MeasureStep"/>: no TorchSharp type in this method, so libtorch stays unloaded.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    static void ServeRuntimeSteps(string model, int threads, int warmup, TextReader input, TextWriter output)
    {
        long start = Stopwatch.GetTimestamp();
        using var exact = TerDiTPipeline.Load(model, new RuntimeOptions { Mode = GemmMode.Exact, Threads = threads, MaxBatch = 1 });
        double loadS = Stopwatch.GetElapsedTime(start).TotalSeconds;
        using var a8 = TerDiTPipeline.Load(model, new RuntimeOptions { Mode = GemmMode.A8, Threads = threads, MaxBatch = 1 });
        Action[] steps = [() => exact.Sample([0], 1, 1, SamplerKind.Ddim, Guidance, 1), () => a8.Sample([0], 1, 1, SamplerKind.Ddim, Guidance, 1)];
        BenchTiming.WarmUp(steps, warmup, WarmupSeconds);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"load_s: {loadS:R}"));
        output.WriteLine("ready");
        output.Flush();
        while (input.ReadLine() is string line)
        {
            if (!line.StartsWith("run ", StringComparison.Ordinal) || !int.TryParse(line[4..], CultureInfo.InvariantCulture, out int n) || n <= 0)
                throw new ArgumentException($"runtime-steps: expected 'run N', got '{line}'");
            BenchTiming.WarmUp(steps, 1, RewarmSeconds); // the cores were idle while the parent timed TorchSharp
            var times = BenchTiming.Time(steps, n);
            output.WriteLine("exact_s: " + string.Join(' ', times[0].Select(t => t.ToString("R", CultureInfo.InvariantCulture))));
            output.WriteLine("a8_s: " + string.Join(' ', times[1].Select(t => t.ToString("R", CultureInfo.InvariantCulture))));
            output.WriteLine("done");
            output.Flush();
        }
    }

    /// <summary>The parent's handle on a <c>bench runtime-steps</c> child (see <see cref="ServeRuntimeSteps"/>).</summary>
    sealed class RuntimeStepsProcess : IDisposable
    {
        readonly Process _process;
        readonly Task<string> _stderr;
        public double LoadS { get; }

        RuntimeStepsProcess(Process process)
        {
            _process = process;
            _stderr = process.StandardError.ReadToEndAsync();
            var values = ReadUntil("ready");
            LoadS = double.Parse(values["load_s"], CultureInfo.InvariantCulture);
        }

        public static RuntimeStepsProcess Start(string model, int threads, int warmup)
        {
            var start = ChildStart("runtime-steps", ["--model", model, "--threads", $"{threads}", "--warmup", $"{warmup}"]);
            start.RedirectStandardInput = true;
            return new RuntimeStepsProcess(Process.Start(start)!);
        }

        /// <summary>Times <paramref name="repetitions"/> steps of each engine; seconds.</summary>
        public (double[] Exact, double[] A8) Run(int repetitions)
        {
            _process.StandardInput.WriteLine($"run {repetitions}");
            _process.StandardInput.Flush();
            var values = ReadUntil("done");
            double[] Times(string key) => values[key].Split(' ').Select(t => double.Parse(t, CultureInfo.InvariantCulture)).ToArray();
            return (Times("exact_s"), Times("a8_s"));
        }

        /// <summary>Ends the child; returns whether it had mapped libtorch.</summary>
        public bool Finish()
        {
            _process.StandardInput.Close();
            var values = ReadUntil(null);
            _process.WaitForExit();
            if (_process.ExitCode != 0) throw Failed();
            return values.GetValueOrDefault("libtorch_mapped") != "false";
        }

        /// <summary>The <c>key: value</c> lines up to the line <paramref name="end"/> (null: end of output).</summary>
        Dictionary<string, string> ReadUntil(string? end)
        {
            var values = new Dictionary<string, string>();
            while (_process.StandardOutput.ReadLine() is string line)
            {
                if (line == end) return values;
                var kv = line.Split(": ", 2);
                if (kv.Length == 2) values[kv[0]] = kv[1];
            }
            if (end == null) return values;
            _process.WaitForExit();
            throw Failed();
        }

        InvalidOperationException Failed() => new($"child 'bench runtime-steps' failed (exit {_process.ExitCode}): {_stderr.Result.Trim()}");

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill();
            _process.Dispose();
        }
    }

    /// <summary>One TorchSharp sampling step of one image with guidance (the checkpoint path of <c>terdit sample</c>) on <paramref name="threads"/> threads.</summary>
    static Action TorchStep(TerDiTModel model, int threads) => () =>
    {
        torch.set_num_threads(threads);
        var c = model.Config;
        using var scope = torch.NewDisposeScope();
        using var g = new torch.Generator(1, torch.CPU);
        GaussianDiffusion.Sample((x, t, y) => model.call(x, t, y), DiffusionProcess.For(c), [1, c.InChannels, c.InputSize, c.InputSize], torch.tensor(new long[] { 0 }),
            SamplerKind.Ddim, 1, Guidance, c.NullClass, g, torch.CPU);
    };

    /// <summary>Runs <c>terdit bench COMMAND ARGS</c> as a child process; returns the <c>key: value</c> lines it printed.</summary>
    static Dictionary<string, string> Child(string command, string[] args)
    {
        using var p = Process.Start(ChildStart(command, args))!;
        var err = p.StandardError.ReadToEndAsync();
        var lines = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.TrimEntries);
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"child 'bench {command} {string.Join(' ', args)}' failed: {err.Result.Trim()}");
        return lines.Select(l => l.Split(": ", 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]);
    }

    /// <summary>How to start <c>terdit bench COMMAND ARGS</c> (this program again) with its output redirected.</summary>
    static ProcessStartInfo ChildStart(string command, string[] args)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet") start.ArgumentList.Add(typeof(RuntimeBench).Assembly.Location);
        foreach (var a in (string[])["bench", command, .. args]) start.ArgumentList.Add(a);
        return start;
    }

    /// <summary>Peak memory and libtorch mapping of one sampling step in a child process (<c>bench runtime-memory</c>).</summary>
    static (long Kb, bool Libtorch) MemoryChild(string[] args)
    {
        var values = Child("runtime-memory", args);
        string Value(string key) => values.TryGetValue(key, out var v) ? v : throw new InvalidOperationException($"memory child printed no '{key}'");
        return (long.Parse(Value("vmhwm_kb"), CultureInfo.InvariantCulture), Value("libtorch_mapped") == "true");
    }

    static bool LibtorchMapped() => File.ReadLines("/proc/self/maps").Any(l => l.Contains("libtorch", StringComparison.Ordinal));

    /// <summary>The runtime child: no TorchSharp type in this method, so libtorch is not loaded (reported by the child).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    static void RuntimeMemoryChild(string model, GemmMode mode, int threads)
    {
        using var pipe = TerDiTPipeline.Load(model, new RuntimeOptions { Mode = mode, Threads = threads, MaxBatch = 1 });
        pipe.Sample([0], 1, 1, SamplerKind.Ddim, Guidance, 1);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void TorchMemoryChild(TerDiTConfig config, int threads)
    {
        torch.set_num_threads(threads);
        using var dense = new TerDiTModel(config with { Ternary = false }, 0);
        dense.eval();
        TorchStep(dense, threads)();
    }

    /// <summary>A field of /proc/self/status in kB (e.g. VmHWM: peak resident set).</summary>
    static long Status(string field)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }

    internal static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "unknown";
}
