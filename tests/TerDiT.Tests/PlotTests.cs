using System.Globalization;
using System.Text.Json;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TerDiT.Testing;
using TerDiT.Training;
using Xunit;

namespace TerDiT.Tests;

public class PlotTests
{
    static void WriteMetrics(string path, params double[] losses) =>
        File.WriteAllLines(path, losses.Select((l, i) => JsonSerializer.Serialize(new StepMetrics(10 * (i + 1), 0, l, l, 1, 0.1, 40))));

    [Fact]
    public void PlotDrawsTwoSmoothedCurvesAtTheRequestedSize()
    {
        using var dir = new TempDirectory("cli-plot");
        var a = Path.Combine(dir, "runA", "metrics.jsonl");
        var b = Path.Combine(dir, "b.jsonl");
        Directory.CreateDirectory(Path.GetDirectoryName(a)!);
        WriteMetrics(a, 1.0, 0.8, 0.5, 0.4, 0.3);
        WriteMetrics(b, 1.2, 0.9, 0.7);
        var png = Path.Combine(dir, "out", "loss.png");
        var r = Terdit.Run("plot", "--metrics", a, b + "=ternary", "--out", png, "--smooth", "3", "--width", "640", "--height", "400");
        Assert.True(r.Code == 0, r.Err);
        // Labels (default: the run directory), point counts and the trailing 3-point average of the last points.
        Assert.Contains("runA: 5 points, steps 10..50, last loss 0.3, smoothed 0.4", r.Out);
        Assert.Contains("ternary: 3 points, steps 10..30, last loss 0.7, smoothed " + (2.8 / 3).ToString("G6", CultureInfo.InvariantCulture), r.Out);

        using var image = Image.Load<Rgba32>(png);
        Assert.Equal((640, 400), (image.Width, image.Height));
        // Two differently coloured curves: count strongly coloured (non-grey) pixels.
        int coloured = 0;
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                var p = image[x, y];
                if (Math.Max(p.R, Math.Max(p.G, p.B)) - Math.Min(p.R, Math.Min(p.G, p.B)) > 80) coloured++;
            }
        Assert.True(coloured > 500, $"only {coloured} coloured pixels");
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(png)!, "*.tmp"));
    }

    [Fact]
    public void PlotFailsClearlyOnMissingOrGarbledMetrics()
    {
        using var dir = new TempDirectory("cli-plot-bad");
        var good = Path.Combine(dir, "good.jsonl");
        WriteMetrics(good, 1.0, 0.9);
        var png = Path.Combine(dir, "loss.png");
        Terdit.AssertUsageError(Terdit.Run("plot", "--metrics", good, Path.Combine(dir, "missing.jsonl"), "--out", png), "missing.jsonl not found");

        var garbled = Path.Combine(dir, "garbled.jsonl");
        File.WriteAllText(garbled, File.ReadAllText(good) + "{\"step\": 30, \"loss\n");
        Terdit.AssertUsageError(Terdit.Run("plot", "--metrics", garbled, "--out", png), "garbled.jsonl:3: not a JSON metrics line");

        var noLoss = Path.Combine(dir, "noloss.jsonl");
        File.WriteAllText(noLoss, "{\"step\": 1, \"mse\": 0.5}\n");
        Terdit.AssertUsageError(Terdit.Run("plot", "--metrics", noLoss, "--out", png), "noloss.jsonl:1: expected a JSON object with numeric \"step\" and \"loss\"");

        var empty = Path.Combine(dir, "empty.jsonl");
        File.WriteAllText(empty, "\n");
        Terdit.AssertUsageError(Terdit.Run("plot", "--metrics", empty, "--out", png), "no metrics lines");

        Terdit.AssertUsageError(Terdit.Run("plot", "--metrics", good, "--out", png, "--smooth", "0"), "--smooth must be positive");
        Assert.False(File.Exists(png));
    }
}
