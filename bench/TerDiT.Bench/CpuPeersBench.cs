using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using System.Text.Json;
using System.Text.Json.Nodes;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Onnx;

namespace TerDiT.Bench;

/// <summary>
/// Per sampling step, ONNX Runtime (fp32 and int8 graphs from <see cref="OnnxExport"/>) against the
/// runtime (Exact and A8) on the same random packed model, at 2·images rows. Each contender runs in
/// its own child process (so its peak resident set, VmHWM, is its own), loaded and warmed up once;
/// then rounds in which every contender in turn (the order rotating each round) runs timed steps
/// for <c>--turn-seconds</c> (at least one), after a pause that lets the previous one's idle threads stop spinning.
/// Medians and ranges over all rounds; the machine's drift falls on every contender alike.
/// </summary>
static class CpuPeersBench
{
    const double PauseSeconds = 0.3, RewarmSeconds = 0.5, WarmupSeconds = 3;

    public static int Run(string[] args)
    {
        var o = Options.Parse(args);
        Directory.CreateDirectory(o.Work);
        double load0 = LoadAverage();
        var rows = new JsonArray();
        var samples = new JsonArray();
        Console.WriteLine($"cpu: {CpuModel()}, our SIMD: {o.Simd}, threads: {o.Threads}, rounds: {o.Rounds}, turns of {o.TurnSeconds} s (at least one step)");
        foreach (var preset in o.Presets)
        {
            var config = Presets.Get(preset);
            string tdit = Path.Combine(o.Work, preset + ".tdit"), fp32 = Path.Combine(o.Work, preset + ".onnx"), int8 = Path.Combine(o.Work, preset + "-int8.onnx");
            if (!File.Exists(tdit)) RandomModel.Write(config, tdit, seed: 1);
            using (var file = TditFile.Open(tdit))
            {
                if (!File.Exists(fp32)) OnnxExport.Export(file, fp32, OnnxPrecision.Float32);
                if (!File.Exists(int8)) OnnxExport.Export(file, int8, OnnxPrecision.Int8);
            }
            foreach (int images in o.Images)
            {
                var children = new Dictionary<string, ChildProcess>();
                try
                {
                    foreach (var impl in Contenders.Names)   // started one after another: loading never overlaps another's warm-up
                        children[impl] = ChildProcess.Start(o, impl, tdit, fp32, int8, images);
                    var times = Contenders.Names.ToDictionary(i => i, _ => new List<double>());
                    var cpuTimes = Contenders.Names.ToDictionary(i => i, _ => new List<double>());
                    for (int round = 0; round < o.Rounds; round++)
                        for (int j = 0; j < Contenders.Names.Length; j++)
                        {
                            string impl = Contenders.Names[(j + round) % Contenders.Names.Length];
                            Thread.Sleep(TimeSpan.FromSeconds(PauseSeconds));
                            var (wall, cpu) = children[impl].Time(o.TurnSeconds);
                            times[impl].AddRange(wall);
                            cpuTimes[impl].AddRange(cpu);
                        }
                    foreach (var impl in Contenders.Names)
                    {
                        double rssMb = children[impl].Quit() / 1024.0;
                        var ms = times[impl].Select(t => t * 1e3).Order().ToArray();
                        var cpuMs = cpuTimes[impl].Select(t => t * 1e3).Order().ToArray();
                        double median = Median(ms);
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"{preset,-12} {images,2} images  {impl,-10} {median,9:F1} ms/step  [{ms[0]:F1} – {ms[^1]:F1}]  CPU {Median(cpuMs),9:F1} ms  peak RSS {rssMb,7:F0} MB"));
                        rows.Add(new JsonObject
                        {
                            ["model"] = preset, ["images"] = images, ["impl"] = impl,
                            ["ms_per_step"] = Math.Round(median, 2), ["peak_rss_mb"] = Math.Round(rssMb, 1),
                        });
                        samples.Add(new JsonObject
                        {
                            ["model"] = preset, ["images"] = images, ["impl"] = impl,
                            ["ms"] = new JsonArray(ms.Select(m => (JsonNode)Math.Round(m, 2)).ToArray()),
                            ["cpu_ms_median"] = Math.Round(Median(cpuMs), 2),
                        });
                    }
                    PrintRatios(preset, images, rows);
                }
                finally
                {
                    foreach (var c in children.Values) c.Dispose();
                }
            }
        }
        var result = new JsonObject
        {
            ["cpu"] = CpuModel(),
            ["simd"] = o.Simd == "avx2" || !Vector512.IsHardwareAccelerated ? "avx2" : "avx512",
            ["command"] = "dotnet run --project bench/TerDiT.Bench -c Release -- cpu-peers " + string.Join(" ", args),
            ["cpu_detail"] = CpuDetail(),
            ["ort_isa"] = "ONNX Runtime's MLAS picks its kernels from CPUID at load and has no run-time switch: on this machine it runs its widest (AVX-512, VNNI where present) whatever the simd field says",
            ["step"] = "one forward of the model at batch 2·images (classifier-free guidance), inputs fixed; each contender in its own process; "
                + "ms_per_step is the median wall time over all rounds, samples[].ms every step sorted, cpu_ms_median the process CPU time a step (less sensitive to other tenants; includes idle threads' spinning)",
            ["threads"] = o.Threads, ["rounds"] = o.Rounds, ["turn_seconds"] = o.TurnSeconds,
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
            ["load_average"] = new JsonArray(load0, LoadAverage()),
            ["rows"] = rows,
            ["samples"] = samples,
        };
        if (o.Out is not null)
        {
            string temp = o.Out + ".tmp";
            File.WriteAllText(temp, result.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
            File.Move(temp, o.Out, overwrite: true);
            Console.WriteLine($"wrote {o.Out}");
        }
        return 0;
    }

    static void PrintRatios(string preset, int images, JsonArray rows)
    {
        double Ms(string impl) => rows.Last(r => (string)r!["model"]! == preset && (int)r!["images"]! == images && (string)r!["impl"]! == impl)!["ms_per_step"]!.GetValue<double>();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{preset,-12} {images,2} images  exact / ORT fp32: {Ms("ort-fp32") / Ms("ours-exact"):F2}×   a8 / ORT int8: {Ms("ort-int8") / Ms("ours-a8"):F2}×"));
    }

    static double Median(double[] sorted) => sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;

    /// <summary>
    /// The child side: load the contender, warm up, print "ready"; then "run S" → steps for S seconds (at
    /// least one), "times" with their wall and CPU seconds; "quit" → "rss KB" (VmHWM).
    /// </summary>
    public static int Child(string[] args)
    {
        if (args.Length != 6) throw new ArgumentException("child IMPL TDIT ONNX_FP32 ONNX_INT8 IMAGES THREADS");
        using var contender = Contenders.Create(args[0], args[1], args[2], args[3], int.Parse(args[4], CultureInfo.InvariantCulture), int.Parse(args[5], CultureInfo.InvariantCulture));
        double last = 0;
        var watch = Stopwatch.StartNew();
        // Warm-up: WarmupSeconds, and two steps (one, for steps longer than that) so tiered compilation has settled.
        for (int i = 0; i < (last > WarmupSeconds ? 1 : 2) || watch.Elapsed.TotalSeconds < WarmupSeconds; i++) last = Timed(contender);
        Console.WriteLine("ready");
        for (string? line; (line = Console.ReadLine()) != null;)
        {
            if (line == "quit") break;
            double seconds = double.Parse(line["run ".Length..], CultureInfo.InvariantCulture);
            // Short steps re-warm for a moment (after idle seconds the cores run the first steps slower).
            for (watch.Restart(); last < RewarmSeconds && watch.Elapsed.TotalSeconds < RewarmSeconds;) contender.Step();
            var wall = new List<double>();
            var cpu = new List<double>();
            for (watch.Restart(); wall.Count == 0 || watch.Elapsed.TotalSeconds < seconds;)
            {
                var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                wall.Add(last = Timed(contender));
                cpu.Add((Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds);
            }
            Console.WriteLine("times " + string.Join(" ", wall.Concat(cpu).Select(t => t.ToString("R", CultureInfo.InvariantCulture))));
        }
        Console.WriteLine("rss " + PeakRssKb());
        return 0;
    }

    static double Timed(IContender c)
    {
        long t0 = Stopwatch.GetTimestamp();
        c.Step();
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    static long PeakRssKb() =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:"))["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);

    static string CpuModel() => Lscpu("Model name") ?? "unknown";

    static string CpuDetail() =>
        $"family {Lscpu("CPU family")}, model {Lscpu("Model")}, {Environment.ProcessorCount} CPUs; flags: "
        + string.Join(" ", (Lscpu("Flags") ?? "").Split(' ').Where(f => f is "avx2" or "fma" or "avx512f" or "avx512bw" or "avx512_vnni" or "avx_vnni"));

    static string? Lscpu(string key)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("lscpu") { RedirectStandardOutput = true, Environment = { ["LC_ALL"] = "C" } })!;
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return output.Split('\n').Select(l => l.Split(':', 2)).FirstOrDefault(kv => kv.Length == 2 && kv[0].Trim() == key)?[1].Trim();
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    static double LoadAverage() => double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);

    /// <summary>A contender's process, driven line by line.</summary>
    sealed class ChildProcess : IDisposable
    {
        readonly Process _p;

        ChildProcess(Process p) => _p = p;

        public static ChildProcess Start(Options o, string impl, string tdit, string fp32, string int8, int images)
        {
            string self = Environment.ProcessPath!;
            var info = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(CpuPeersBench).Assembly.Location);
            foreach (var a in new[] { "child", impl, tdit, fp32, int8, images.ToString(CultureInfo.InvariantCulture), o.Threads.ToString(CultureInfo.InvariantCulture) })
                info.ArgumentList.Add(a);
            // Our AVX2 path on an AVX-512 machine: the JIT then reports Vector512 unaccelerated (ONNX Runtime has no such switch).
            if (o.Simd == "avx2" && impl.StartsWith("ours")) info.Environment["DOTNET_EnableAVX512"] = "0";
            var child = new ChildProcess(Process.Start(info)!);
            child.Expect("ready");
            return child;
        }

        string Expect(string prefix)
        {
            string line = _p.StandardOutput.ReadLine() ?? throw new InvalidOperationException($"contender process exited ({_p.Id})");
            return line.StartsWith(prefix) ? line[prefix.Length..].Trim() : throw new InvalidOperationException($"contender said '{line}', expected '{prefix}'");
        }

        /// <summary>Wall seconds and process CPU seconds of each step of a turn: steps for <paramref name="seconds"/>, at least one.</summary>
        public (double[] Wall, double[] Cpu) Time(double seconds)
        {
            _p.StandardInput.WriteLine(string.Create(CultureInfo.InvariantCulture, $"run {seconds}"));
            var t = Expect("times").Split(' ').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            return (t[..(t.Length / 2)], t[(t.Length / 2)..]);
        }

        public long Quit()
        {
            _p.StandardInput.WriteLine("quit");
            long kb = long.Parse(Expect("rss"), CultureInfo.InvariantCulture);
            _p.WaitForExit();
            return kb;
        }

        public void Dispose()
        {
            if (!_p.HasExited) _p.Kill();
            _p.Dispose();
        }
    }

    sealed record Options(string[] Presets, int[] Images, int Threads, int Rounds, double TurnSeconds, string Simd, string Work, string? Out)
    {
        public static Options Parse(string[] args)
        {
            var o = new Options(["TerDiT-S", "TerDiT-600M"], [1, 4, 10], 2, 3, 2.0, "native", Path.Combine(Path.GetTempPath(), "terdit-cpu-peers"), null);
            for (int i = 0; i < args.Length; i += 2)
            {
                if (i + 1 >= args.Length) throw new ArgumentException($"{args[i]} needs a value");
                string v = args[i + 1];
                int Int() => int.TryParse(v, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : throw new ArgumentException($"{args[i]} must be a positive integer, not '{v}'");
                o = args[i] switch
                {
                    "--presets" => o with { Presets = v.Split(',') },
                    "--images" => o with { Images = v.Split(',').Select(s => int.TryParse(s, out int n) && n > 0 ? n : throw new ArgumentException($"--images: '{s}' is not a positive integer")).ToArray() },
                    "--threads" => o with { Threads = Int() },
                    "--rounds" => o with { Rounds = Int() },
                    "--turn-seconds" => o with { TurnSeconds = double.TryParse(v, CultureInfo.InvariantCulture, out double t) && t >= 0 ? t : throw new ArgumentException($"--turn-seconds must be ≥ 0, not '{v}'") },
                    "--simd" => o with { Simd = v is "native" or "avx2" ? v : throw new ArgumentException($"--simd is native or avx2, not '{v}'") },
                    "--work" => o with { Work = v },
                    "--out" => o with { Out = v },
                    _ => throw new ArgumentException($"unknown option '{args[i]}'"),
                };
            }
            foreach (var p in o.Presets) TerDiT.Runtime.Config.Presets.Get(p);  // unknown names fail before any work
            return o;
        }
    }
}
