namespace TerDiT.Runtime.Format;

/// <summary>
/// The safetensors dtypes a <c>.tdit</c> file uses: <see cref="U8"/> for packed ternary weights
/// (opaque bytes, layout named by the <c>ternary_layout</c> metadata), <see cref="F32"/> or
/// <see cref="F16"/> for full-precision tensors, <see cref="F32"/> for ternary scales (alpha).
/// </summary>
public enum TditDType
{
    U8,
    F16,
    F32,
}

public static class TditDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this TditDType t) => t switch
    {
        TditDType.U8 => 1,
        TditDType.F16 => 2,
        TditDType.F32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    /// <summary>The safetensors header spelling ("U8", "F16", "F32").</summary>
    public static string Name(this TditDType t) => t switch
    {
        TditDType.U8 => "U8",
        TditDType.F16 => "F16",
        TditDType.F32 => "F32",
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    /// <summary>Parses a safetensors dtype name; false for any dtype this format does not use.</summary>
    public static bool TryParse(string name, out TditDType t)
    {
        switch (name)
        {
            case "U8": t = TditDType.U8; return true;
            case "F16": t = TditDType.F16; return true;
            case "F32": t = TditDType.F32; return true;
            default: t = default; return false;
        }
    }
}
