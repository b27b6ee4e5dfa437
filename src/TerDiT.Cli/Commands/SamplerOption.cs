using System.CommandLine;
using TerDiT.Runtime.Diffusion;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>--sampler dpm++2m|ddim|ddpm</c> and <c>--steps</c>: the reverse-process sampler of <c>sample</c> and <c>eval</c>
/// and its model calls, defaults from <see cref="SamplerNames"/> (no TorchSharp type, so the packed path stays libtorch-free).
/// </summary>
static class SamplerOption
{
    public static Option<string> Create()
    {
        var option = new Option<string>("--sampler")
        {
            Description = "dpm++2m (DPM-Solver++(2M), second-order multistep), ddim (eta 0) or ddpm (ancestral)",
            DefaultValueFactory = _ => SamplerNames.Default,
        };
        option.AcceptOnlyFromAmong([.. SamplerNames.All]);
        return option;
    }

    public static Option<int> CreateSteps() =>
        new("--steps") { Description = "sampling steps: model calls, the schedule respaced from 1000", DefaultValueFactory = _ => SamplerNames.DefaultSteps };

    /// <summary>The sampler a value of the option names.</summary>
    public static SamplerKind Resolve(string name) =>
        SamplerNames.Find(name) ?? throw new ArgumentException($"--sampler must be one of {string.Join(", ", SamplerNames.All)}, not '{name}'");
}
