using System.CommandLine;

namespace TerDiT.Cli.Bench;

/// <summary><c>terdit bench …</c>: benchmarks (not tests); each writes its results as JSON. One registration line per benchmark.</summary>
static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Run a benchmark and write its results as JSON.");
        command.Add(TrainBench.Create());
        command.Add(GemmBenchCommand.Create());
        command.Add(RuntimeBench.Create());
        command.Add(RuntimeBench.CreateMemoryChild());
        command.Add(RuntimeBench.CreateStepsChild());
        command.Add(ServeBench.Create());
        command.Add(VaeBench.CreateDecode());
        command.Add(VaeBench.CreateEndToEnd());
        return command;
    }
}
