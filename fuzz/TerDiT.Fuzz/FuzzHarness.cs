using System.Globalization;

namespace TerDiT.Fuzz;

/// <summary>
/// Runs one input through a <see cref="FuzzTarget"/>: writes it to a scratch file, calls the loader, lets its
/// refusals pass and turns the rest into an exception (which the fuzzing engine records as a crash). The
/// memory check reads the process's peak resident set (Linux <c>VmHWM</c>, reset before each input through
/// <c>/proc/self/clear_refs</c>), so native allocations (libtorch) count as well as managed ones.
/// </summary>
static class FuzzHarness
{
    /// <summary>Most memory one input may make the process hold: 1 GiB (the whole process, runtime included).</summary>
    public const long MemoryLimitBytes = 1L << 30;

    static readonly string Scratch = Directory.CreateTempSubdirectory("terdit-fuzz-").FullName;

    /// <summary>
    /// Runs <paramref name="input"/>; throws <see cref="FuzzFindingException"/> for a finding. Returns the process's
    /// peak resident bytes during the input (0 without <paramref name="checkMemory"/>).
    /// </summary>
    public static long Run(FuzzTarget target, byte[] input, bool checkMemory)
    {
        var bytes = target.Prepare?.Invoke(input) ?? input;
        var path = Path.Combine(Scratch, "input." + target.Extension);
        File.WriteAllBytes(path, bytes);
        if (checkMemory) ResetPeak();
        try { target.Load(path); }
        catch (Exception e) when (target.Refusals.Any(t => t.IsInstanceOfType(e)))
        {
            // A refusal names the file; a memory refusal names the sizes (the command that loaded the file adds its name).
            if (e is not InsufficientMemoryException && !e.Message.Contains(Path.GetFileName(path), StringComparison.Ordinal))
                throw new FuzzFindingException($"{target.Name}: a refusal that does not name the file: {e.GetType().Name}: {e.Message}", e);
        }
        catch (Exception e)
        {
            throw new FuzzFindingException($"{target.Name}: unexpected {e.GetType().FullName}: {e.Message}", e);
        }
        if (!checkMemory) return 0;
        long peak = PeakBytes();
        if (peak > MemoryLimitBytes)
            throw new FuzzFindingException(string.Create(CultureInfo.InvariantCulture,
                $"{target.Name}: the process peaked at {peak >> 20} MiB, past the {MemoryLimitBytes >> 20} MiB limit"));
        return peak;
    }

    /// <summary>Resets the kernel's peak-RSS counter of this process (writing 5 to clear_refs).</summary>
    static void ResetPeak() => File.WriteAllText("/proc/self/clear_refs", "5");

    /// <summary>Peak resident set since the last reset, in bytes (VmHWM of /proc/self/status).</summary>
    static long PeakBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        throw new InvalidOperationException("/proc/self/status has no VmHWM line");
    }
}

/// <summary>An input made a loader crash, throw an undocumented exception, or use too much memory.</summary>
sealed class FuzzFindingException(string message, Exception? inner = null) : Exception(message, inner);
