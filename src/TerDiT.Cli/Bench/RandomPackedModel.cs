using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;

namespace TerDiT.Cli.Bench;

/// <summary>
/// Writes a packed model of random weights straight from the schema (no TorchSharp model, so a 4.2B file takes
/// seconds): uniform random trits, alphas ~ 1/√in, full-precision matrices ~ N(0, 1/in), norms ~ 1 + N(0, 0.01),
/// biases ~ N(0, 0.01), all non-zero (unlike the adaLN-zero initialisation, every block does work), F16.
/// For speed and memory measurements.
/// </summary>
static class RandomPackedModel
{
    public static void Write(TerDiTConfig config, string path, int seed)
    {
        var metadata = new TditMetadata
        {
            Config = config,
            Preset = Presets.All.ContainsKey(config.Name) ? config.Name : "custom",
            Classes = Enumerable.Range(0, config.NumClasses).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
            Source = $"random weights seed {seed}",
            Weights = TditWeights.Random,
            TernaryLayout = TernaryPacking.LayoutName,
        };
        using var writer = new TditWriter(path, metadata, TditSchema.Declarations(config, metadata.TernaryLayout, TditDType.F16));
        var rng = new Random(seed);
        // The 81 bytes of four valid codes (0, 1, 2; never 3): random bytes index them.
        byte[] valid = Enumerable.Range(0, 256).Where(b => (b & b >> 1 & 0x55) == 0).Select(b => (byte)b).ToArray();
        foreach (var p in ParameterSchema.Enumerate(config))
        {
            switch (p.Kind)
            {
                case ParameterKind.TernaryWeight:
                {
                    int rows = (int)p.Shape[0], cols = (int)p.Shape[1];
                    if (cols % TernaryPacking.BlockTrits != 0) throw new ArgumentException($"random packed models need input widths that are multiples of 128, '{p.Name}' has {cols}");
                    var bytes = new byte[TernaryPacking.PackedBytes(rows, cols)];
                    rng.NextBytes(bytes);
                    for (int i = 0; i < bytes.Length; i++) bytes[i] = valid[bytes[i] % valid.Length];
                    writer.Write(p.Name, bytes);
                    break;
                }
                case ParameterKind.TernaryScale:
                {
                    var w = ParameterSchema.Enumerate(config).First(q => q.Name == p.Name[..^".alpha".Length] + ".weight");
                    writer.Write(p.Name, [(float)((0.8 + 0.4 * rng.NextDouble()) / Math.Sqrt(w.Shape[1]))]);
                    break;
                }
                default:
                {
                    float std = p.Shape.Length == 2 ? (float)(1 / Math.Sqrt(p.Shape[1])) : 0.1f;
                    float offset = p.Name.EndsWith("norm.weight", StringComparison.Ordinal) ? 1 : 0;
                    var v = new float[p.Elements];
                    for (int i = 0; i < v.Length; i++)
                        v[i] = offset + std * (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
                    writer.Write(p.Name, v);
                    break;
                }
            }
        }
        writer.Commit();
    }
}
