namespace TerDiT.Fuzz;

/// <summary>Runs saved inputs (corpus, regressions, findings) through a target once each, with the fuzzing limits.</summary>
static class Replay
{
    /// <summary>Most time one input may take before it counts as a hang (the fuzzing engine uses the same).</summary>
    public static readonly TimeSpan HangTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Prints one line per finding and a summary (inputs, findings, the most resident memory one input added);
    /// returns 0 when every input passed, 1 otherwise.
    /// </summary>
    public static int Run(FuzzTarget target, IEnumerable<string> paths)
    {
        var files = paths.SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories) : [p])
            .Where(f => !Path.GetFileName(f).StartsWith('.') && Path.GetFileName(f) != "README.txt")
            .Order(StringComparer.Ordinal).ToList();
        int findings = 0;
        long largestAdded = 0;
        foreach (var file in files)
        {
            var input = File.ReadAllBytes(file);
            var run = Task.Run(() => FuzzHarness.Run(target, input, checkMemory: true)); // resident bytes added
            try
            {
                if (!run.Wait(HangTimeout))
                {
                    Console.WriteLine($"{file}: hang (over {HangTimeout.TotalSeconds:0} s)");
                    return 1; // the hung input keeps running: stop here
                }
                largestAdded = Math.Max(largestAdded, run.Result);
            }
            catch (AggregateException e) when (e.InnerException is FuzzFindingException f)
            {
                Console.WriteLine($"{file}: {f.Message}");
                findings++;
            }
        }
        Console.WriteLine($"{target.Name}: {files.Count} inputs, {findings} findings, largest memory added by one input {largestAdded >> 20} MiB");
        return findings == 0 ? 0 : 1;
    }
}
