namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// The names users give the samplers (the CLI's <c>--sampler</c>, the service's <c>sampler</c> field) and the
/// sampling every front end uses when none is named: DPM-Solver++(2M) at 10 steps, which scores a better FID
/// than DDIM at 25 on the shipped model (docs/RESULTS.md).
/// </summary>
public static class SamplerNames
{
    /// <summary>The sampler used when none is named.</summary>
    public const string Default = "dpm++2m";

    /// <summary>The sampling steps used when none are given.</summary>
    public const int DefaultSteps = 10;

    static readonly (string Name, SamplerKind Kind)[] Choices =
        [("ddim", SamplerKind.Ddim), ("ddpm", SamplerKind.Ddpm), ("dpm++2m", SamplerKind.DpmPlusPlus2M)];

    /// <summary>Every name, one per <see cref="SamplerKind"/>.</summary>
    public static IReadOnlyList<string> All { get; } = Choices.Select(c => c.Name).ToArray();

    /// <summary>The sampler <paramref name="name"/> names, or null for any other string.</summary>
    public static SamplerKind? Find(string name) =>
        Array.FindIndex(Choices, c => c.Name == name) is int i and >= 0 ? Choices[i].Kind : null;
}
