namespace TerDiT.Runtime.Cpu;

/// <summary>
/// Ternary matrices with the same input width K stacked row-wise into one packed matrix, each
/// keeping its own alpha: <see cref="TernaryGemm"/> then builds the activation tables once for all
/// of them (e.g. wq/wk/wv, or w1/w3 of SwiGLU). Part i covers rows
/// <c>[RowOffset(i), RowOffset(i) + Parts[i].Rows)</c>. Nothing is copied: the kernel reads each
/// part's packed bytes (possibly memory-mapped) in place.
/// </summary>
public sealed class StackedTernaryMatrix
{
    /// <summary>The stacked matrices, in order.</summary>
    public IReadOnlyList<PackedTernaryMatrix> Parts { get; }

    /// <summary>Input features K, shared by every part.</summary>
    public int Cols { get; }

    /// <summary>Total output features: the sum of the parts' rows.</summary>
    public int Rows { get; }

    internal int RowBytes { get; }
    readonly int[] _offsets;

    /// <summary>Stacks <paramref name="parts"/> (at least one, all with the same <see cref="PackedTernaryMatrix.Cols"/>).</summary>
    public StackedTernaryMatrix(params PackedTernaryMatrix[] parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Length == 0) throw new ArgumentException("a stack needs at least one matrix", nameof(parts));
        foreach (var p in parts) ArgumentNullException.ThrowIfNull(p, nameof(parts));
        int cols = parts[0].Cols;
        if (parts.Any(p => p.Cols != cols))
            throw new ArgumentException($"stacked matrices must share K: got {string.Join(", ", parts.Select(p => $"({p.Rows}, {p.Cols})"))}", nameof(parts));
        _offsets = new int[parts.Length];
        long rows = 0;
        for (int i = 0; i < parts.Length; i++) { _offsets[i] = (int)rows; rows += parts[i].Rows; }
        if (rows > int.MaxValue) throw new ArgumentException($"stack has {rows} rows, more than {int.MaxValue}", nameof(parts));
        Parts = parts.ToArray();
        Cols = cols;
        Rows = (int)rows;
        RowBytes = parts[0].RowBytes;
    }

    /// <summary>First stacked row of part <paramref name="i"/>.</summary>
    public int RowOffset(int i) => _offsets[i];
}
