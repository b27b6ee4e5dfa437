using System.CommandLine;
using System.Text.Json;
using TerDiT.Runtime.Config;
using TerDiT.Runtime;

namespace TerDiT.Cli.Bench;

/// <summary><c>terdit bench gemm</c>: runs <see cref="GemmBench"/> over a preset's layer shapes (TerDiT-600M by default); optionally writes the results as JSON.</summary>
static class GemmBenchCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = $"whose linear shapes: {string.Join(", ", Presets.Names)}", DefaultValueFactory = _ => GemmBench.DefaultPreset };
        var m = new Option<int>("--m") { Description = "rows of the activation matrix (batch × tokens)", DefaultValueFactory = _ => 512 };
        var threads = new Option<int>("--threads") { Description = "threads for libtorch and the kernels", DefaultValueFactory = _ => 2 };
        var warmup = new Option<int>("--warmup") { Description = "untimed runs per shape", DefaultValueFactory = _ => 2 };
        var repetitions = new Option<int>("--repetitions") { Description = "timed runs per shape", DefaultValueFactory = _ => 7 };
        var output = new Option<string?>("--out") { Description = "JSON results file (optional)" };
        var command = new Command("gemm", "Benchmark the ternary GEMM kernels against libtorch's float GEMM.");
        foreach (var o in new Option[] { preset, m, threads, warmup, repetitions, output }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            var results = GemmBench.Run(Presets.Get(p.GetValue(preset)!), p.GetValue(m), p.GetValue(threads), p.GetValue(warmup), p.GetValue(repetitions), stdout.WriteLine);
            if (p.GetValue(output) is { } path)
            {
                var doc = new { command = "terdit " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)), results };
                AtomicFile.WriteAllText(path, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }) + "\n");
                stdout.WriteLine($"results: {path}");
            }
            return 0;
        }));
        return command;
    }
}
