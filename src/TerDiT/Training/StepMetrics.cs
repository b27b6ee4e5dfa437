using System.Text.Json;
using System.Text.Json.Serialization;
using TerDiT.Runtime;

namespace TerDiT.Training;

/// <summary>
/// What one optimizer step (or, in the metrics file, the mean over the steps since the previous line) measured.
/// <see cref="Loss"/> = MSE(ε) + VLB term, batch mean; <see cref="GradNorm"/>: global L2 norm before clipping.
/// </summary>
public sealed record StepMetrics(
    [property: JsonPropertyName("step")] long Step,
    [property: JsonPropertyName("epoch")] long Epoch,
    [property: JsonPropertyName("loss")] double Loss,
    [property: JsonPropertyName("mse")] double Mse,
    [property: JsonPropertyName("grad_norm")] double GradNorm,
    [property: JsonPropertyName("step_time_s")] double StepSeconds,
    [property: JsonPropertyName("images_per_s")] double ImagesPerSecond);

/// <summary>
/// RUN_DIR/metrics.jsonl: one JSON object (<see cref="StepMetrics"/>) per line, each the mean over the
/// steps since the previous line, appended and flushed as training goes.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    readonly StreamWriter writer;
    readonly List<StepMetrics> window = [];

    /// <summary>Opens <paramref name="path"/> for appending after dropping lines with a step above <paramref name="keepUpToStep"/> (left by a run killed after its last checkpoint).</summary>
    public MetricsLog(string path, long keepUpToStep)
    {
        Path = path;
        if (File.Exists(path))
        {
            var kept = File.ReadAllLines(path).Where(l => l.Length > 0 && StepOf(l) <= keepUpToStep).ToArray();
            AtomicFile.WriteAllText(path, string.Concat(kept.Select(line => line + "\n")));
        }
        writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    public string Path { get; }

    /// <summary>Adds a step to the current window.</summary>
    public void Add(StepMetrics m) => window.Add(m);

    /// <summary>Writes the window's mean as one line (step and epoch of its last step) and starts a new window.</summary>
    public void Flush()
    {
        if (window.Count == 0) return;
        var last = window[^1];
        double seconds = window.Sum(m => m.StepSeconds);
        var mean = new StepMetrics(last.Step, last.Epoch, window.Average(m => m.Loss), window.Average(m => m.Mse),
            window.Average(m => m.GradNorm), seconds / window.Count, window.Sum(m => m.ImagesPerSecond * m.StepSeconds) / seconds);
        writer.WriteLine(JsonSerializer.Serialize(mean));
        window.Clear();
    }

    /// <summary>The metrics lines of a file.</summary>
    public static List<StepMetrics> Read(string path) =>
        File.ReadAllLines(path).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<StepMetrics>(l)!).ToList();

    static long StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.GetProperty("step").GetInt64();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException) { return long.MaxValue; }
    }

    public void Dispose() => writer.Dispose();
}
