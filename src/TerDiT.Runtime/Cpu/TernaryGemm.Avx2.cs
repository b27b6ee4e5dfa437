using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TerDiT.Runtime.Ops;

namespace TerDiT.Runtime.Cpu;

/// <summary>
/// The 256-bit counterparts of the AVX-512 block loads, stores and SwiGLU gates (8×8 transposes,
/// <see cref="Transpose8"/>): Exact blocks of 8 tokens (<see cref="F256"/>), A8 blocks of 16
/// (<see cref="S256"/>). Same arithmetic, so the same bits, as the element-wise code.
/// </summary>
public static unsafe partial class TernaryGemm
{
    /// <summary>Whether <typeparamref name="TV"/> has the in-register transposes here: AVX-512 lanes with AVX-512F, 256-bit lanes with AVX2.</summary>
    static bool HasTransposes<TV>() =>
        (typeof(TV) == typeof(Vector512<float>) || typeof(TV) == typeof(Vector512<short>)) ? Avx512F.IsSupported
        : (typeof(TV) == typeof(Vector256<float>) || typeof(TV) == typeof(Vector256<short>)) && Avx2.IsSupported;

    /// <summary>
    /// The block's transposed input by in-register transposes (Exact: floats; A8: codes and scales);
    /// false when <typeparamref name="TV"/> has none, or an A8 row is zero or not finite (the caller
    /// then takes <see cref="LoadScalar"/>).
    /// </summary>
    static bool LoadTransposed<TV, TE>(TE* xT, float* x, int k, int mCount, int kp, float* scales) where TE : unmanaged
    {
        if (!HasTransposes<TV>()) return false;
        if (typeof(TV) == typeof(Vector512<float>)) TransposeIn((float*)xT, x, k, mCount, kp);
        else if (typeof(TV) == typeof(Vector256<float>)) TransposeIn8((float*)xT, x, k, mCount, kp);
        else if (typeof(TV) == typeof(Vector512<short>)) return QuantizeTransposed((short*)xT, x, k, mCount, kp, scales);
        else return QuantizeTransposed16((short*)xT, x, k, mCount, kp, scales);
        return true;
    }

    /// <summary>Rows [a, …) of y by transposes where <typeparamref name="TV"/> has them; returns the first row left for <see cref="StoreScalar"/>.</summary>
    static int StoreTransposed<TV>(Job job, bool a8, byte* acc, int l, int m0, int mCount, int n0, int a, int b, float alpha, float* y, int ld, float* scales) =>
        !HasTransposes<TV>() ? a
        : l == 16 && !a8 || l == 32 ? StoreTransposed(job, a8, acc, l, m0, mCount, n0, a, b, alpha, y, ld, scales)
        : StoreTransposed8(job, a8, acc, l, m0, mCount, n0, a, b, alpha, y, ld, scales);

    /// <summary>xt (kp, 8) = the first <paramref name="mCount"/> rows of x (stride k) transposed, zero elsewhere.</summary>
    static void TransposeIn8(float* xt, float* x, int k, int mCount, int kp)
    {
        Vector256<float>* rows = stackalloc Vector256<float>[8];
        Vector256<float>* cols = stackalloc Vector256<float>[8];
        int k0 = 0;
        for (; k0 + 8 <= k; k0 += 8)
        {
            for (int t = 0; t < 8; t++) rows[t] = t < mCount ? Vector256.Load(x + (nint)t * k + k0) : default;
            Transpose8.Run(rows, cols);
            for (int j = 0; j < 8; j++) cols[j].Store(xt + (nint)(k0 + j) * 8);
        }
        new Span<float>(xt + (nint)k0 * 8, (kp - k0) * 8).Clear();
        for (; k0 < k; k0++)
            for (int t = 0; t < mCount; t++) xt[(nint)k0 * 8 + t] = x[(nint)t * k + k0];
    }

    /// <summary>
    /// A8 for 16 tokens, as <see cref="QuantizeTransposed"/> does for 32: per-row scales as
    /// <see cref="ActivationQuantizer.QuantizeRow"/>, the codes round_even(x · (127 / absmax)) written
    /// transposed into qt (kp, 16), zero elsewhere; false (nothing written) for a zero or non-finite row.
    /// </summary>
    static bool QuantizeTransposed16(short* qt, float* x, int k, int mCount, int kp, float* scales)
    {
        float* inv = stackalloc float[16];
        for (int t = 0; t < 16; t++)
        {
            if (t >= mCount) { inv[t] = 0; continue; }
            float absmax = ActivationQuantizer.AbsMax(x + (nint)t * k, k);
            if (!float.IsFinite(absmax) || absmax == 0) return false;
            scales[t] = absmax / 127f;
            inv[t] = 127f / absmax;
        }
        Vector256<float> inv0 = Vector256.Load(inv), inv1 = Vector256.Load(inv + 8);
        Vector256<float>* rows = stackalloc Vector256<float>[8];
        Vector256<float>* lo = stackalloc Vector256<float>[8];
        Vector256<float>* hi = stackalloc Vector256<float>[8];
        int k0 = 0;
        for (; k0 + 8 <= k; k0 += 8)
        {
            for (int t = 0; t < 8; t++) rows[t] = t < mCount ? Vector256.Load(x + (nint)t * k + k0) : default;
            Transpose8.Run(rows, lo);
            if (mCount > 8)
            {
                for (int t = 0; t < 8; t++) rows[t] = t + 8 < mCount ? Vector256.Load(x + (nint)(t + 8) * k + k0) : default;
                Transpose8.Run(rows, hi);
            }
            else for (int j = 0; j < 8; j++) hi[j] = default;
            for (int j = 0; j < 8; j++)
            {
                var q0 = Vector256.ConvertToInt32(Vector256.Round(lo[j] * inv0));
                var q1 = Vector256.ConvertToInt32(Vector256.Round(hi[j] * inv1));
                Vector256.Narrow(q0, q1).Store(qt + (nint)(k0 + j) * 16);
            }
        }
        new Span<short>(qt + (nint)k0 * 16, (kp - k0) * 16).Clear();
        for (; k0 < k; k0++)
            for (int t = 0; t < mCount; t++)
                qt[(nint)k0 * 16 + t] = (short)Math.Clamp(MathF.Round(x[(nint)t * k + k0] * inv[t], MidpointRounding.ToEven), -127f, 127f);
        return true;
    }

    /// <summary>
    /// <see cref="StoreTransposed"/> with 8×8 transposes: rows [a, a + 8·⌊(b − a) / 8⌋) of y from acc
    /// (L = 8 floats or 16 ints a row); returns the first row left for <see cref="StoreScalar"/>.
    /// </summary>
    static int StoreTransposed8(Job job, bool a8, byte* acc, int l, int m0, int mCount, int n0, int a, int b, float alpha, float* y, int ld, float* scales)
    {
        Vector256<float>* rows = stackalloc Vector256<float>[8];
        Vector256<float>* cols = stackalloc Vector256<float>[8];
        var valpha = Vector256.Create(alpha);
        int nb = a;
        for (; nb + 8 <= b; nb += 8)
            for (int group = 0; group * 8 < mCount; group++)
            {
                for (int i = 0; i < 8; i++) rows[i] = Vector256.Load((float*)(acc + (nint)(nb - n0 + i) * l * 4) + group * 8);
                Transpose8.Run(rows, cols);
                for (int t = group * 8; t < Math.Min(mCount, group * 8 + 8); t++)
                {
                    Vector256<float> v = a8
                        ? Vector256.ConvertToSingle(cols[t - group * 8].AsInt32()) * Vector256.Create(alpha * scales[t])
                        : valpha * cols[t - group * 8];
                    if (job.Bias != null) v += Vector256.Load(job.Bias + nb);
                    v.Store(y + (nint)(m0 + t) * ld + nb);
                }
            }
        return nb;
    }

    /// <summary><see cref="GateExact"/> on 8 token lanes.</summary>
    static void GateExact8(byte* acc, int f, float alpha1, float alpha3, float* xT)
    {
        var g1 = Vector256.Create(alpha1);
        var g3 = Vector256.Create(alpha3);
        float* a = (float*)acc, b = a + (nint)f * 8;
        for (int n = 0; n < f; n++)
            Elementwise.SwiGlu(g1 * Vector256.Load(a + (nint)n * 8), g3 * Vector256.Load(b + (nint)n * 8)).Store(xT + (nint)n * 8);
    }

    /// <summary><see cref="GateA8"/> on 16 token lanes (two halves of 8).</summary>
    static void GateA8x16(byte* acc, int f, float alpha1, float alpha3, float* scales1, int mCount, short* xT, float* scales2)
    {
        const int l = 16;
        var g1 = Vector256.Create(alpha1);
        var g3 = Vector256.Create(alpha3);
        Vector256<float> c1Lo = g1 * Vector256.Load(scales1), c1Hi = g1 * Vector256.Load(scales1 + 8);
        Vector256<float> c3Lo = g3 * Vector256.Load(scales1), c3Hi = g3 * Vector256.Load(scales1 + 8);
        Vector256<float> maxLo = default, maxHi = default, poisonLo = default, poisonHi = default;
        for (int n = 0; n < f; n++)
        {
            int* a = (int*)(acc + (nint)n * l * 4), b = (int*)(acc + (nint)(f + n) * l * 4);
            var lo = Elementwise.SwiGlu(Vector256.ConvertToSingle(Vector256.Load(a)) * c1Lo, Vector256.ConvertToSingle(Vector256.Load(b)) * c3Lo);
            var hi = Elementwise.SwiGlu(Vector256.ConvertToSingle(Vector256.Load(a + 8)) * c1Hi, Vector256.ConvertToSingle(Vector256.Load(b + 8)) * c3Hi);
            lo.Store((float*)a);
            hi.Store((float*)a + 8);
            maxLo = Vector256.MaxNative(maxLo, Vector256.Abs(lo));
            maxHi = Vector256.MaxNative(maxHi, Vector256.Abs(hi));
            poisonLo += lo * Vector256<float>.Zero;
            poisonHi += hi * Vector256<float>.Zero;
        }
        float* inv = stackalloc float[l];
        for (int t = 0; t < l; t++)
        {
            float absmax = t < 8 ? maxLo[t] : maxHi[t - 8];
            if (float.IsNaN(t < 8 ? poisonLo[t] : poisonHi[t - 8])) absmax = float.NaN;
            bool usable = t < mCount && float.IsFinite(absmax) && absmax != 0;
            scales2[t] = t >= mCount || absmax == 0 ? 0 : usable ? absmax / 127f : float.NaN;
            inv[t] = usable ? 127f / absmax : 0;
        }
        Vector256<float> invLo = Vector256.Load(inv), invHi = Vector256.Load(inv + 8);
        Vector256<int> keepLo = Vector256.GreaterThan(invLo, Vector256<float>.Zero).AsInt32();
        Vector256<int> keepHi = Vector256.GreaterThan(invHi, Vector256<float>.Zero).AsInt32();
        for (int n = 0; n < f; n++)
        {
            float* gRow = (float*)(acc + (nint)n * l * 4);
            var q0 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(gRow) * invLo)) & keepLo;
            var q1 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(gRow + 8) * invHi)) & keepHi;
            Vector256.Narrow(q0, q1).Store(xT + (nint)n * l);
        }
    }
}
