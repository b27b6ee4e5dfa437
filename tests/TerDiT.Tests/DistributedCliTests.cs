using TerDiT.Cli;
using TerDiT.Testing;
using Xunit;

using static TerDiT.Tests.Terdit;

namespace TerDiT.Tests;

/// <summary>What <c>--gpus</c> checks before any rank starts (launching needs GPUs: see NcclSelfTest).</summary>
public class DistributedCliTests
{

    [Theory]
    [InlineData("--gpus needs --device cuda", "--gpus", "2")]
    [InlineData("the global batch 32 must be a multiple of the number of ranks 3", "--gpus", "3", "--device", "cuda")]
    [InlineData("--gpus must be ≥ 1", "--gpus", "0", "--device", "cuda")]
    public void BadGpuOptionsFailBeforeLaunching(string expected, params string[] extra)
    {
        using var dir = new TempDirectory("gpus");
        var r = Run(["train", "--preset", "TerDiT-Tiny", "--out", dir, "--batch", "32", .. extra]);
        Assert.Equal(CliApp.UsageError, r.Code);
        Assert.StartsWith($"terdit: error: {expected}", r.Err.Trim());
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir)); // nothing launched, nothing written
    }

    [Fact]
    public void TheNcclSelfTestIsHiddenButParsed()
    {
        Assert.DoesNotContain("nccl-selftest", Run("--help").Out);
        var r = Run("nccl-selftest", "--gpus", "0");
        Assert.Equal(CliApp.UsageError, r.Code);
        Assert.StartsWith("terdit: error: --gpus must be ≥ 1", r.Err);
    }
}
