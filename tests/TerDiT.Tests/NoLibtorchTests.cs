using System.Diagnostics;
using TerDiT.Testing;
using Xunit;
using static TerDiT.Tests.PackFixtures;
using static TerDiT.Tests.Terdit;

namespace TerDiT.Tests;

/// <summary>
/// <c>terdit sample --model</c> runs in a process that never maps libtorch: the built CLI runs as a child
/// process with <c>TERDIT_DUMP_MAPS</c>, which copies <c>/proc/self/maps</c> at exit. The same check on a
/// <c>--checkpoint</c> sample must find libtorch (so the check can fail). The packed run is repeated with
/// tiered compilation off (<c>DOTNET_TieredCompilation=0</c>: every method JIT-compiled fully optimised,
/// with inlining, at first call), so the guarantee does not rest on how the JIT compiles the command.
/// </summary>
public class NoLibtorchTests : IDisposable
{
    readonly TempDirectory dir = new("nolibtorch-tests");

    public void Dispose() => dir.Dispose();

    /// <summary>The CLI built beside this test assembly's configuration: src/TerDiT.Cli/bin/CONFIG/TFM/TerDiT.Cli.dll.</summary>
    static string CliDll()
    {
        var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var path = Path.Combine(Fixtures.RepoRoot, "src", "TerDiT.Cli", "bin", tfm.Parent!.Name, tfm.Name, "TerDiT.Cli.dll");
        Assert.True(File.Exists(path), $"{path} not built");
        return path;
    }

    /// <summary>Runs the CLI in a child process (with <paramref name="tiered"/> compilation or without); returns the pathnames of its mapped files at exit.</summary>
    string[] MappedFiles(bool tiered, params string[] args)
    {
        var maps = Path.Combine(dir, $"maps-{Guid.NewGuid():N}.txt");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(CliDll());
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["TERDIT_DUMP_MAPS"] = maps;
        if (!tiered) start.Environment["DOTNET_TieredCompilation"] = "0";
        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr.Result);
        // /proc/self/maps: address perms offset dev inode [pathname]; only the pathname names a library.
        return File.ReadAllLines(maps).Select(l => l.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length == 6).Select(f => f[5].Trim()).ToArray();
    }

    static bool IsLibtorch(string path)
    {
        var name = Path.GetFileName(path);
        return name.Contains("libtorch", StringComparison.OrdinalIgnoreCase) || name.Contains("LibTorchSharp", StringComparison.OrdinalIgnoreCase)
            || name.StartsWith("libc10", StringComparison.Ordinal);
    }

    [Fact]
    public void SampleFromAPackedModelNeverLoadsLibtorch()
    {
        var ckpt = WriteCheckpoint(dir, Tiny);
        var model = Path.Combine(dir, "m.tdit");
        Assert.Equal(0, Run("pack", "--checkpoint", ckpt, "--out", model).Code);
        string[] common = ["--classes", "1", "--per-class", "2", "--steps", "2", "--threads", "1"];

        foreach (bool tiered in new[] { true, false })
        {
            var runtime = MappedFiles(tiered, ["sample", "--model", model, "--out", Path.Combine(dir, "r.png"), .. common]);
            Assert.Contains(runtime, f => f.Contains("TerDiT.Runtime.dll")); // the dump is real and covers managed assemblies
            Assert.DoesNotContain(runtime, IsLibtorch);
        }

        var torch = MappedFiles(true, ["sample", "--checkpoint", ckpt, "--out", Path.Combine(dir, "t.png"), .. common]);
        Assert.Contains(torch, IsLibtorch);
        Assert.Contains(torch, f => Path.GetFileName(f).StartsWith("libtorch", StringComparison.Ordinal));
    }
}
