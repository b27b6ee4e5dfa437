using System.Diagnostics;

namespace TerDiT.Cli.Bench;

/// <summary>The timing loops the benchmarks share: warm-up, timed runs in turn, the median.</summary>
static class BenchTiming
{
    /// <summary>
    /// Pause after TorchSharp work before timing the runtime: libtorch's OpenMP workers keep spinning for a
    /// while after a call and take the cores from whatever runs next.
    /// </summary>
    public const double OmpSettleSeconds = 0.5;

    /// <summary>Runs each of <paramref name="steps"/> at least <paramref name="runs"/> times and for <paramref name="seconds"/>.</summary>
    public static void WarmUp(Action[] steps, int runs, double seconds)
    {
        foreach (var step in steps)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < runs || Stopwatch.GetElapsedTime(start).TotalSeconds < seconds; i++) step();
        }
    }

    /// <summary>Seconds of <paramref name="repetitions"/> runs of each step, the steps taking turns.</summary>
    public static List<double>[] Time(Action[] steps, int repetitions)
    {
        var times = steps.Select(_ => new List<double>()).ToArray();
        for (int rep = 0; rep < repetitions; rep++)
            for (int i = 0; i < steps.Length; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                steps[i]();
                times[i].Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
        return times;
    }

    public static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
