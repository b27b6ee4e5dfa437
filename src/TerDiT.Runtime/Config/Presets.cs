namespace TerDiT.Runtime.Config;

/// <summary>
/// The one registry of model sizes; the CLI's <c>--preset</c> choices. Each preset carries a
/// default data shape (Fashion-MNIST-sized for the small ones, 4×32×32 latents and 1000 classes
/// for the paper's), which callers override with <c>with { … }</c>.
/// </summary>
public static class Presets
{
    static TerDiTConfig Small(string name, int d, int depth, int heads, int patch) => new()
    {
        Name = name, HiddenSize = d, Depth = depth, NumHeads = heads, PatchSize = patch,
        InChannels = 1, InputSize = 32, NumClasses = 10,
    };

    static TerDiTConfig Paper(string name, int d, int depth, int heads) => new()
    {
        Name = name, HiddenSize = d, Depth = depth, NumHeads = heads, PatchSize = 2,
        InChannels = 4, InputSize = 32, NumClasses = 1000,
    };

    public static readonly IReadOnlyDictionary<string, TerDiTConfig> All = new Dictionary<string, TerDiTConfig>(StringComparer.OrdinalIgnoreCase)
    {
        // Ours, for CPU and Fashion-MNIST at 32×32.
        ["TerDiT-Tiny"] = Small("TerDiT-Tiny", d: 128, depth: 4, heads: 4, patch: 4),  // 64 tokens
        ["TerDiT-S"] = Small("TerDiT-S", d: 384, depth: 12, heads: 6, patch: 2),        // 256 tokens, DiT-S/2 widths
        // The paper's (docs/PAPER.md §2).
        ["TerDiT-600M"] = Paper("TerDiT-600M", d: 1536, depth: 16, heads: 32),
        ["TerDiT-4.2B"] = Paper("TerDiT-4.2B", d: 3072, depth: 32, heads: 32),
        ["TerDiT-7B"] = Paper("TerDiT-7B", d: 4096, depth: 32, heads: 32),
    };

    public static IEnumerable<string> Names => All.Keys;

    /// <summary>The preset's config; an unknown name lists the known ones.</summary>
    public static TerDiTConfig Get(string name) =>
        All.TryGetValue(name, out var c) ? c
            : throw new ArgumentException($"unknown preset '{name}'; known presets: {string.Join(", ", All.Keys)}");
}
