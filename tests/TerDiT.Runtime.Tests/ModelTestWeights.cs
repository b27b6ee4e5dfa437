using TerDiT.Runtime.Config;
using TerDiT.Runtime.Model;

namespace TerDiT.Runtime.Tests;

/// <summary>
/// Random weights for every parameter of a config, non-zero everywhere (adaLN and final layer
/// included, so no block is the identity), as an <see cref="InMemoryWeights"/> and as the dense
/// effective weights (alpha·trits for ternary layers) a reference forward can read by name, and
/// the ternary layers' trits and alphas by prefix.
/// </summary>
static class ModelTestWeights
{
    public static (InMemoryWeights Weights, Dictionary<string, float[]> Dense) Random(TerDiTConfig config, int seed)
    {
        var (weights, dense, _) = RandomWithTrits(config, seed);
        return (weights, dense);
    }

    public static (InMemoryWeights Weights, Dictionary<string, float[]> Dense, Dictionary<string, (sbyte[] Trits, float Alpha)> Ternary)
        RandomWithTrits(TerDiTConfig config, int seed)
    {
        var weights = new InMemoryWeights(config);
        var dense = new Dictionary<string, float[]>();
        var ternary = new Dictionary<string, (sbyte[], float)>();
        var rng = new Random(seed);
        int s = seed;
        foreach (var p in ParameterSchema.Enumerate(config))
        {
            int n = (int)p.Elements;
            switch (p.Kind)
            {
                case ParameterKind.TernaryWeight:
                {
                    var trits = new sbyte[n];
                    for (int i = 0; i < n; i++) trits[i] = (sbyte)(rng.Next(3) - 1);
                    int inFeatures = (int)p.Shape[1];
                    float alpha = (float)((0.8 + 0.4 * rng.NextDouble()) / Math.Sqrt(inFeatures)) * (rng.Next(2) == 0 ? 1 : -1);
                    string prefix = p.Name[..^".weight".Length];
                    weights.SetTernary(prefix, trits, alpha);
                    ternary[prefix] = (trits, alpha);
                    dense[p.Name] = trits.Select(t => alpha * t).ToArray();
                    break;
                }
                case ParameterKind.Full:
                {
                    float[] v = p.Name.EndsWith("norm.weight")
                        ? TestData.Normal(n, ++s, 0.1f).Select(x => 1 + x).ToArray()
                        : p.Shape.Length == 2
                            ? TestData.Normal(n, ++s, (float)(1 / Math.Sqrt(p.Shape[1])))
                            : TestData.Normal(n, ++s, 0.1f);
                    if (p.Name.StartsWith("y_embedder")) v = TestData.Normal(n, ++s, 0.5f);
                    weights.SetFull(p.Name, v);
                    dense[p.Name] = v;
                    break;
                }
            }
        }
        return (weights, dense, ternary);
    }
}
