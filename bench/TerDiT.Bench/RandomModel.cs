using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;

namespace TerDiT.Bench;

/// <summary>
/// A packed model with random weights (trits uniform in {−1, 0, +1}, full-precision tensors
/// Gaussian at 1/√fan-in, norms near 1), written with the runtime's own <see cref="TditWriter"/>:
/// every layer does real work (no zero adaLN or final layer), and no libtorch is loaded.
/// </summary>
static class RandomModel
{
    public static void Write(TerDiTConfig config, string path, int seed)
    {
        var meta = new TditMetadata
        {
            Config = config,
            Preset = config.Name,
            Classes = Enumerable.Range(0, config.NumClasses).Select(i => i.ToString()).ToArray(),
            Source = $"random seed {seed}",
            Weights = TditWeights.Random,
            TernaryLayout = TernaryPacking.LayoutName,
        };
        var decls = TditSchema.Declarations(config, meta.TernaryLayout, TditDType.F16).ToList();
        var specs = ParameterSchema.Enumerate(config).ToDictionary(p => p.Name);
        var rng = new Random(seed);
        using var w = new TditWriter(path, meta, decls);
        foreach (var d in decls)
        {
            var spec = specs[d.Name];
            int n = (int)spec.Elements;
            switch (spec.Kind)
            {
                case ParameterKind.TernaryWeight:
                    var trits = new sbyte[n];
                    for (int i = 0; i < n; i++) trits[i] = (sbyte)(rng.Next(3) - 1);
                    w.Write(d.Name, TernaryPacking.Pack(trits, (int)spec.Shape[0], (int)spec.Shape[1]));
                    break;
                case ParameterKind.TernaryScale:
                    w.Write(d.Name, [(float)(1 / Math.Sqrt(specs[d.Name[..^".alpha".Length] + ".weight"].Shape[1]))]);
                    break;
                default:
                    float std = spec.Shape.Length == 2 ? (float)(1 / Math.Sqrt(spec.Shape[1])) : 0.1f;
                    var v = new Half[n];
                    for (int i = 0; i < n; i++)
                        v[i] = (Half)((d.Name.EndsWith("norm.weight") ? 1 : 0) + std * Gaussian(rng));
                    w.Write(d.Name, v);
                    break;
            }
        }
        w.Commit();
    }

    static float Gaussian(Random rng) =>
        (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
}
