using System.Diagnostics;
using System.Runtime.InteropServices;

namespace TerDiT.Distributed;

/// <summary>How <see cref="Launcher.Run"/> starts the ranks of a data-parallel run.</summary>
public sealed record LaunchOptions
{
    /// <summary>Number of ranks (processes, one GPU each).</summary>
    public required int WorldSize { get; init; }
    /// <summary>Executable every rank runs (usually the current one, see <see cref="Launcher.CurrentProcess"/>).</summary>
    public required string FileName { get; init; }
    /// <summary>Its arguments, identical for every rank.</summary>
    public required IReadOnlyList<string> Arguments { get; init; }
    /// <summary>Directory for the rendezvous file (the run directory); created if missing.</summary>
    public required string RendezvousDirectory { get; init; }
    /// <summary>Forward every rank's standard output (prefixed); false: only rank 0's. Standard error is always forwarded.</summary>
    public bool ForwardAllOutput { get; init; } = true;
}

/// <summary>
/// Starts one process per rank on this machine and supervises them. Rank r's environment gets
/// <c>TERDIT_RANK=r</c>, <c>TERDIT_WORLD_SIZE=W</c>, <c>TERDIT_RENDEZVOUS</c> (a fresh file name in the
/// rendezvous directory), <c>NCCL_NVLS_ENABLE=0</c> and <c>CUDA_VISIBLE_DEVICES</c> = the r-th entry of
/// the parent's CUDA_VISIBLE_DEVICES (or <c>r</c> when that is unset), so each rank sees its GPU as
/// device 0. Output lines are forwarded as <c>[rank r] line</c>. When a rank fails, the others are
/// killed and the failed rank's exit code is returned; 0 when all succeed. SIGINT, SIGTERM or the
/// cancellation token kill all ranks (exit code 130, or 143 for SIGTERM).
/// </summary>
public static class Launcher
{
    /// <summary>Runs the ranks to completion; returns the first non-zero exit code, or 0.</summary>
    public static int Run(LaunchOptions options, TextWriter output, TextWriter error, CancellationToken cancellation = default)
    {
        if (options.WorldSize < 1) throw new ArgumentOutOfRangeException(nameof(options), $"world size must be ≥ 1, not {options.WorldSize}");
        var devices = VisibleDevices(Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES"), options.WorldSize);
        Directory.CreateDirectory(options.RendezvousDirectory);
        var rendezvous = Path.Combine(Path.GetFullPath(options.RendezvousDirectory), $".nccl-id-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var writeLock = new object();
        var processes = new List<Process>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        int signalCode = 130;
        void OnSignal(PosixSignalContext context, int code) { context.Cancel = true; signalCode = code; stop.Cancel(); }
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => OnSignal(c, 130));
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => OnSignal(c, 143));
        try
        {
            for (int rank = 0; rank < options.WorldSize; rank++)
                processes.Add(Start(options, rank, devices[rank], rendezvous, writeLock, output, error));
            int code = Supervise(processes, stop.Token, out int failedRank);
            if (code < 0) code = signalCode;
            if (code != 0) lock (writeLock) error.WriteLine(failedRank >= 0 ? $"[launcher] rank {failedRank} exited with code {code}; the other ranks were stopped" : "[launcher] cancelled; all ranks were stopped");
            lock (writeLock) { output.Flush(); error.Flush(); }
            return code;
        }
        finally
        {
            foreach (var p in processes) { KillQuietly(p); p.Dispose(); }
            File.Delete(rendezvous);
        }
    }

    /// <summary>
    /// The command that re-executes this process with <paramref name="args"/>: <c>Environment.ProcessPath</c>
    /// for a native executable (the published <c>terdit</c>), or the dotnet host plus the entry
    /// assembly when running as <c>dotnet terdit.dll</c>.
    /// </summary>
    public static (string FileName, IReadOnlyList<string> Arguments) CurrentProcess(IReadOnlyList<string> args)
    {
        var path = Environment.ProcessPath ?? throw new InvalidOperationException("the path of the current executable is unknown");
        var name = Path.GetFileNameWithoutExtension(path);
        if (name == "dotnet")
        {
            var entry = System.Reflection.Assembly.GetEntryAssembly()?.Location;
            if (string.IsNullOrEmpty(entry)) throw new InvalidOperationException("running under dotnet without an entry assembly path");
            return (path, [entry, .. args]);
        }
        return (path, args.ToArray());
    }

    /// <summary>The device id each rank gets in CUDA_VISIBLE_DEVICES: the r-th of the parent's list, or r.</summary>
    public static string[] VisibleDevices(string? parentVisibleDevices, int worldSize)
    {
        if (string.IsNullOrWhiteSpace(parentVisibleDevices))
            return Enumerable.Range(0, worldSize).Select(r => r.ToString()).ToArray();
        var list = parentVisibleDevices.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (list.Length < worldSize)
            throw new ArgumentException($"{worldSize} ranks need {worldSize} GPUs but CUDA_VISIBLE_DEVICES lists {list.Length} ({parentVisibleDevices})");
        return list[..worldSize];
    }

    static Process Start(LaunchOptions options, int rank, string device, string rendezvous, object writeLock, TextWriter output, TextWriter error)
    {
        var info = new ProcessStartInfo(options.FileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in options.Arguments) info.ArgumentList.Add(a);
        info.Environment[DistributedEnvironment.RankVariable] = rank.ToString();
        info.Environment[DistributedEnvironment.WorldSizeVariable] = options.WorldSize.ToString();
        info.Environment[DistributedEnvironment.RendezvousVariable] = rendezvous;
        info.Environment[DistributedEnvironment.NvlsVariable] = "0";
        info.Environment["CUDA_VISIBLE_DEVICES"] = device;
        var process = new Process { StartInfo = info };
        var prefix = $"[rank {rank}] ";
        bool forwardOutput = rank == 0 || options.ForwardAllOutput;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null && forwardOutput) lock (writeLock) output.WriteLine(prefix + e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (writeLock) error.WriteLine(prefix + e.Data); };
        if (!process.Start()) throw new InvalidOperationException($"could not start rank {rank}: {options.FileName}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Waits for all ranks; on the first failure (or cancellation: returns −1) kills the rest.</summary>
    static int Supervise(List<Process> processes, CancellationToken cancellation, out int failedRank)
    {
        failedRank = -1;
        // Indexed by rank: WaitForExitAsync of an already exited process may return a shared completed task.
        var waits = processes.Select(p => p.WaitForExitAsync()).ToArray();
        var running = Enumerable.Range(0, processes.Count).ToList();
        var cancelled = Task.Delay(Timeout.Infinite, cancellation);
        while (running.Count > 0)
        {
            Task.WaitAny([.. running.Select(r => waits[r]), cancelled]);
            if (cancelled.IsCompleted)
            {
                foreach (var p in processes) KillQuietly(p);
                foreach (var p in processes) p.WaitForExit();
                return -1; // the caller knows which signal
            }
            foreach (int rank in running.Where(r => waits[r].IsCompleted).ToArray())
            {
                running.Remove(rank);
                var process = processes[rank];
                process.WaitForExit(); // drains the redirected output
                if (process.ExitCode == 0) continue;
                foreach (var p in processes) KillQuietly(p);
                foreach (var p in processes) p.WaitForExit();
                failedRank = rank;
                return process.ExitCode;
            }
        }
        return 0;
    }

    static void KillQuietly(Process p)
    {
        try { if (!p.HasExited) p.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { } // exited in between
    }
}
