using System.CommandLine;
using TorchSharp;

namespace TerDiT.Cli.Commands;

/// <summary><c>--threads N</c>: libtorch's intra-op CPU threads (default: libtorch's choice, one per core).</summary>
static class ThreadsOption
{
    public static Option<int?> Create() => new("--threads")
    {
        Description = "CPU threads for libtorch (default: one per core; 1 is faster on a busy machine)",
    };

    /// <summary>Applies the option's value, if any.</summary>
    public static void Apply(int? threads)
    {
        if (threads is null) return;
        if (threads <= 0) throw new ArgumentException($"--threads must be positive, not {threads}");
        torch.set_num_threads(threads.Value);
    }
}
