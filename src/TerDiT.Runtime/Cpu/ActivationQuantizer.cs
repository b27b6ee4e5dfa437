using System.Numerics.Tensors;

namespace TerDiT.Runtime.Cpu;

/// <summary>
/// Per-token (per row) absmax int8 quantization of activations for <see cref="GemmMode.A8"/>:
/// <c>absmax = max |x|</c>, <c>scale = absmax / 127</c>, <c>q = clamp(round_even(x · (127 / absmax)), -127, 127)</c>,
/// so <c>x ≈ q · scale</c>. A zero row gives scale 0 and q = 0; a row with a NaN or infinity gives
/// scale NaN (its outputs become NaN) and q = 0.
/// </summary>
public static class ActivationQuantizer
{
    /// <summary>Scalar reference: quantizes <paramref name="x"/> into <paramref name="q"/> (same length) and returns the scale.</summary>
    public static float QuantizeRowReference(ReadOnlySpan<float> x, Span<sbyte> q)
    {
        CheckLengths(x, q);
        float absmax = 0;
        for (int i = 0; i < x.Length; i++) absmax = MathF.Max(absmax, MathF.Abs(x[i]));
        if (!float.IsFinite(absmax) || absmax == 0) return Degenerate(absmax, q);
        float inv = 127f / absmax;
        for (int i = 0; i < x.Length; i++)
            q[i] = (sbyte)Math.Clamp(MathF.Round(x[i] * inv, MidpointRounding.ToEven), -127f, 127f);
        return absmax / 127f;
    }

    /// <summary>
    /// Vectorised quantization, bit-identical to <see cref="QuantizeRowReference"/>;
    /// <paramref name="work"/> is scratch of at least <c>x.Length</c> floats.
    /// </summary>
    public static float QuantizeRow(ReadOnlySpan<float> x, Span<sbyte> q, Span<float> work)
    {
        CheckLengths(x, q);
        if (work.Length < x.Length) throw new ArgumentException($"work needs {x.Length} floats, has {work.Length}", nameof(work));
        if (x.IsEmpty) return 0;
        float absmax = MathF.Abs(TensorPrimitives.MaxMagnitude(x));
        if (!float.IsFinite(absmax) || absmax == 0) return Degenerate(absmax, q);
        var w = work[..x.Length];
        TensorPrimitives.Multiply(x, 127f / absmax, w);
        TensorPrimitives.Round(w, w); // to nearest even; |w| <= 127 (+ rounding), so the clamp below is a no-op guard
        TensorPrimitives.Clamp(w, -127f, 127f, w);
        TensorPrimitives.ConvertTruncating<float, sbyte>(w, q);
        return absmax / 127f;
    }

    static float Degenerate(float absmax, Span<sbyte> q)
    {
        q.Clear();
        return absmax == 0 ? 0 : float.NaN;
    }

    static void CheckLengths(ReadOnlySpan<float> x, Span<sbyte> q)
    {
        if (q.Length != x.Length) throw new ArgumentException($"q has {q.Length} elements, x has {x.Length}", nameof(q));
    }
}
