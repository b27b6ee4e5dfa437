using System.Runtime.Intrinsics;

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

    /// <summary>Vectorised quantization, bit-identical to <see cref="QuantizeRowReference"/> (the widest accelerated vectors, scalar tail).</summary>
    public static unsafe float QuantizeRow(ReadOnlySpan<float> x, Span<sbyte> q)
    {
        CheckLengths(x, q);
        if (x.IsEmpty) return 0;
        int n = x.Length, i = 0;
        fixed (float* px = x)
        fixed (sbyte* pq = q)
        {
            float absmax = AbsMax(px, n);
            if (!float.IsFinite(absmax) || absmax == 0) return Degenerate(absmax, q);
            float inv = 127f / absmax;
            // |x · inv| ≤ 127 (+ one rounding), so no clamp is needed before the narrowing.
            if (Vector512.IsHardwareAccelerated)
            {
                var vi = Vector512.Create(inv);
                for (; i + 64 <= n; i += 64)
                {
                    var a = Vector512.Narrow(Q(px + i, vi), Q(px + i + 16, vi));
                    var b = Vector512.Narrow(Q(px + i + 32, vi), Q(px + i + 48, vi));
                    Vector512.Narrow(a, b).Store(pq + i);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var vi = Vector256.Create(inv);
                for (; i + 32 <= n; i += 32)
                {
                    var a = Vector256.Narrow(Q(px + i, vi), Q(px + i + 8, vi));
                    var b = Vector256.Narrow(Q(px + i + 16, vi), Q(px + i + 24, vi));
                    Vector256.Narrow(a, b).Store(pq + i);
                }
            }
            else if (Vector128.IsHardwareAccelerated)
            {
                var vi = Vector128.Create(inv);
                for (; i + 16 <= n; i += 16)
                {
                    var a = Vector128.Narrow(Q(px + i, vi), Q(px + i + 4, vi));
                    var b = Vector128.Narrow(Q(px + i + 8, vi), Q(px + i + 12, vi));
                    Vector128.Narrow(a, b).Store(pq + i);
                }
            }
            for (; i < n; i++) pq[i] = (sbyte)Math.Clamp(MathF.Round(px[i] * inv, MidpointRounding.ToEven), -127f, 127f);
            return absmax / 127f;
        }
    }

    /// <summary>max |x|, or NaN when any element is NaN or infinite (x · 0 is then NaN).</summary>
    internal static unsafe float AbsMax(float* x, int n)
    {
        float m = 0, poison = 0;
        int i = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            Vector512<float> vm = default, vp = default;
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(x + i);
                vm = Vector512.MaxNative(vm, Vector512.Abs(v));
                vp += v * Vector512<float>.Zero;
            }
            m = MaxOf(Vector256.MaxNative(vm.GetLower(), vm.GetUpper()));
            poison = Vector512.Sum(vp);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> vm = default, vp = default;
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(x + i);
                vm = Vector256.MaxNative(vm, Vector256.Abs(v));
                vp += v * Vector256<float>.Zero;
            }
            m = MaxOf(vm);
            poison = Vector256.Sum(vp);
        }
        for (; i < n; i++)
        {
            m = MathF.Max(m, MathF.Abs(x[i]));
            poison += x[i] * 0;
        }
        return float.IsNaN(poison) ? float.NaN : m;
    }

    static float MaxOf(Vector256<float> v)
    {
        float m = 0;
        for (int i = 0; i < Vector256<float>.Count; i++) m = MathF.Max(m, v[i]);
        return m;
    }

    static unsafe Vector512<int> Q(float* p, Vector512<float> inv) => Vector512.ConvertToInt32(Vector512.Round(Vector512.Load(p) * inv));
    static unsafe Vector256<int> Q(float* p, Vector256<float> inv) => Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(p) * inv));
    static unsafe Vector128<int> Q(float* p, Vector128<float> inv) => Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(p) * inv));

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
