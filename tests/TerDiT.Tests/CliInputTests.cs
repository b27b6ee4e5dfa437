using TerDiT.Testing;
using Xunit;
using static TerDiT.Tests.Terdit;

namespace TerDiT.Tests;

/// <summary>Hand-typed bad arguments: one line naming the option or file, exit code 2, nothing left behind.</summary>
public sealed class CliInputTests : IDisposable
{
    readonly TempDirectory dir = new("cli-input");

    public void Dispose() => dir.Dispose();

    [Fact]
    public void UnknownOptionIsNotTakenForAFileName() =>
        AssertUsageError(Run("info", "--bogus"), "unknown option '--bogus'");

    [Fact]
    public void ChoicesAreListedOnTheErrorLine()
    {
        var r = Run("sample", "--sampler", "", "--out", Path.Combine(dir, "x.png"));
        AssertUsageError(r, "Must be one of: 'ddim' 'ddpm'");
    }

    [Fact]
    public void DirectoryGivenAsAModelIsNamedAsSuch() =>
        AssertUsageError(Run("info", dir), "is a directory");

    [Fact]
    public void PackCreatesTheOutputDirectoryAndRefusesANegativeSeed()
    {
        var output = Path.Combine(dir, "new", "deeper", "tiny.tdit");
        var r = Run("pack", "--preset", "TerDiT-Tiny", "--random-init", "--out", output);
        Assert.True(r.Code == 0, r.Err);
        Assert.True(File.Exists(output));
        AssertUsageError(Run("pack", "--preset", "TerDiT-Tiny", "--random-init", "--seed", "-1", "--out", output), "-1");
    }

    /// <summary>A batch of 100000 TerDiT-Tiny images needs about 630 GB of activations (6.3 MB each): refused before allocating.</summary>
    [Fact]
    public void TrainingBatchBeyondTheMachineIsRefusedUpFront()
    {
        var r = Run("train", "--preset", "TerDiT-Tiny", "--data-dir", Fixtures.FashionMnistDirectory, "--limit", "32",
            "--steps", "1", "--batch", "100000", "--out", Path.Combine(dir, "run"));
        AssertUsageError(r, "--batch 100000");
        Assert.Contains("more than the", r.Err);
        Assert.False(Directory.Exists(Path.Combine(dir, "run", "checkpoints")));
    }

    [Fact]
    public void GridBeyondTheMachineIsRefusedBeforeSampling()
    {
        var r = Run("sample", "--per-class", "1000000", "--out", Path.Combine(dir, "big.png"));
        AssertUsageError(r, "--per-class 1000000");
        AssertUsageError(Run("eval", "--model", "x.tdit", "--samples", "2000000000"), "--samples 2000000000");
    }

    [Fact]
    public void ImpossibleStepCountsAreRefused() =>
        AssertUsageError(Run("train", "--preset", "TerDiT-Tiny", "--steps", "1000000000000000000", "--out", Path.Combine(dir, "r")), "steps must lie in");

    /// <summary>The PNG's temporary file is removed when the rename fails (the output path is a directory).</summary>
    [Fact]
    public void FailedPngRenameLeavesNoTemporaryFile()
    {
        var target = Directory.CreateDirectory(Path.Combine(dir, "taken.png")).FullName;
        var r = Run("sample", "--classes", "0", "--per-class", "1", "--steps", "1", "--out", target);
        Assert.Equal(2, r.Code);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    /// <summary>A damaged newest checkpoint: --resume continues from the one before and says so; a killed run's temp file is removed.</summary>
    [Fact]
    public void ResumePassesOverADamagedCheckpointAndRemovesStaleTemporaries()
    {
        var run = Path.Combine(dir, "run");
        string[] Train(string steps, params string[] extra) =>
            ["train", "--preset", "TerDiT-Tiny", "--data-dir", Fixtures.FashionMnistDirectory, "--limit", "16", "--steps", steps, "--batch", "4",
             "--ckpt-every", "1", "--out", run, .. extra];
        Assert.Equal(0, Run(Train("2")).Code);
        var newest = Path.Combine(run, "checkpoints", "step-0000002.ckpt");
        File.WriteAllBytes(newest, File.ReadAllBytes(newest)[..^100]);
        using var dead = System.Diagnostics.Process.Start("true")!;
        dead.WaitForExit();
        var stale = Path.Combine(run, "checkpoints", $"step-0000003.ckpt.{dead.Id}.tmp");
        File.WriteAllText(stale, "partial");

        var r = Run(Train("3", "--resume"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains($"warning: passed over a damaged checkpoint: {newest}", r.Out);
        Assert.Contains($"removed {stale}", r.Out);
        Assert.Contains("step 1 → 3", r.Out);
        Assert.False(File.Exists(stale));
    }
}
