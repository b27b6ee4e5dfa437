using System.Diagnostics;
using System.Globalization;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Cli.Bench;

/// <summary>One shape of <see cref="GemmBench"/>: throughput counted as 2·M·K·N operations a second.</summary>
/// <param name="TorchGops">TorchSharp fp32 <c>linear</c> on dense weights (the baseline).</param>
/// <param name="ExactGops">TernaryGemm, <see cref="GemmMode.Exact"/>.</param>
/// <param name="A8Gops">TernaryGemm, <see cref="GemmMode.A8"/>.</param>
/// <param name="PeakGflops">This CPU's assumed fp32 peak (see <see cref="GemmBench.PeakGflops"/>).</param>
public sealed record GemmBenchResult(string Name, int M, int K, int N, double TorchGops, double ExactGops, double A8Gops, double PeakGflops)
{
    /// <summary>Exact throughput over the baseline's.</summary>
    public double ExactSpeedup => ExactGops / TorchGops;

    /// <summary>A8 throughput over the baseline's.</summary>
    public double A8Speedup => A8Gops / TorchGops;

    /// <summary>Baseline throughput as a fraction of <see cref="PeakGflops"/>.</summary>
    public double TorchPeakFraction => TorchGops / PeakGflops;

    /// <summary>Exact throughput (dense-equivalent operations) as a fraction of <see cref="PeakGflops"/>.</summary>
    public double ExactPeakFraction => ExactGops / PeakGflops;

    /// <summary>A8 throughput (dense-equivalent operations) as a fraction of <see cref="PeakGflops"/>.</summary>
    public double A8PeakFraction => A8Gops / PeakGflops;

    /// <summary>One line for a terminal.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name,-18} M={M} K={K} N={N}: torch {TorchGops,6:F1} GOP/s ({TorchPeakFraction:P0} of peak) | exact {ExactGops,6:F1} ({ExactSpeedup:F2}×, {ExactPeakFraction:P0}) | a8 {A8Gops,6:F1} ({A8Speedup:F2}×, {A8PeakFraction:P0})");
}

/// <summary>
/// Ternary GEMM against TorchSharp dense fp32 on a preset's linear shapes (by default TerDiT-600M's, at
/// M = 512 tokens: 2·256 with CFG). Per shape the methods run one after the other (see
/// <see cref="RunShape"/>), each warmed up first; each figure is the median of the repetitions.
/// </summary>
public static class GemmBench
{
    /// <summary>The preset the benchmark measures by default.</summary>
    public const string DefaultPreset = "TerDiT-600M";

    /// <summary>
    /// A preset's ternary linear shapes (name, K, N): D → D (wq, wk, wv, wo), D → F (w1, w3), F → D (w2)
    /// and the adaLN cond → 6D.
    /// </summary>
    public static IReadOnlyList<(string Name, int K, int N)> Shapes(TerDiTConfig config) =>
    [
        ("attn wq/wk/wv/wo", config.HiddenSize, config.HiddenSize),
        ("ffn w1/w3", config.HiddenSize, config.FfnHidden),
        ("ffn w2", config.FfnHidden, config.HiddenSize),
        ("adaLN", config.CondDim, 6 * config.HiddenSize),
    ];

    /// <summary>
    /// Assumed fp32 peak in GFLOP/s: cores × 2 FMA units × 16 lanes × 2 flops × <see cref="MeasureClockGhz"/>.
    /// On AMD Zen 4 a 512-bit FMA runs as two 256-bit halves, so its sustainable peak is half this figure.
    /// </summary>
    public static double PeakGflops(int cores) => cores * 2 * 16 * 2 * Clock.Value;

    static readonly Lazy<double> Clock = new(MeasureClockGhz);

    /// <summary>
    /// The running core clock in GHz, measured: a chain of dependent 64-bit multiplies (3 cycles each
    /// on x86) over 50 M steps, timed in process CPU time so other load on the machine does not count,
    /// best of 5 (/proc/cpuinfo's "cpu MHz" shows the nominal clock on virtual machines, not the boost
    /// clock the code runs at).
    /// </summary>
    public static double MeasureClockGhz()
    {
        const long steps = 50_000_000;
        double best = double.MaxValue;
        using var process = Process.GetCurrentProcess();
        for (int r = 0; r < 5; r++)
        {
            process.Refresh();
            var start = process.TotalProcessorTime;
            Chain(steps, r + 3);
            process.Refresh();
            best = Math.Min(best, (process.TotalProcessorTime - start).TotalSeconds);
        }
        return steps * 3 / best / 1e9;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining |
        System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    static long Chain(long steps, long a)
    {
        long m = steps | 3;
        for (long i = 0; i < steps; i++) a *= m;
        return a;
    }

    /// <summary>Runs every shape of <see cref="Shapes"/>(<paramref name="config"/>); <paramref name="log"/> gets each result as it is measured.</summary>
    public static IReadOnlyList<GemmBenchResult> Run(TerDiTConfig config, int m = 512, int threads = 2, int warmup = 2, int repetitions = 7, Action<string>? log = null)
    {
        if (m <= 0 || threads <= 0 || warmup < 0 || repetitions <= 0)
            throw new ArgumentException("m, threads and repetitions must be positive, warmup non-negative");
        torch.set_num_threads(threads);
        var results = new List<GemmBenchResult>();
        foreach (var (name, k, n) in Shapes(config))
        {
            var r = RunShape(name, m, k, n, threads, warmup, repetitions);
            log?.Invoke(r.ToString());
            results.Add(r);
        }
        return results;
    }

    const double WarmupSeconds = 1;

    /// <summary>Measures one shape with random trits (one third each of -1, 0, 1) and N(0, 1) activations.</summary>
    public static GemmBenchResult RunShape(string name, int m, int k, int n, int threads, int warmup, int repetitions)
    {
        var rng = new Random(1234);
        var trits = new sbyte[(long)n * k];
        for (long i = 0; i < trits.Length; i++) trits[i] = (sbyte)rng.Next(-1, 2);
        const float alpha = 0.02f;
        var packed = PackedTernaryMatrix.FromTrits(trits, n, k, alpha);
        var x = new float[(long)m * k];
        for (long i = 0; i < x.Length; i++) x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var y = new float[(long)m * n];
        var options = new TernaryGemmOptions(threads);

        using var scope = torch.NewDisposeScope();
        var dense = new float[trits.Length];
        for (long i = 0; i < dense.Length; i++) dense[i] = alpha * trits[i];
        var tw = torch.tensor(dense, [n, k]);   // (N, K)
        var tx = torch.tensor(x, [m, k]);       // (M, K)

        var methods = new Action[]
        {
            () => { using var ty = torch.nn.functional.linear(tx, tw); },  // (M, N)
            () => TernaryGemm.Multiply(x, m, packed, y, default, GemmMode.Exact, options),
            () => TernaryGemm.Multiply(x, m, packed, y, default, GemmMode.A8, options),
        };
        // One method after the other, not interleaved: libtorch's OpenMP workers keep spinning for a while
        // after a call and took the cores from a runtime call right after it (the smallest shape's a8 GEMM
        // measured 378 GOP/s interleaved, 690 alone), so the runtime starts after a pause.
        var times = new List<double>[methods.Length];
        for (int i = 0; i < methods.Length; i++)
        {
            if (i > 0) Thread.Sleep(TimeSpan.FromSeconds(BenchTiming.OmpSettleSeconds));
            BenchTiming.WarmUp([methods[i]], warmup, WarmupSeconds);
            times[i] = BenchTiming.Time([methods[i]], repetitions)[0];
        }
        double ops = 2.0 * m * k * n;
        double Gops(List<double> t) => ops / BenchTiming.Median(t) / 1e9;
        return new GemmBenchResult(name, m, k, n, Gops(times[0]), Gops(times[1]), Gops(times[2]), PeakGflops(threads));
    }
}
