using TerDiT.Runtime.Config;

namespace TerDiT.Runtime.Format;

/// <summary>One tensor as the container stores it.</summary>
public sealed record TditTensorDecl(string Name, TditDType DType, long[] Shape);

/// <summary>
/// The tensor set a <c>.tdit</c> file must hold for a config: exactly the parameters of
/// <see cref="ParameterSchema.Enumerate"/>, stored as
/// TernaryWeight → U8 with the packed shape of the file's ternary layout (<see cref="TernaryLayouts"/>,
/// looked up by name), TernaryScale → F32 [1], Full → F32 or F16 with exactly the schema shape.
/// </summary>
public static class TditSchema
{
    /// <summary>
    /// The declarations to hand <see cref="TditWriter"/> for a model, in schema order, with every
    /// full-precision tensor stored as <paramref name="fullPrecision"/> (F32 or F16) and every ternary
    /// weight in the layout named <paramref name="ternaryLayout"/>.
    /// </summary>
    public static IEnumerable<TditTensorDecl> Declarations(TerDiTConfig config, string? ternaryLayout,
        TditDType fullPrecision = TditDType.F32)
    {
        if (fullPrecision is not (TditDType.F32 or TditDType.F16))
            throw new ArgumentException($"full-precision tensors are stored as F32 or F16, not {fullPrecision}");
        foreach (var p in ParameterSchema.Enumerate(config))
        {
            yield return p.Kind switch
            {
                ParameterKind.TernaryWeight => new(p.Name, TditDType.U8, PackedShape(ternaryLayout, p, s => new ArgumentException(s))),
                ParameterKind.TernaryScale => new(p.Name, TditDType.F32, p.Shape),
                _ => new(p.Name, fullPrecision, p.Shape),
            };
        }
    }

    /// <summary>
    /// Checks that <paramref name="tensors"/> (by name) are exactly the config's parameters with the
    /// dtypes and shapes above, and returns each tensor's kind. Stops at the first missing tensor, so a
    /// hostile config (depth 10⁹) costs nothing. Errors come from <paramref name="error"/>.
    /// </summary>
    public static Dictionary<string, ParameterKind> Match(TerDiTConfig config, string? ternaryLayout,
        IReadOnlyDictionary<string, (TditDType DType, long[] Shape)> tensors, Func<string, Exception> error)
    {
        var kinds = new Dictionary<string, ParameterKind>(tensors.Count);
        foreach (var p in ParameterSchema.Enumerate(config))
        {
            if (!tensors.TryGetValue(p.Name, out var t))
                throw error($"tensor '{p.Name}' ({p.Kind} {Shape(p.Shape)}) required by the config is missing");
            switch (p.Kind)
            {
                case ParameterKind.TernaryWeight:
                    var packed = PackedShape(ternaryLayout, p, error);
                    if (t.DType != TditDType.U8 || !t.Shape.SequenceEqual(packed))
                        throw error($"tensor '{p.Name}' is {t.DType.Name()} {Shape(t.Shape)}; a ternary weight {Shape(p.Shape)} in layout '{ternaryLayout}' must be U8 {Shape(packed)}");
                    break;
                case ParameterKind.TernaryScale:
                    if (t.DType != TditDType.F32 || !t.Shape.SequenceEqual(p.Shape))
                        throw error($"tensor '{p.Name}' is {t.DType.Name()} {Shape(t.Shape)}; a ternary scale must be F32 {Shape(p.Shape)}");
                    break;
                default:
                    if (t.DType is not (TditDType.F32 or TditDType.F16) || !t.Shape.SequenceEqual(p.Shape))
                        throw error($"tensor '{p.Name}' is {t.DType.Name()} {Shape(t.Shape)}; the config needs F32 or F16 {Shape(p.Shape)}");
                    break;
            }
            if (!kinds.TryAdd(p.Name, p.Kind)) throw error($"the schema lists '{p.Name}' twice");
        }
        if (kinds.Count != tensors.Count)
        {
            var extra = tensors.Keys.Where(n => !kinds.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
            throw error($"{extra.Count} tensor(s) not in the config's parameter schema: {string.Join(", ", extra.Take(5).Select(n => $"'{n}'"))}{(extra.Count > 5 ? ", …" : "")}");
        }
        return kinds;
    }

    static long[] PackedShape(string? layoutName, ParameterSpec p, Func<string, Exception> error)
    {
        if (layoutName is null) throw error($"ternary weight '{p.Name}' but no ternary_layout");
        var layout = TernaryLayouts.Get(layoutName, error);
        try { return layout.PackedShape(p.Shape[0], p.Shape[1]); }
        catch (ArgumentOutOfRangeException e) { throw error($"ternary_layout '{layoutName}' cannot hold '{p.Name}' {Shape(p.Shape)}: {e.Message}"); }
    }

    /// <summary>"[a, b]".</summary>
    public static string Shape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
