using System.CommandLine;
using TerDiT.Runtime.Diffusion;

namespace TerDiT.Cli.Commands;

/// <summary><c>--sampler ddim|ddpm|dpm++2m</c>: the reverse-process sampler of <c>sample</c> and <c>eval</c> (no TorchSharp type, so the packed path stays libtorch-free).</summary>
static class SamplerOption
{
    static readonly (string Name, SamplerKind Kind)[] Choices =
        [("ddim", SamplerKind.Ddim), ("ddpm", SamplerKind.Ddpm), ("dpm++2m", SamplerKind.DpmPlusPlus2M)];

    /// <summary>The sampler used when the option is left out.</summary>
    public const string Default = "ddim";

    public static Option<string> Create()
    {
        var option = new Option<string>("--sampler")
        {
            Description = "ddim (eta 0), ddpm (ancestral) or dpm++2m (DPM-Solver++(2M), second-order multistep)",
            DefaultValueFactory = _ => Default,
        };
        option.AcceptOnlyFromAmong(Choices.Select(c => c.Name).ToArray());
        return option;
    }

    /// <summary>The sampler a value of the option names.</summary>
    public static SamplerKind Resolve(string name) =>
        Choices.FirstOrDefault(c => c.Name == name) is { Name: not null } choice
            ? choice.Kind
            : throw new ArgumentException($"--sampler must be one of {string.Join(", ", Choices.Select(c => c.Name))}, not '{name}'");
}
