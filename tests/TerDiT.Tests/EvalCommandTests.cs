using System.Text.Json.Nodes;
using SixLabors.ImageSharp;
using TerDiT.Cli;
using TerDiT.Runtime.Imaging;
using TerDiT.Testing;
using Xunit;

namespace TerDiT.Tests;

/// <summary>Runs <c>terdit</c> in-process with captured output (shared by the eval, ptq and plot command tests).</summary>
static partial class Terdit
{


    /// <summary>A 2-step TerDiT-Tiny run on 32 fixture images in <paramref name="runDir"/>.</summary>
    public static void TrainTiny(string runDir, params string[] extra)
    {
        var r = Run(["train", "--preset", "TerDiT-Tiny", "--data-dir", Fixtures.FashionMnistDirectory, "--limit", "32", "--steps", "2",
            "--batch", "4", "--out", runDir, "--log-every", "1", "--ema-decay", "0.5", "--threads", "1", .. extra]);
        Assert.True(r.Code == 0, r.Err);
    }
}

public class EvalCommandTests
{
    [Fact]
    public void EvalWritesFiniteMetricsJsonAndGridAndIsReproducible()
    {
        using var dir = new TempDirectory("cli-eval");
        var run = Path.Combine(dir, "run");
        Terdit.TrainTiny(run);
        string[] Args(string json, string? grid, string sampler = "ddim") =>
        [
            "eval", "--checkpoint", run, "--samples", "20", "--steps", "2", "--batch", "8", "--seed", "7", "--sampler", sampler,
            "--reference-dir", Fixtures.FashionMnistDirectory, "--out", json, "--threads", "1", .. grid is null ? [] : new[] { "--grid", grid },
        ];
        var jsonPath = Path.Combine(dir, "out", "results.json");
        var gridPath = Path.Combine(dir, "grid.png");
        var r = Terdit.Run(Args(jsonPath, gridPath));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("sampled 20/20", r.Out);
        Assert.Contains("FID", r.Out);

        var json = JsonNode.Parse(File.ReadAllText(jsonPath))!;
        Assert.Equal(2, (long)json["step"]!);
        Assert.Equal(Path.Combine(run, "checkpoints", "step-0000002.ckpt"), (string)json["checkpoint"]!);
        Assert.Contains("--samples 20", (string)json["command"]!);
        Assert.Equal(20, (int)json["settings"]!["samples"]!);
        Assert.Equal("ddim", (string)json["settings"]!["sampler"]!);
        Assert.True((double)json["elapsed_s"]! > 0);
        var result = json["result"]!;
        double fid = (double)result["Fid"]!;
        Assert.True(double.IsFinite(fid) && fid > 0, $"FID {fid}"); // 2-step samples of an untrained model are far from the data
        foreach (var name in new[] { "Precision", "Recall", "ClassAccuracy" })
            Assert.InRange((double)result[name]!, 0, 1);
        Assert.Equal(20, (int)result["N"]!);
        Assert.Equal(256, (int)result["ReferenceN"]!);   // the fixture's test split
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(jsonPath)!, "*.tmp"));

        var info = Image.Identify(gridPath);             // 10 class rows × 2 columns of 32×32
        Assert.Equal(PngGrid.Extent(2, 32), info.Width);
        Assert.Equal(PngGrid.Extent(10, 32), info.Height);

        // Same arguments, same seed → the same samples and metrics.
        var again = Path.Combine(dir, "again.json");
        Assert.Equal(0, Terdit.Run(Args(again, null)).Code);
        Assert.Equal(result.ToJsonString(), JsonNode.Parse(File.ReadAllText(again))!["result"]!.ToJsonString());

        // DPM-Solver++ through the checkpoint path: other samples from the same noise.
        var dpm = Path.Combine(dir, "dpm.json");
        Assert.Equal(0, Terdit.Run(Args(dpm, null, "dpm++2m")).Code);
        var dpmJson = JsonNode.Parse(File.ReadAllText(dpm))!;
        Assert.Equal("dpm++2m", (string)dpmJson["settings"]!["sampler"]!);
        Assert.NotEqual(fid, (double)dpmJson["result"]!["Fid"]!);
    }

    [Fact]
    public void EvalOfAPackedModelRunsOnTheRuntimeInBothModes()
    {
        using var dir = new TempDirectory("cli-eval-packed");
        var run = Path.Combine(dir, "run");
        Terdit.TrainTiny(run);
        var model = Path.Combine(dir, "tiny.tdit");
        Assert.Equal(0, Terdit.Run("pack", "--checkpoint", run, "--out", model, "--fp-dtype", "f32").Code);
        JsonNode Eval(string mode, string name, string sampler = "ddim")
        {
            var json = Path.Combine(dir, name);
            var r = Terdit.Run("eval", "--model", model, "--mode", mode, "--samples", "20", "--steps", "2", "--batch", "8", "--seed", "7",
                "--reference-dir", Fixtures.FashionMnistDirectory, "--out", json, "--threads", "1", "--sampler", sampler);
            Assert.True(r.Code == 0, r.Err);
            Assert.Contains($"runtime {(mode == "a8" ? "A8" : "Exact")}", r.Out);
            return JsonNode.Parse(File.ReadAllText(json))!;
        }
        var exact = Eval("exact", "exact.json");
        Assert.Equal(Path.GetFullPath(model), (string)exact["packed_model"]!);
        Assert.Null(exact["step"]);
        Assert.Equal("exact", (string)exact["settings"]!["mode"]!);
        Assert.Null(exact["settings"]!["weights"]);
        Assert.True(double.IsFinite((double)exact["result"]!["Fid"]!));
        Assert.Equal(exact["result"]!.ToJsonString(), Eval("exact", "again.json")["result"]!.ToJsonString()); // reproducible
        var a8 = Eval("a8", "a8.json");
        Assert.Equal("a8", (string)a8["settings"]!["mode"]!);
        Assert.InRange((double)a8["result"]!["ClassAccuracy"]!, 0, 1);
        var dpm = Eval("exact", "dpm.json", "dpm++2m");
        Assert.Equal("dpm++2m", (string)dpm["settings"]!["sampler"]!);
        Assert.NotEqual((double)exact["result"]!["Fid"]!, (double)dpm["result"]!["Fid"]!);

        Terdit.AssertUsageError(Terdit.Run("eval", "--model", model, "--checkpoint", run, "--samples", "20"), "one of --checkpoint");
        // A packed model runs on the CUDA backend with --device cuda; without a GPU that is one line naming CUDA.
        if (!TorchSharp.torch.cuda.is_available())
            Terdit.AssertUsageError(Terdit.Run("eval", "--model", model, "--samples", "20", "--device", "cuda"), "CUDA");
        Terdit.AssertUsageError(Terdit.Run("eval", "--checkpoint", run, "--samples", "20", "--mode", "a8"), "--mode a8 runs on the packed runtime");
    }

    [Fact]
    public void BadEvalInvocationsAreOneLineErrors()
    {
        Terdit.AssertUsageError(Terdit.Run("eval", "--checkpoint", "/nonexistent/run", "--samples", "20"), "not found");
        Terdit.AssertUsageError(Terdit.Run("eval", "--checkpoint", "x", "--samples", "5"), "--samples must be at least 10");
        Terdit.AssertUsageError(Terdit.Run("eval", "--checkpoint", "x", "--samples", "20", "--batch", "0"), "--batch must be positive");
        Terdit.AssertUsageError(Terdit.Run("eval", "--checkpoint", "x"), "--samples");
        Terdit.AssertUsageError(Terdit.Run("eval", "--samples", "20"), "give one of --checkpoint CKPT and --model MODEL.tdit");
    }
}
