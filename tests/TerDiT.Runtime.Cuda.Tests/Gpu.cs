using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Model;
using Xunit;

namespace TerDiT.Runtime.Cuda.Tests;

/// <summary>
/// The GPU the tests run on, opened once for the test process; where there is none, <see cref="Ops"/> skips the
/// calling test with the reason (what is missing), so a CI run without a GPU lists every GPU test as skipped.
/// </summary>
static class Gpu
{
    static readonly Lazy<(CudaOps? Ops, string? Missing)> State = new(() =>
    {
        try
        {
            var device = CudaDevice.Open();
            return (new CudaOps(device), null);
        }
        catch (CudaUnavailableException e) { return (null, e.Message); }
    });

    /// <summary>The kernels on the test GPU, or a skip naming what is missing.</summary>
    public static CudaOps Ops
    {
        get
        {
            var (ops, missing) = State.Value;
            if (ops == null) Assert.Skip($"needs an NVIDIA GPU with the CUDA driver and NVRTC: {missing}");
            return ops;
        }
    }

    /// <summary>Whether a GPU is usable here (for tests of the no-GPU error path).</summary>
    public static bool Available => State.Value.Ops != null;
    public static string? Missing => State.Value.Missing;
}

/// <summary>Deterministic random test data.</summary>
static class TestData
{
    /// <summary>n normal values (Box–Muller) with standard deviation <paramref name="scale"/>.</summary>
    public static float[] Normal(int n, int seed, float scale = 1)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++)
            v[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return v;
    }

    public static sbyte[] Trits(int n, int seed)
    {
        var rng = new Random(seed);
        var t = new sbyte[n];
        for (int i = 0; i < n; i++) t[i] = (sbyte)(rng.Next(3) - 1);
        return t;
    }

    public static PackedTernaryMatrix Matrix(int rows, int cols, int seed, float alpha = 0.05f) =>
        PackedTernaryMatrix.FromTrits(Trits(rows * cols, seed), rows, cols, alpha);

    /// <summary>‖a − b‖ / ‖b‖ in double.</summary>
    public static double RelativeL2(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double e = a[i] - (double)b[i];
            num += e * e;
            den += (double)b[i] * b[i];
        }
        return Math.Sqrt(num / den);
    }

    /// <summary>
    /// Random weights for every parameter of <paramref name="config"/>, non-zero everywhere (adaLN and the final
    /// layer too, so that no block is the identity and the output depends on every layer).
    /// </summary>
    public static InMemoryWeights Weights(TerDiTConfig config, int seed)
    {
        var weights = new InMemoryWeights(config);
        var rng = new Random(seed);
        foreach (var p in ParameterSchema.Enumerate(config))
        {
            int n = (int)p.Elements;
            if (p.Kind == ParameterKind.TernaryWeight)
            {
                float alpha = (float)((0.8 + 0.4 * rng.NextDouble()) / Math.Sqrt(p.Shape[1])) * (rng.Next(2) == 0 ? 1 : -1);
                weights.SetTernary(p.Name[..^".weight".Length], Trits(n, rng.Next()), alpha);
            }
            else if (p.Kind == ParameterKind.Full)
            {
                float[] v = p.Name.EndsWith("norm.weight") ? Normal(n, rng.Next(), 0.1f).Select(x => 1 + x).ToArray()
                    : p.Shape.Length == 2 ? Normal(n, rng.Next(), (float)(1 / Math.Sqrt(p.Shape[1])))
                    : Normal(n, rng.Next(), 0.1f);
                if (p.Name.StartsWith("y_embedder", StringComparison.Ordinal)) v = Normal(n, rng.Next(), 0.5f);
                weights.SetFull(p.Name, v);
            }
        }
        return weights;
    }
}
