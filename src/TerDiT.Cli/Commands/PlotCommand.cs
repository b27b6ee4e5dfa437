using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using TerDiT.Runtime;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit plot</c>: training loss curves (step vs loss) of one or more RUN_DIR/metrics.jsonl files in one PNG
/// (ScottPlot), each curve the trailing moving average over <c>--smooth</c> logged points.
/// </summary>
static class PlotCommand
{
    public static Command Create()
    {
        var metrics = new Option<string[]>("--metrics")
        {
            Description = "metrics.jsonl files, each optionally FILE=label (default label: the run directory's name)",
            Required = true, AllowMultipleArgumentsPerToken = true,
        };
        var output = new Option<string>("--out") { Description = "PNG file to write", Required = true };
        var smooth = new Option<int>("--smooth") { Description = "moving average over this many logged points (1: raw)", DefaultValueFactory = _ => 1 };
        var width = new Option<int>("--width") { Description = "image width in pixels", DefaultValueFactory = _ => 900 };
        var height = new Option<int>("--height") { Description = "image height in pixels", DefaultValueFactory = _ => 540 };

        var command = new Command("plot", "Plot training loss curves from metrics.jsonl files into a PNG.");
        foreach (var o in new Option[] { metrics, output, smooth, width, height }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            int k = p.GetValue(smooth), w = p.GetValue(width), h = p.GetValue(height);
            if (k <= 0) throw new ArgumentException($"--smooth must be positive, not {k}");
            if (w is < 100 or > 10000 || h is < 100 or > 10000) throw new ArgumentException($"--width and --height must lie in 100..10000, not {w}×{h}");
            var curves = p.GetValue(metrics)!.Select(ParseSpec).Select(s => (s.Label, Points: ReadLoss(s.Path))).ToList();
            var outPath = p.GetValue(output)!;
            var png = Render(curves, k, w, h);
            AtomicFile.WriteAllBytes(outPath, png);
            foreach (var (label, points) in curves)
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{label}: {points.Count} points, steps {points[0].Step}..{points[^1].Step}, last loss {points[^1].Loss:G6}, smoothed {MovingAverage(points.Select(q => q.Loss).ToArray(), k)[^1]:G6}"));
            stdout.WriteLine($"{outPath}: {w}×{h}");
            return 0;
        }));
        return command;
    }

    /// <summary>"FILE" or "FILE=label"; the default label is the file's directory name for metrics.jsonl, else its name.</summary>
    static (string Path, string Label) ParseSpec(string spec)
    {
        int eq = spec.LastIndexOf('=');
        if (!File.Exists(spec) && eq > 0) return (spec[..eq], spec[(eq + 1)..]);
        var full = Path.GetFullPath(spec);
        var label = Path.GetFileName(full) == "metrics.jsonl" ? Path.GetFileName(Path.GetDirectoryName(full)) ?? spec : Path.GetFileNameWithoutExtension(full);
        return (spec, label);
    }

    /// <summary>(step, loss) of every non-empty line of a metrics file, in file order.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">A line that is not a JSON object with numeric "step" and finite "loss", or no lines.</exception>
    public static List<(long Step, double Loss)> ReadLoss(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"metrics file {path} not found", path);
        var points = new List<(long, double)>();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("step", out var step) || !root.TryGetProperty("loss", out var loss)
                    || step.ValueKind != JsonValueKind.Number || loss.ValueKind != JsonValueKind.Number)
                    throw new InvalidDataException($"{path}:{lineNumber}: expected a JSON object with numeric \"step\" and \"loss\"");
                double value = loss.GetDouble();
                if (!double.IsFinite(value)) throw new InvalidDataException($"{path}:{lineNumber}: loss {value} is not finite");
                points.Add((step.GetInt64(), value));
            }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{lineNumber}: not a JSON metrics line ({e.Message})", e); }
        }
        if (points.Count == 0) throw new InvalidDataException($"{path}: no metrics lines");
        return points;
    }

    /// <summary>Trailing moving average: output i = mean of values [max(0, i−k+1), i].</summary>
    public static double[] MovingAverage(IReadOnlyList<double> values, int k)
    {
        var result = new double[values.Count];
        double sum = 0;
        for (int i = 0; i < values.Count; i++)
        {
            sum += values[i];
            if (i >= k) sum -= values[i - k];
            result[i] = sum / Math.Min(i + 1, k);
        }
        return result;
    }

    static byte[] Render(List<(string Label, List<(long Step, double Loss)> Points)> curves, int k, int width, int height)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (label, points) in curves)
        {
            var xs = points.Select(q => (double)q.Step).ToArray();
            var ys = MovingAverage(points.Select(q => q.Loss).ToArray(), k);
            var line = plot.Add.ScatterLine(xs, ys);
            line.LegendText = label;
            line.LineWidth = 1.5f;
        }
        plot.XLabel("step");
        plot.YLabel(k > 1 ? $"loss (moving average of {k})" : "loss");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        return plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
    }
}
