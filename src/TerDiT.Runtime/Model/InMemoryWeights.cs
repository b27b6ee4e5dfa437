using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;

namespace TerDiT.Runtime.Model;

/// <summary>
/// Weights held in managed arrays: full-precision tensors as floats and ternary layers as trits
/// (one sbyte in {−1, 0, +1} per weight) with their alpha. Every tensor is checked against
/// <see cref="ParameterSchema"/> when added; <see cref="RuntimeModel"/> asks for the ones it needs.
/// Ternary layers are packed once (<see cref="PackedTernaryMatrix.FromTrits"/>) and run as
/// <see cref="PackedTernaryLinear"/> kernels.
/// </summary>
public sealed class InMemoryWeights : IWeightSource
{
    readonly Dictionary<string, ParameterSpec> _schema;
    readonly Dictionary<string, float[]> _full = new();
    readonly Dictionary<string, (sbyte[] Trits, float Alpha)> _ternary = new();

    public TerDiTConfig Config { get; }

    public InMemoryWeights(TerDiTConfig config)
    {
        Config = config.Validate();
        _schema = ParameterSchema.Enumerate(config).ToDictionary(p => p.Name);
    }

    /// <summary>Adds a full-precision tensor (flattened row-major).</summary>
    public InMemoryWeights SetFull(string name, float[] values)
    {
        var spec = Spec(name);
        if (spec.Kind != ParameterKind.Full) throw new ArgumentException($"parameter '{name}' is {spec.Kind}, not full precision");
        if (values.Length != spec.Elements)
            throw new ArgumentException($"parameter '{name}' has {values.Length} elements, expected {spec.Elements} ({string.Join("×", spec.Shape)})");
        _full[name] = values;
        return this;
    }

    /// <summary>Adds the ternary layer <c>{prefix}.weight</c> as trits (Out, In) with its alpha.</summary>
    public InMemoryWeights SetTernary(string prefix, sbyte[] trits, float alpha)
    {
        var spec = Spec(prefix + ".weight");
        if (spec.Kind != ParameterKind.TernaryWeight) throw new ArgumentException($"parameter '{prefix}.weight' is {spec.Kind}, not a ternary weight");
        if (trits.Length != spec.Elements)
            throw new ArgumentException($"ternary weight '{prefix}.weight' has {trits.Length} trits, expected {spec.Elements}");
        _ternary[prefix] = (trits, alpha);
        return this;
    }

    public float[] Full(string name) =>
        _full.TryGetValue(name, out var v) ? v : throw new KeyNotFoundException($"weight '{name}' was not provided");

    public ILinearKernel TernaryLinear(string prefix, float[]? bias, RuntimeOptions options) =>
        new PackedTernaryLinear(TernaryWeight(prefix), bias, options.Mode, options.Threads);

    public PackedTernaryMatrix TernaryWeight(string prefix)
    {
        if (!_ternary.TryGetValue(prefix, out var t)) throw new KeyNotFoundException($"ternary weight '{prefix}.weight' was not provided");
        var shape = _schema[prefix + ".weight"].Shape;
        return PackedTernaryMatrix.FromTrits(t.Trits, (int)shape[0], (int)shape[1], t.Alpha);
    }

    ParameterSpec Spec(string name) =>
        _schema.TryGetValue(name, out var s) ? s : throw new ArgumentException($"'{name}' is not a parameter of model config '{Config.Name}'");
}
