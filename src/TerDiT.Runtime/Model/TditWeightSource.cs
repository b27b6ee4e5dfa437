using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;

namespace TerDiT.Runtime.Model;

/// <summary>
/// Weights of an open <see cref="TditFile"/>: full-precision tensors copied to floats (F16 widened),
/// ternary layers as <see cref="PackedTernaryLinear"/> kernels over the file's mapped bytes (no copy;
/// the file must stay open while the model is used). The file has already validated every name,
/// dtype and shape against the config's schema.
/// </summary>
public sealed class TditWeightSource(TditFile file) : IWeightSource
{
    /// <summary>
    /// Packed shape of a ternary weight in the kernels' layout (<see cref="TernaryPacking"/>):
    /// <c>[rows, RowBytes(cols)]</c>, rows padded to whole 128-trit blocks. Pass it to
    /// <see cref="TditFile.Open"/> and <see cref="TditWriter"/>; for widths that are multiples of 128
    /// it equals the format's default <see cref="TditSchema.FourPerByte"/>.
    /// </summary>
    public static readonly PackedShapeFn PackedShape = (_, rows, cols) =>
        cols is > 0 and <= int.MaxValue ? [rows, TernaryPacking.RowBytes((int)cols)] : null;

    public TerDiTConfig Config => file.Config;

    public float[] Full(string name) => file.ReadFloats(name);

    public ILinearKernel TernaryLinear(string prefix, float[]? bias, RuntimeOptions options)
    {
        var packed = file.Tensor(prefix + ".weight");
        var spec = ParameterSchema.Enumerate(Config).First(p => p.Name == prefix + ".weight");
        float alpha = file.Floats(prefix + ".alpha")[0];
        PackedTernaryMatrix matrix;
        try
        {
            matrix = new PackedTernaryMatrix((int)spec.Shape[0], (int)spec.Shape[1], alpha, new MappedBytes(file.Bytes(prefix + ".weight")).Memory);
        }
        catch (ArgumentException e)
        {
            throw new TditFormatException($"{Path.GetFileName(file.Path)}: ternary weight '{prefix}.weight' ({packed.ByteLength} bytes) "
                + $"is not in the kernels' packed layout: {e.Message}", e);
        }
        return new PackedTernaryLinear(matrix, bias, options.Mode, options.Threads);
    }
}
