using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;

namespace TerDiT.Runtime.Model;

/// <summary>
/// Weights of an open <see cref="TditFile"/>: full-precision tensors copied to floats (F16 widened),
/// ternary layers as <see cref="PackedTernaryLinear"/> kernels. Weights in the kernels' own layout
/// (<see cref="TernaryLayouts.Terdit2Bit128"/>) are used in place from the file's mapped bytes (no copy;
/// the file must stay open while the model is used); any other layout of <see cref="TernaryLayouts"/> is
/// unpacked with its reference unpack and packed into that layout once, at load. The file has already
/// validated every name, dtype, shape and packed byte.
/// </summary>
public sealed class TditWeightSource(TditFile file) : IWeightSource
{
    public TerDiTConfig Config => file.Config;

    public float[] Full(string name) => file.ReadFloats(name);

    public ILinearKernel TernaryLinear(string prefix, float[]? bias, RuntimeOptions options) =>
        new PackedTernaryLinear(TernaryWeight(prefix), bias, options.Mode, options.Threads);

    public PackedTernaryMatrix TernaryWeight(string prefix)
    {
        var packed = file.Tensor(prefix + ".weight");
        var spec = ParameterSchema.Enumerate(Config).First(p => p.Name == prefix + ".weight");
        int rows = (int)spec.Shape[0], cols = (int)spec.Shape[1];
        float alpha = file.Floats(prefix + ".alpha")[0];
        var layout = file.TernaryLayout ?? throw new InvalidOperationException($"{Path.GetFileName(file.Path)} holds a full-precision model");
        var bytes = file.Bytes(packed.Name);
        PackedTernaryMatrix matrix;
        try
        {
            matrix = new PackedTernaryMatrix(rows, cols, alpha, layout == TernaryLayouts.Terdit2Bit128
                ? new MappedBytes(bytes).Memory
                : TernaryPacking.Pack(layout.Unpack(bytes, rows, cols), rows, cols));
        }
        catch (ArgumentException e)
        {
            throw new TditFormatException($"{Path.GetFileName(file.Path)}: ternary weight '{prefix}.weight' ({packed.ByteLength} bytes) "
                + $"is not in the kernels' packed layout: {e.Message}", e);
        }
        return matrix;
    }
}
