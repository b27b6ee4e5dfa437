using System.Globalization;

namespace TerDiT.Fuzz;

/// <summary>
/// Runs one input through a <see cref="FuzzTarget"/>: writes it to a scratch file, calls the loader, lets its
/// refusals pass and turns the rest into a <see cref="FuzzFindingException"/> (which the fuzzing engine records
/// as a crash). The memory check reads the process's resident set from <c>/proc/self/status</c>: the peak
/// (<c>VmHWM</c>, reset before each input through <c>/proc/self/clear_refs</c>) less the resident memory at
/// the reset, so native allocations (libtorch) count as well as managed ones, and memory that earlier inputs
/// left in the allocators' free lists is not charged to this one. With <c>TERDIT_FUZZ_LOG</c> set, every
/// finding is appended to that file with its stack trace (the engine keeps only the input).
/// </summary>
static class FuzzHarness
{
    /// <summary>Most memory one input may add to the process: 1 GiB.</summary>
    public const long MemoryLimitBytes = 1L << 30;

    static readonly string Scratch = CreateScratch();
    static readonly string? Log = Environment.GetEnvironmentVariable("TERDIT_FUZZ_LOG");

    static string CreateScratch()
    {
        var dir = Directory.CreateTempSubdirectory("terdit-fuzz-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(dir, recursive: true);
        return dir;
    }

    /// <summary>
    /// Runs <paramref name="input"/>; throws <see cref="FuzzFindingException"/> for a finding. Returns the resident
    /// bytes the input added at its peak (0 without <paramref name="checkMemory"/>).
    /// </summary>
    public static long Run(FuzzTarget target, byte[] input, bool checkMemory)
    {
        try { return RunChecked(target, input, checkMemory); }
        catch (FuzzFindingException e) when (Log is not null)
        {
            File.AppendAllText(Log, $"{DateTime.UtcNow:O} {e}\n\n");
            throw;
        }
    }

    static long RunChecked(FuzzTarget target, byte[] input, bool checkMemory)
    {
        var bytes = target.Prepare?.Invoke(input) ?? input;
        var path = Path.Combine(Scratch, "input." + target.Extension);
        File.WriteAllBytes(path, bytes);
        long baseline = checkMemory ? ResetPeak() : 0;
        try { target.Load(path); }
        catch (Exception e) when (target.Refusals.Any(t => t.IsInstanceOfType(e)))
        {
            // A refusal names the file; a memory refusal names the sizes (the command that loaded the file adds its name).
            if (target.RefusalsNameTheFile && e is not InsufficientMemoryException && !e.Message.Contains(Path.GetFileName(path), StringComparison.Ordinal))
                throw new FuzzFindingException($"{target.Name}: a refusal that does not name the file: {e.GetType().Name}: {e.Message}", e);
        }
        catch (Exception e)
        {
            throw new FuzzFindingException($"{target.Name}: unexpected {e.GetType().FullName}: {e.Message}", e);
        }
        if (!checkMemory) return 0;
        long peak = Status("VmHWM:"), added = Math.Max(0, peak - baseline);
        if (added > MemoryLimitBytes)
            throw new FuzzFindingException(string.Create(CultureInfo.InvariantCulture,
                $"{target.Name}: the input added {added >> 20} MiB of resident memory (peak {peak >> 20} MiB), past the {MemoryLimitBytes >> 20} MiB limit"));
        return added;
    }

    /// <summary>Resets the kernel's peak-RSS counter of this process (writing 5 to clear_refs) and returns the resident bytes.</summary>
    static long ResetPeak()
    {
        File.WriteAllText("/proc/self/clear_refs", "5");
        return Status("VmRSS:");
    }

    /// <summary>A memory line of /proc/self/status ("VmHWM:", "VmRSS:"), in bytes.</summary>
    static long Status(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        throw new InvalidOperationException($"/proc/self/status has no {key} line");
    }
}

/// <summary>An input made a loader crash, throw an undocumented exception, or use too much memory.</summary>
sealed class FuzzFindingException(string message, Exception? inner = null) : Exception(message, inner);
