using TerDiT.Runtime.Config;

namespace TerDiT.Runtime.Format;

/// <summary>
/// Byte counts of a <c>.tdit</c> file. <see cref="FileBytes"/> = <see cref="HeaderBytes"/> +
/// <see cref="PackedTernaryBytes"/> + <see cref="ScaleBytes"/> + <see cref="FullPrecisionBytes"/>.
/// </summary>
/// <param name="HeaderBytes">Length prefix, JSON header and padding (= data section start).</param>
/// <param name="PackedTernaryBytes">The U8 packed ternary weights.</param>
/// <param name="ScaleBytes">The F32 ternary scales (alpha).</param>
/// <param name="FullPrecisionBytes">The F32/F16 full-precision tensors.</param>
/// <param name="Fp32EquivalentBytes">4 bytes × every parameter of the schema: the model stored as fp32.</param>
public sealed record TditSizes(long FileBytes, long HeaderBytes, long PackedTernaryBytes, long ScaleBytes,
    long FullPrecisionBytes, long Fp32EquivalentBytes)
{
    /// <summary>How many times smaller than the fp32 weights the file is.</summary>
    public double CompressionRatio => (double)Fp32EquivalentBytes / FileBytes;

    /// <summary>Sizes of a file laid out as <paramref name="tensors"/> after <paramref name="headerBytes"/>.</summary>
    public static TditSizes Of(TerDiTConfig config, long headerBytes, IEnumerable<TditTensorInfo> tensors)
    {
        long packed = 0, scales = 0, full = 0;
        foreach (var t in tensors)
        {
            switch (t.Kind)
            {
                case ParameterKind.TernaryWeight: packed += t.ByteLength; break;
                case ParameterKind.TernaryScale: scales += t.ByteLength; break;
                default: full += t.ByteLength; break;
            }
        }
        return new(headerBytes + packed + scales + full, headerBytes, packed, scales, full, 4 * ParameterSchema.ParameterCount(config));
    }

    /// <summary>
    /// The exact sizes of the file <see cref="TditWriter"/> would write for <paramref name="metadata"/>
    /// with the schema's declarations (<see cref="TditSchema.Declarations"/>), without writing it.
    /// </summary>
    public static TditSizes Estimate(TditMetadata metadata, TditDType fullPrecision = TditDType.F32)
    {
        var decls = TditSchema.Declarations(metadata.Config, metadata.TernaryLayout, fullPrecision).ToList();
        var kinds = TditSchema.Match(metadata.Config, metadata.TernaryLayout,
            decls.ToDictionary(d => d.Name, d => (d.DType, d.Shape)), s => new ArgumentException(s));
        var layout = TditLayout.Plan(metadata.ToStrings(), decls, kinds);
        return Of(metadata.Config, layout.DataStart, layout.Tensors);
    }
}
