using System.Text;

namespace TerDiT.Runtime;

/// <summary>
/// Writes a file so that a reader finds either its previous content or all of the new one: the bytes go to a
/// temporary file beside it (<c>.NAME.PID.tmp</c>), which is flushed to disk and renamed over the target. The
/// temporary file is deleted when writing fails, and temporary files of the same target left by processes that
/// were killed mid-write are deleted by the next write. The target's directory is created when missing.
/// </summary>
public static class AtomicFile
{
    static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>Writes <paramref name="path"/> with what <paramref name="write"/> puts into the stream it is given.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        RemoveStaleTemporaries(dir, $".{Path.GetFileName(full)}.*.tmp");
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var file = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(file);
                file.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally { File.Delete(tmp); } // no-op after the rename
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>Writes <paramref name="text"/> to <paramref name="path"/> as UTF-8 without a byte-order mark.</summary>
    public static void WriteAllText(string path, string text) => Write(path, s => s.Write(Utf8.GetBytes(text)));

    /// <summary>
    /// Deletes the temporary files in <paramref name="dir"/> matching <paramref name="pattern"/> (default: every
    /// <c>*.tmp</c>) whose name ends in <c>.PID.tmp</c> with a process that is no longer running: what writers
    /// killed mid-write left. Returns the deleted paths.
    /// </summary>
    public static IReadOnlyList<string> RemoveStaleTemporaries(string dir, string pattern = "*.tmp")
    {
        var removed = new List<string>();
        if (!Directory.Exists(dir)) return removed;
        foreach (var tmp in Directory.EnumerateFiles(dir, pattern))
        {
            var parts = Path.GetFileName(tmp).Split('.');
            if (parts.Length < 3 || !int.TryParse(parts[^2], out int pid) || IsRunning(pid)) continue;
            try { File.Delete(tmp); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            removed.Add(tmp);
        }
        return removed;
    }

    static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }
}
