using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace TerDiT.Cli.Bench;

/// <summary>The machine a benchmark ran on, for its JSON (no TorchSharp: the runtime and service benchmarks use it too).</summary>
static class BenchMachine
{
    public static JsonObject Describe()
    {
        string cpu = "unknown";
        if (File.Exists("/proc/cpuinfo"))
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? cpu;
        return new JsonObject
        {
            ["os"] = RuntimeInformation.OSDescription,
            ["cpu"] = cpu,
            ["logical_cores"] = Environment.ProcessorCount,
            ["dotnet"] = RuntimeInformation.FrameworkDescription,
            ["load_average"] = LoadAverage(),
        };
    }

    public static string? LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : null;
}
