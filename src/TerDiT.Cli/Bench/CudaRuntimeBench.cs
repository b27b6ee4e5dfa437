using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using TerDiT.Cli.Commands;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Cuda;
using TerDiT.Runtime.Format;
using TerDiT.Runtime;

namespace TerDiT.Cli.Bench;

/// <summary>
/// <c>terdit bench runtime --device cuda</c>: the CUDA backend's time per sampling step — one forward of 2·batch
/// rows (classifier-free guidance), host copies of x and the output included — for the shipped TerDiT-S and random
/// 600M / 4.2B models (<see cref="RandomPackedModel"/>, kept in <c>--model-dir</c> for the PyTorch baselines of
/// <c>bench/torch_runtime.py</c>, which adds its rows to the same JSON), in exact and a8 mode, with device memory;
/// then the ternary GEMM alone at the 4.2B shapes. No TorchSharp type is reached: the process never maps libtorch
/// (checked and recorded).
/// </summary>
static class CudaRuntimeBench
{
    public sealed record Settings(string[] Presets, int[] Batches, int[] GemmRows, int Warmup, int Repetitions, string Out, string? ModelDir);

    /// <summary>The 4.2B ternary GEMMs, K → N: attention, SwiGLU in and out, adaLN.</summary>
    static readonly (int K, int N)[] GemmShapes = [(3072, 3072), (3072, 8192), (8192, 3072), (1024, 18432)];

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Run(TextWriter stdout, Settings s)
    {
        string dir = s.ModelDir ?? Directory.CreateTempSubdirectory("terdit-bench-cuda").FullName;
        Directory.CreateDirectory(dir);
        using var device = CudaDevice.Open();
        stdout.WriteLine($"GPU: {device.Name} (sm_{device.ComputeCapability}, {device.Multiprocessors} SMs, {device.TotalMemory / (double)(1 << 30):F1} GiB), driver {device.DriverVersion}, NVRTC {KernelCompiler.NvrtcVersion()}");
        var rows = new JsonArray();
        var models = new JsonObject();
        JsonObject? memoryBar = null;
        try
        {
            foreach (var preset in s.Presets)
            {
                string path = ModelPath(preset, dir, stdout);
                models[preset] = path;
                foreach (var mode in new[] { GemmMode.Exact, GemmMode.A8 })
                {
                    long freeBefore = device.FreeMemory();
                    device.ResetPeak();
                    var load = Stopwatch.StartNew();
                    using var model = CudaModel.Load(path, new CudaOptions { Mode = mode });
                    double loadS = load.Elapsed.TotalSeconds;
                    long freeLoaded = device.FreeMemory();
                    foreach (int batch in s.Batches)
                    {
                        double ms = TimeSteps(model, batch, s.Warmup, s.Repetitions);
                        long freeNow = device.FreeMemory();
                        var row = new JsonObject
                        {
                            ["model"] = preset, ["batch"] = batch, ["impl"] = mode == GemmMode.A8 ? "ours-a8" : "ours-exact",
                            ["ms_per_step"] = Math.Round(ms, 3), ["peak_device_gib"] = Math.Round(device.PeakBytes / (double)(1 << 30), 4),
                            ["process_device_gib"] = Math.Round((freeBefore - freeNow) / (double)(1 << 30), 4),
                            ["weights_gib"] = Math.Round(model.WeightBytes / (double)(1 << 30), 4), ["load_s"] = Math.Round(loadS, 2),
                        };
                        rows.Add(row);
                        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"{preset} batch {batch} {row["impl"]}: {ms:F2} ms/step, allocator peak {device.PeakBytes / (double)(1 << 30):F3} GiB, cuMemGetInfo delta {(freeBefore - freeNow) / (double)(1 << 30):F3} GiB"));
                        if (preset == "TerDiT-4.2B" && batch == 1 && memoryBar == null)
                            memoryBar = new JsonObject
                            {
                                ["mode"] = mode.ToString().ToLowerInvariant(),
                                ["free_before_load_gib"] = Gib(freeBefore), ["free_after_load_gib"] = Gib(freeLoaded), ["free_after_step_gib"] = Gib(freeNow),
                                ["cumemgetinfo_delta_gib"] = Gib(freeBefore - freeNow), ["allocator_peak_gib"] = Gib(device.PeakBytes),
                                ["weights_gib"] = Gib(model.WeightBytes), ["nvidia_smi_process_mib"] = NvidiaSmiProcessMib(),
                                ["bar_gib"] = 1.3, ["bar_met"] = (freeBefore - freeNow) <= 1.3 * (1L << 30),
                            };
                    }
                }
            }
            var gemm = GemmRates(device, s.GemmRows, stdout);
            bool libtorch = File.ReadLines("/proc/self/maps").Any(l => l.Contains("libtorch", StringComparison.Ordinal));
            var doc = new JsonObject
            {
                ["gpu"] = device.Name,
                ["command"] = "terdit " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
                ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                ["driver_version"] = device.DriverVersion, ["nvrtc"] = KernelCompiler.NvrtcVersion().ToString(),
                ["method"] = "ms_per_step: one forward of 2·batch rows (classifier-free guidance) through CudaModel.Forward, host copies of x and the "
                    + "output included, replayed as a CUDA graph after warm-up; median of --repetitions. peak_device_gib: this backend's allocator "
                    + "peak (weights + activations); process_device_gib: cuMemGetInfo free before loading minus free after the step (excludes the "
                    + "CUDA context itself; nvidia_smi_process_mib in 'memory' includes it). Models: the shipped TerDiT-S; 600M and 4.2B with random "
                    + "weights (RandomPackedModel). Torch rows: bench/torch_runtime.py, same call, same .tdit files.",
                ["models"] = models,
                ["rows"] = rows,
                ["gemm"] = gemm,
                ["memory_4_2b_batch_1"] = memoryBar,
                ["libtorch_mapped"] = libtorch,
            };
            AtomicFile.WriteAllText(s.Out, doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            stdout.WriteLine($"libtorch mapped: {libtorch.ToString().ToLowerInvariant()}; results: {s.Out}");
        }
        finally
        {
            if (s.ModelDir == null) Directory.Delete(dir, recursive: true);
        }
    }

    static double Gib(long bytes) => Math.Round(bytes / (double)(1 << 30), 4);

    /// <summary>The shipped model for TerDiT-S, else a random packed model of the preset in <paramref name="dir"/> (written once).</summary>
    static string ModelPath(string preset, string dir, TextWriter stdout)
    {
        if (preset.Equals("TerDiT-S", StringComparison.OrdinalIgnoreCase)) return ShippedModel.Find();
        string path = Path.Combine(dir, $"{preset}.tdit");
        if (!File.Exists(path))
        {
            var clock = Stopwatch.StartNew();
            RandomPackedModel.Write(Presets.Get(preset), path, seed: 1);
            stdout.WriteLine($"wrote {path} ({new FileInfo(path).Length / (double)(1 << 20):F0} MiB) in {clock.Elapsed.TotalSeconds:F1} s");
        }
        return path;
    }

    /// <summary>Median milliseconds of one forward of 2·batch images (eager first, then graph replays).</summary>
    static double TimeSteps(CudaModel model, int batch, int warmup, int repetitions)
    {
        var c = model.Config;
        int n = 2 * batch;
        var rng = new Random(batch);
        var x = new float[n * model.InputLength];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var t = Enumerable.Repeat(500, n).ToArray();
        var y = Enumerable.Range(0, n).Select(i => i < batch ? i % c.NumClasses : c.NullClass).ToArray();
        var output = new float[n * model.OutputLength];
        for (int i = 0; i < warmup + 2; i++) model.Forward(x, t, y, output);
        var times = new List<double>();
        for (int i = 0; i < repetitions; i++)
        {
            long start = Stopwatch.GetTimestamp();
            model.Forward(x, t, y, output);
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        if (output.Any(v => !float.IsFinite(v))) throw new InvalidOperationException($"{c.Name} batch {batch}: non-finite output");
        return BenchTiming.Median(times);
    }

    /// <summary>The ternary GEMM alone at the 4.2B shapes: TFLOP/s (2·M·K·N / time) of each kernel tile, device-timed.</summary>
    static JsonArray GemmRates(CudaDevice device, int[] rowsList, TextWriter stdout)
    {
        var result = new JsonArray();
        if (rowsList.Length == 0) return result;
        using var ops = new CudaOps(device);
        using var timer = new CudaTimer(device);
        foreach (var (k, n) in GemmShapes)
        {
            var w = RandomMatrix(n, k);
            using var dw = new DeviceTernaryMatrix(ops, [w]);
            foreach (int m in rowsList)
            {
                var x = new float[(long)m * k];
                var rng = new Random(m);
                for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
                using var dx = DeviceBuffer<float>.From(device, x);
                using var y = new DeviceBuffer<float>(device, (long)m * n);
                foreach (int terms in new[] { 1, 3 })
                {
                    using var planes = new ActivationPlanes(device, terms, m, k);
                    ops.QuantizeRows(dx.Pointer, m, k, k, planes);
                    foreach (var kernel in new[] { GemmKernel.LargeTile, GemmKernel.SmallTile })
                    {
                        const int Launches = 20;
                        void Launch() => ops.Gemm(planes, m, dw, GemmEpilogue.Store, y.Pointer, n, kernel: kernel);
                        Launch();
                        var ms = Enumerable.Range(0, 5).Select(_ => timer.Milliseconds(() => { for (int i = 0; i < Launches; i++) Launch(); }) / Launches).ToList();
                        double t = BenchTiming.Median(ms), tflops = 2.0 * m * k * n / (t * 1e-3) / 1e12;
                        bool chosen = ops.ChooseTile(terms, m, dw.PaddedRows) == (kernel == GemmKernel.LargeTile);
                        result.Add(new JsonObject
                        {
                            ["m"] = m, ["k"] = k, ["n"] = n, ["impl"] = terms == 1 ? "ours-a8" : "ours-exact",
                            ["tile"] = kernel == GemmKernel.LargeTile ? "large" : "small", ["auto_choice"] = chosen,
                            ["ms"] = Math.Round(t, 4), ["tflops"] = Math.Round(tflops, 1),
                        });
                        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"gemm M={m} {k}→{n} {(terms == 1 ? "a8" : "exact")} {kernel}{(chosen ? " (auto)" : "")}: {t:F3} ms, {tflops:F0} TFLOP/s"));
                    }
                }
            }
        }
        return result;
    }

    static PackedTernaryMatrix RandomMatrix(int rows, int cols)
    {
        var bytes = new byte[TernaryPacking.PackedBytes(rows, cols)];
        new Random(rows ^ cols).NextBytes(bytes);
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)(bytes[i] & ~(bytes[i] >> 1 & 0x55)); // clear the high bit of any code 3
        return new PackedTernaryMatrix(rows, cols, 0.01f, bytes);
    }

    /// <summary>This process's device memory as nvidia-smi reports it (context included), or null without nvidia-smi.</summary>
    static long? NvidiaSmiProcessMib()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("nvidia-smi", "--query-compute-apps=pid,used_memory --format=csv,noheader,nounits")
                { RedirectStandardOutput = true, RedirectStandardError = true });
            if (p == null) return null;
            string text = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var parts = line.Split(',', StringSplitOptions.TrimEntries);
                if (parts.Length == 2 && int.TryParse(parts[0], out int pid) && pid == Environment.ProcessId && long.TryParse(parts[1], out long mib)) return mib;
            }
            return null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }
}
