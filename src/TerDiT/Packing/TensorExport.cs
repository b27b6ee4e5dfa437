using System.Runtime.InteropServices;
using TerDiT.Model;
using static TorchSharp.torch;

namespace TerDiT.Packing;

/// <summary>
/// TorchSharp parameters as the plain arrays the runtime and the packed format take: one place that
/// turns a full-precision tensor into float32 values and a ternary latent weight into the trits the
/// TorchSharp forward uses (<see cref="TernaryLinear.Ternarize"/>).
/// </summary>
static class TensorExport
{
    /// <summary>The tensor's values as float32, row-major (any device, any float dtype); throws naming it on a NaN or infinity.</summary>
    public static float[] Floats(string name, Tensor t)
    {
        using var f = t.detach().to(ScalarType.Float32, CPU).contiguous();
        var values = MemoryMarshal.Cast<byte, float>(f.bytes).ToArray();
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) throw new InvalidDataException($"parameter '{name}' holds {values[i]} at element {i}");
        return values;
    }

    /// <summary>
    /// The trits (row-major, each −1, 0 or 1) of a ternary latent weight (out, in): exactly what
    /// <see cref="TernaryLinear"/>'s forward multiplies by alpha. Throws naming it when mean|W| is not finite.
    /// </summary>
    public static sbyte[] Trits(string name, Tensor weight)
    {
        var (trits, gamma) = TernaryLinear.Ternarize(weight);
        using (trits)
        {
            if (!float.IsFinite(gamma)) throw new InvalidDataException($"ternary weight '{name}' has mean |W| = {gamma} (NaN or infinite values)");
            using var cpu = trits.cpu().contiguous();
            return MemoryMarshal.Cast<byte, sbyte>(cpu.bytes).ToArray();
        }
    }

    /// <summary>A ternary layer's scale alpha (shape (1)); throws naming it when not finite.</summary>
    public static float Scalar(string name, Tensor t)
    {
        var v = Floats(name, t);
        if (v.Length != 1) throw new InvalidDataException($"parameter '{name}' has {v.Length} elements, expected 1");
        return v[0];
    }
}
