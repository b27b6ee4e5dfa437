using System.CommandLine;
using TerDiT.Distributed;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit nccl-selftest [--gpus N]</c> (hidden): checks the NCCL binding on real GPUs
/// (<see cref="NcclSelfTest"/>), in one process or in N launched ranks. Exit code 0 when every check passes.
/// </summary>
static class NcclSelfTestCommand
{
    public static Command Create()
    {
        var gpus = GpusOption.Create("ranks to launch, one GPU each (1: a single-rank NCCL communicator in this process)");
        var command = new Command("nccl-selftest", "Check all-reduce, broadcast and gradient bucketing through NCCL on CUDA.") { Hidden = true };
        command.Add(gpus);
        command.SetAction(p => CliApp.Guard(p, stdout =>
            GpusOption.LaunchIfNeeded(p, p.GetValue(gpus), Path.GetTempPath(), forwardAllOutput: true)
            ?? NcclSelfTest.Run(stdout, TimeSpan.FromMinutes(2))));
        return command;
    }
}
