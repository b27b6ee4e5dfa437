using System.Diagnostics;
using TerDiT.Testing;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class AtomicFileTests
{
    [Fact]
    public void WritesReplaceTheFileAndCreateItsDirectory()
    {
        using var dir = new TempDirectory("atomic");
        string path = dir.File("a/b/out.json");
        AtomicFile.WriteAllText(path, "first\n");
        AtomicFile.WriteAllBytes(path, "second"u8);
        Assert.Equal("second", File.ReadAllText(path));
        Assert.Equal(["out.json"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    [Fact]
    public void AFailedWriteKeepsThePreviousContentAndLeavesNoTemporary()
    {
        using var dir = new TempDirectory("atomic");
        string path = dir.File("out.bin");
        AtomicFile.WriteAllText(path, "kept");
        var e = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write("partial"u8);
            throw new InvalidOperationException("writer failed");
        }));
        Assert.Equal("writer failed", e.Message);
        Assert.Equal("kept", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(dir));
    }

    [Fact]
    public void TemporariesOfKilledWritersAreRemovedAndLiveOnesKept()
    {
        using var dir = new TempDirectory("atomic");
        int dead = DeadProcessId();
        string stale = dir.File($".out.png.{dead}.tmp"), live = dir.File(".out.png.1.tmp"); // process 1 runs as long as the machine
        string otherStale = dir.File($"step-0000004.ckpt.{dead}.tmp"), notOurs = dir.File("notes.tmp");
        foreach (var f in new[] { stale, live, otherStale, notOurs }) File.WriteAllText(f, "partial");

        // The next write of out.png removes its own target's stale temporaries only.
        AtomicFile.WriteAllText(dir.File("out.png"), "png");
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(live) && File.Exists(otherStale) && File.Exists(notOurs));

        // A directory sweep removes every temporary of a process that has exited, nothing else.
        Assert.Equal([otherStale], AtomicFile.RemoveStaleTemporaries(dir));
        Assert.True(File.Exists(live) && File.Exists(notOurs));
    }

    /// <summary>The id of a process that has exited (a child that ran <c>true</c>).</summary>
    static int DeadProcessId()
    {
        using var p = Process.Start("true")!;
        p.WaitForExit();
        return p.Id;
    }
}
