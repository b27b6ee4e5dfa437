using System.Diagnostics;
using TerDiT.Distributed;
using TerDiT.Testing;
using Xunit;

namespace TerDiT.Tests;

/// <summary>The launcher with /bin/sh as the rank program, so its process handling is tested without GPUs.</summary>
public class DistributedLauncherTests
{
    static (int Code, string[] Out, string[] Err) Launch(int world, string script, string dir, bool forwardAll = true)
    {
        var output = new StringWriter(); var error = new StringWriter();
        int code = Launcher.Run(new LaunchOptions
        {
            WorldSize = world, FileName = "/bin/sh", Arguments = ["-c", script], RendezvousDirectory = dir, ForwardAllOutput = forwardAll,
        }, output, error);
        static string[] Lines(StringWriter w) => w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return (code, Lines(output), Lines(error));
    }

    [Fact]
    public void EveryRankGetsItsEnvironmentAndOutputIsPrefixed()
    {
        using var dir = new TempDirectory("launch");
        var (code, output, _) = Launch(3, "echo \"$TERDIT_RANK $TERDIT_WORLD_SIZE gpu=$CUDA_VISIBLE_DEVICES nvls=$NCCL_NVLS_ENABLE $TERDIT_RENDEZVOUS\"", dir);
        Assert.Equal(0, code);
        Assert.Equal(3, output.Length);
        string rendezvous = output[0].Split(' ').Last();
        Assert.StartsWith(Path.Combine(dir, ".nccl-id-"), rendezvous);
        for (int r = 0; r < 3; r++)
            Assert.Contains($"[rank {r}] {r} 3 gpu={r} nvls=0 {rendezvous}", output);
        Assert.Empty(Directory.GetFiles(dir)); // no rendezvous file left behind
    }

    [Fact]
    public void OnlyRankZerosOutputWhenAskedButEveryRanksErrors()
    {
        using var dir = new TempDirectory("launch");
        var (code, output, error) = Launch(2, "echo out$TERDIT_RANK; echo err$TERDIT_RANK >&2", dir, forwardAll: false);
        Assert.Equal(0, code);
        Assert.Equal(new[] { "[rank 0] out0" }, output);
        Assert.Equal(new[] { "[rank 0] err0", "[rank 1] err1" }, error.Order());
    }

    [Fact]
    public void TheFirstFailureStopsTheOtherRanksAndGivesTheExitCode()
    {
        using var dir = new TempDirectory("launch");
        var watch = Stopwatch.StartNew();
        var (code, _, error) = Launch(3, "if [ $TERDIT_RANK = 1 ]; then echo broken >&2; exit 3; fi; sleep 60; echo survived", dir);
        Assert.Equal(3, code);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"the sleeping ranks were not killed ({watch.Elapsed})");
        Assert.Contains("[rank 1] broken", error);
        Assert.Contains(error, l => l.Contains("rank 1 exited with code 3"));
    }

    [Fact]
    public void CancellationStopsEveryRank()
    {
        using var dir = new TempDirectory("launch");
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        var output = new StringWriter();
        var watch = Stopwatch.StartNew();
        int code = Launcher.Run(new LaunchOptions
        {
            WorldSize = 2, FileName = "/bin/sh", Arguments = ["-c", "sleep 60; echo survived"], RendezvousDirectory = dir,
        }, output, new StringWriter(), cancel.Token);
        Assert.Equal(130, code);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"the ranks were not killed ({watch.Elapsed})");
        Assert.DoesNotContain("survived", output.ToString());
    }

    [Fact]
    public void RanksTakeTheirEntryOfTheParentsVisibleDevices()
    {
        Assert.Equal(new[] { "0", "1" }, Launcher.VisibleDevices(null, 2));
        Assert.Equal(new[] { "4", "6" }, Launcher.VisibleDevices("4, 6,7", 2));
        var e = Assert.Throws<ArgumentException>(() => Launcher.VisibleDevices("3", 2));
        Assert.Contains("CUDA_VISIBLE_DEVICES", e.Message);
    }
}
