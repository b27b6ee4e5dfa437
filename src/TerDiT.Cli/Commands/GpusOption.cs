using System.CommandLine;
using TerDiT.Distributed;
using TorchSharp;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>--gpus N</c>: data parallelism over N GPUs of this machine, one process per GPU. The process the
/// user starts only launches and supervises N copies of its own command line (<see cref="Launcher"/>);
/// each copy finds its rank in the environment and joins the NCCL communicator.
/// </summary>
static class GpusOption
{
    public static Option<int> Create(string description)
    {
        var option = new Option<int>("--gpus") { Description = description, DefaultValueFactory = _ => 1 };
        option.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError($"--gpus must be ≥ 1, not {r.GetValueOrDefault<int>()}"); });
        return option;
    }

    /// <summary>Refuses a data-parallel training run that cannot work: several GPUs without <c>--device cuda</c>, or a global batch that does not split evenly.</summary>
    public static void CheckTraining(int gpus, string device, int globalBatch)
    {
        if (gpus > 1 && device != "cuda") throw new ArgumentException("--gpus needs --device cuda");
        DataSharding.PerRank(globalBatch, gpus);
    }

    /// <summary>
    /// With N &gt; 1 in the process the user started: runs N ranks of the same command line and returns
    /// their exit code (the first failure's). Otherwise null: the caller does the work itself.
    /// </summary>
    public static int? LaunchIfNeeded(ParseResult parse, int gpus, string rendezvousDirectory, bool forwardAllOutput)
    {
        if (gpus == 1 || DistributedEnvironment.Read() is not null) return null;
        var (file, args) = Launcher.CurrentProcess(parse.Tokens.Select(t => t.Value).ToArray());
        var config = parse.InvocationConfiguration;
        return Launcher.Run(new LaunchOptions
        {
            WorldSize = gpus, FileName = file, Arguments = args, RendezvousDirectory = rendezvousDirectory, ForwardAllOutput = forwardAllOutput,
        }, config.Output, config.Error);
    }

    /// <summary>In a launched rank, its NCCL communicator on <paramref name="device"/> (which must be CUDA); null in a single process.</summary>
    public static NcclCommunicator? Join(int gpus, torch.Device device)
    {
        var env = DistributedEnvironment.Read();
        if (env is null) return null;
        if (env.WorldSize != gpus) throw new InvalidOperationException($"launched as rank {env.Rank} of {env.WorldSize} but --gpus is {gpus}");
        if (device.type != DeviceType.CUDA) throw new ArgumentException("--gpus needs --device cuda");
        return NcclCommunicator.Create(env, TimeSpan.FromMinutes(5), device);
    }
}
