using TerDiT.Cli;
using TerDiT.Runtime.Config;
using TerDiT.Testing;
using Xunit;

using static TerDiT.Tests.Terdit;

namespace TerDiT.Tests;

public class CliTests
{


    [Fact]
    public void InfoPrintsExactParameterCounts()
    {
        var r = Run("info", "--preset", "TerDiT-600M");
        Assert.Equal(0, r.Code);
        long total = long.Parse(r.Out.Split('\n').Single(l => l.StartsWith("parameters: ")).Split(' ')[1]);
        long ternary = long.Parse(r.Out.Split('\n').Single(l => l.StartsWith("ternary parameters: ")).Split(' ')[2]);
        Assert.Equal(ParameterSchema.ParameterCount(Presets.Get("TerDiT-600M")), total);
        Assert.InRange(total, 609_500_000, 610_500_000);   // docs/PAPER.md §2: ≈ 609.9 M
        Assert.InRange(ternary, 603_500_000, 604_500_000); // ≈ 604.0 M ternary
        Assert.Contains("\"HiddenSize\": 1536", r.Out);

        var fp = Run("info", "--preset", "TerDiT-600M", "--full-precision");
        Assert.Contains("ternary parameters: 0", fp.Out);
    }

    [Fact]
    public void BadInvocationsAreOneLineAndExitCode2()
    {
        AssertUsageError(Run("info", "--preset", "TerDiT-9000"), "unknown preset");
        AssertUsageError(Run("info"), "--preset");
        AssertUsageError(Run("train", "--preset", "TerDiT-Tiny", "--out", "x", "--bogus"), "--bogus");
        AssertUsageError(Run("train", "--preset", "TerDiT-Tiny", "--out", "x", "--steps", "many"), "many");
        AssertUsageError(Run("train", "--preset", "TerDiT-Tiny", "--out", "x", "--device", "tpu"), "tpu");
        AssertUsageError(Run("sample", "--checkpoint", "/nonexistent/run", "--out", "x.png"), "not found");
        AssertUsageError(Run("sample", "--checkpoint", "x", "--out", "x.png", "--sampler", "euler"), "euler");
        // The shipped model's 1000-step schedule: DPM-Solver++ takes at most 999 steps, DDIM 1000; zero is nobody's.
        AssertUsageError(Run("sample", "--sampler", "dpm++2m", "--steps", "1000", "--out", "x.png"), "--steps must lie in 1..999");
        AssertUsageError(Run("sample", "--sampler", "ddim", "--steps", "1001", "--out", "x.png"), "--steps must lie in 1..1000");
        AssertUsageError(Run("sample", "--steps", "0", "--out", "x.png"), "--steps must be positive");
        AssertUsageError(Run("eval", "--model", Path.Combine(Fixtures.RepoRoot, "models", "terdit-s-fmnist.tdit"), "--sampler", "dpm++2m", "--steps", "1000", "--samples", "10"), "--steps must lie in 1..999");
        AssertUsageError(Run("frobnicate"), "frobnicate");
    }

    [Fact]
    public void CorruptCheckpointIsOneLineAndExitCode2()
    {
        using var dir = new TempDirectory("cli-corrupt");
        var path = Path.Combine(dir, "step-0000001.ckpt");
        File.WriteAllBytes(path, new byte[100]);
        AssertUsageError(Run("sample", "--checkpoint", path, "--out", Path.Combine(dir, "g.png")), "not a TerDiT checkpoint");
    }

    [Fact]
    public void TrainThenSampleGivesTheSamePngTwice()
    {
        using var dir = new TempDirectory("cli-run");
        var run = Path.Combine(dir, "run");
        var train = Run("train", "--preset", "TerDiT-Tiny", "--data-dir", Fixtures.FashionMnistDirectory, "--limit", "32",
            "--steps", "2", "--batch", "4", "--out", run, "--log-every", "1", "--ema-decay", "0.5");
        Assert.True(train.Code == 0, train.Err);
        Assert.Contains("step 2/2", train.Out);
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "step-0000002.ckpt")));
        Assert.Equal(2, File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length);

        string[] Sample(string png) =>
            ["sample", "--checkpoint", run, "--classes", "0,3", "--per-class", "3", "--steps", "3", "--cfg", "1.5", "--seed", "5", "--out", png];
        string a = Path.Combine(dir, "a.png"), b = Path.Combine(dir, "b.png");
        var r = Run(Sample(a));
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal(0, Run(Sample(b)).Code);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        using var img = SixLabors.ImageSharp.Image.Load(a);
        Assert.Equal((3 * 34 + 2, 2 * 34 + 2), (img.Width, img.Height));
        string dpm = Path.Combine(dir, "dpm.png"), ddim1 = Path.Combine(dir, "ddim1.png"), ddim2 = Path.Combine(dir, "ddim2.png");
        Assert.Equal(0, Run([.. Sample(dpm), "--sampler", "dpm++2m"]).Code);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(dpm));                    // the default sampler is dpm++2m
        Assert.Equal(0, Run([.. Sample(ddim1), "--sampler", "ddim"]).Code);
        Assert.Equal(0, Run([.. Sample(ddim2), "--sampler", "ddim"]).Code);
        Assert.Equal(File.ReadAllBytes(ddim1), File.ReadAllBytes(ddim2));
        Assert.NotEqual(File.ReadAllBytes(a), File.ReadAllBytes(ddim1));

        AssertUsageError(Run("sample", "--checkpoint", run, "--classes", "0,12", "--out", a), "12");
    }
}
