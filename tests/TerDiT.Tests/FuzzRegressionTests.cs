using System.Diagnostics;
using Xunit;

namespace TerDiT.Tests;

/// <summary>
/// Every committed fuzz input — the seed corpus and the regression files (hand-made damaged files and anything a
/// fuzzing run found) — replayed through its target in the fuzz driver's own process, under the fuzzing limits:
/// at most 1 GiB of resident memory added per input (GC heap capped the same), 10 s per input, and only documented refusals.
/// </summary>
public sealed class FuzzRegressionTests
{
    [Theory]
    [InlineData("tdit")]
    [InlineData("ckpt")]
    [InlineData("request")]
    [InlineData("pth")]
    [InlineData("vae")]
    [InlineData("latents")]
    public async Task EveryCommittedInputIsRefusedOrLoadedWithinTheLimits(string target)
    {
        var fuzz = Path.Combine(Fixtures.RepoRoot, "fuzz");
        string configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name; // bin/<Configuration>/net10.0/
        var driver = Path.Combine(fuzz, "TerDiT.Fuzz", "bin", configuration, "net10.0", "TerDiT.Fuzz.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { driver, target, "--replay", Path.Combine(fuzz, "corpus", target), Path.Combine(fuzz, "regressions", target) })
            start.ArgumentList.Add(a);
        start.Environment["DOTNET_GCHeapHardLimit"] = "0x40000000";
        using var p = Process.Start(start)!;
        var stdoutRead = p.StandardOutput.ReadToEndAsync();
        var stderrRead = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(5)), "the replay did not finish in 5 minutes");
        string stdout = await stdoutRead, stderr = await stderrRead;
        Assert.True(p.ExitCode == 0, stdout + stderr);
        Assert.Contains($"{target}: ", stdout);
        Assert.Contains(", 0 findings", stdout);
    }
}
