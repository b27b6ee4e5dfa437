using TerDiT.Runtime.Cpu;

namespace TerDiT.Runtime.Model;

/// <summary>
/// Several linear layers applied to the same input (wq/wk/wv, or w1/w3 of SwiGLU). The output holds
/// the parts' results one after another: for <c>rows</c> input rows, part i is (rows, Out_i)
/// row-major at <c>y[rows · (Out_0 + … + Out_{i−1}) ..]</c>. When every part is a
/// <see cref="PackedTernaryLinear"/> with the same mode and threads, they run as one
/// <see cref="StackedTernaryMatrix"/> GEMM (activation tables built once for all parts, each part's
/// result exactly its own layer's); otherwise each part runs on its own.
/// </summary>
public sealed class LinearStack
{
    readonly ILinearKernel[] _parts;
    readonly StackedTernaryMatrix? _fused;
    readonly float[]? _fusedBias;
    readonly GemmMode _mode;
    readonly TernaryGemmOptions? _gemm;

    public int InFeatures { get; }

    /// <summary>Sum of the parts' output features.</summary>
    public int OutFeatures { get; }

    /// <param name="parts">At least one layer, all with the same <see cref="ILinearKernel.InFeatures"/>.</param>
    public LinearStack(params ILinearKernel[] parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Length == 0) throw new ArgumentException("a linear stack needs at least one layer", nameof(parts));
        if (parts.Any(p => p is null || p.InFeatures != parts[0].InFeatures))
            throw new ArgumentException($"stacked linears must share their input width: {string.Join(", ", parts.Select(p => p?.InFeatures.ToString() ?? "null"))}", nameof(parts));
        _parts = parts.ToArray();
        InFeatures = parts[0].InFeatures;
        OutFeatures = parts.Sum(p => p.OutFeatures);
        var packed = parts.OfType<PackedTernaryLinear>().ToArray();
        if (parts.Length > 1 && packed.Length == parts.Length
            && packed.All(p => p.Mode == packed[0].Mode && p.Gemm == packed[0].Gemm))
        {
            _fused = new StackedTernaryMatrix(packed.Select(p => p.Weight).ToArray());
            _fusedBias = packed.Any(p => p.Bias != null)
                ? packed.SelectMany(p => p.Bias ?? new float[p.OutFeatures]).ToArray() : null;
            (_mode, _gemm) = (packed[0].Mode, packed[0].Gemm);
        }
    }

    /// <summary>Computes every part over the first <paramref name="rows"/> rows of x into y (layout in the class summary).</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, int rows)
    {
        if (x.Length < (long)rows * InFeatures || y.Length < (long)rows * OutFeatures)
            throw new ArgumentException($"linear stack ({OutFeatures}, {InFeatures}) over {rows} rows: x holds {x.Length}, y holds {y.Length} floats");
        if (_fused != null)
        {
            TernaryGemm.Multiply(x[..(rows * InFeatures)], rows, _fused, y[..(rows * OutFeatures)], _fusedBias, _mode, _gemm);
            return;
        }
        int at = 0;
        foreach (var p in _parts)
        {
            p.Forward(x, y.Slice(at, rows * p.OutFeatures), rows);
            at += rows * p.OutFeatures;
        }
    }
}
