using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TerDiT.Runtime.Ops;

namespace TerDiT.Runtime.Cpu;

/// <summary>
/// The 256-bit counterparts of the AVX-512 block loads, stores and SwiGLU gates (8×8 transposes,
/// <see cref="Transpose8"/>): Exact blocks of 16 tokens (<see cref="F256x2"/>; 8 with
/// <see cref="F256"/> for few tokens), A8 blocks of 32 (<see cref="S256x2"/>), as on AVX-512. Same
/// arithmetic, so the same bits, as the element-wise code.
/// </summary>
public static unsafe partial class TernaryGemm
{
    /// <summary>Whether the lanes <typeparamref name="TL"/> have in-register transposes here: 512-bit lanes with AVX-512F, 256-bit ones with AVX2.</summary>
    static bool HasTransposes<TL>() =>
        typeof(TL) == typeof(F512) || typeof(TL) == typeof(S512) ? Avx512F.IsSupported
        : (typeof(TL) == typeof(F256) || typeof(TL) == typeof(F256x2) || typeof(TL) == typeof(S256x2)) && Avx2.IsSupported;

    /// <summary>
    /// The block's transposed input by in-register transposes (Exact: floats; A8: codes and scales);
    /// false when <typeparamref name="TL"/> has none, or an A8 row is zero or not finite (the caller
    /// then takes <see cref="LoadScalar"/>).
    /// </summary>
    static bool LoadTransposed<TE, TL>(TE* xT, float* x, int k, int mCount, int kp, float* scales) where TE : unmanaged
    {
        if (!HasTransposes<TL>()) return false;
        if (typeof(TL) == typeof(F512)) TransposeIn((float*)xT, x, k, mCount, kp);
        else if (typeof(TL) == typeof(F256)) TransposeIn8((float*)xT, x, k, mCount, kp, 8);
        else if (typeof(TL) == typeof(F256x2)) TransposeIn8((float*)xT, x, k, mCount, kp, 16);
        else if (typeof(TL) == typeof(S512)) return QuantizeTransposed((short*)xT, x, k, mCount, kp, scales);
        else return QuantizeTransposed8((short*)xT, x, k, mCount, kp, scales);
        return true;
    }

    /// <summary>Rows [a, …) of y by transposes where <typeparamref name="TL"/> has them; returns the first row left for <see cref="StoreScalar"/>.</summary>
    static int StoreTransposed<TL>(Job job, bool a8, byte* acc, int l, int m0, int mCount, int n0, int a, int b, float alpha, float* y, int ld, float* scales) =>
        !HasTransposes<TL>() ? a
        : typeof(TL) == typeof(F512) || typeof(TL) == typeof(S512) ? StoreTransposed(job, a8, acc, l, m0, mCount, n0, a, b, alpha, y, ld, scales)
        : StoreTransposed8(job, a8, acc, l, m0, mCount, n0, a, b, alpha, y, ld, scales);

    /// <summary>
    /// xt (kp, l) = the first <paramref name="mCount"/> rows of x (stride k) transposed, zero elsewhere,
    /// for l = 8 or 16 tokens (8×8 tiles, token group g at lanes [8g, 8g + 8)).
    /// </summary>
    static void TransposeIn8(float* xt, float* x, int k, int mCount, int kp, int l)
    {
        Vector256<float>* rows = stackalloc Vector256<float>[8];
        Vector256<float>* cols = stackalloc Vector256<float>[8];
        int k0 = 0;
        for (; k0 + 8 <= k; k0 += 8)
            for (int g = 0; g < l; g += 8)
            {
                for (int t = 0; t < 8; t++) rows[t] = g + t < mCount ? Vector256.Load(x + (nint)(g + t) * k + k0) : default;
                Transpose8.Run(rows, cols);
                for (int j = 0; j < 8; j++) cols[j].Store(xt + (nint)(k0 + j) * l + g);
            }
        new Span<float>(xt + (nint)k0 * l, (kp - k0) * l).Clear();
        for (; k0 < k; k0++)
            for (int t = 0; t < mCount; t++) xt[(nint)k0 * l + t] = x[(nint)t * k + k0];
    }

    /// <summary>
    /// <see cref="QuantizeTransposed"/> (32 tokens) with 8×8 transposes: per-row scales as
    /// <see cref="ActivationQuantizer.QuantizeRow"/>, the codes round_even(x · (127 / absmax)) written
    /// transposed into qt (kp, 32), zero elsewhere; false (nothing written) for a zero or non-finite row.
    /// </summary>
    static bool QuantizeTransposed8(short* qt, float* x, int k, int mCount, int kp, float* scales)
    {
        const int l = 32;
        float* inv = stackalloc float[l];
        for (int t = 0; t < l; t++)
        {
            if (t >= mCount) { inv[t] = 0; continue; }
            float absmax = ActivationQuantizer.AbsMax(x + (nint)t * k, k);
            if (!float.IsFinite(absmax) || absmax == 0) return false;
            scales[t] = absmax / 127f;
            inv[t] = 127f / absmax;
        }
        Vector256<float>* rows = stackalloc Vector256<float>[8];
        Vector256<float>* lo = stackalloc Vector256<float>[8];
        Vector256<float>* hi = stackalloc Vector256<float>[8];
        int k0 = 0;
        for (; k0 + 8 <= k; k0 += 8)
            for (int g = 0; g < l && g < mCount; g += 16)   // groups past mCount are written by the clear below
            {
                for (int t = 0; t < 8; t++) rows[t] = g + t < mCount ? Vector256.Load(x + (nint)(g + t) * k + k0) : default;
                Transpose8.Run(rows, lo);
                for (int t = 0; t < 8; t++) rows[t] = g + 8 + t < mCount ? Vector256.Load(x + (nint)(g + 8 + t) * k + k0) : default;
                Transpose8.Run(rows, hi);
                Vector256<float> inv0 = Vector256.Load(inv + g), inv1 = Vector256.Load(inv + g + 8);
                for (int j = 0; j < 8; j++)
                {
                    var q0 = Vector256.ConvertToInt32(Vector256.Round(lo[j] * inv0));
                    var q1 = Vector256.ConvertToInt32(Vector256.Round(hi[j] * inv1));
                    Vector256.Narrow(q0, q1).Store(qt + (nint)(k0 + j) * l + g);
                }
            }
        if (mCount <= 16)
            for (int kk = 0; kk < k0; kk++) new Span<short>(qt + (nint)kk * l + 16, 16).Clear();
        new Span<short>(qt + (nint)k0 * l, (kp - k0) * l).Clear();
        for (; k0 < k; k0++)
            for (int t = 0; t < mCount; t++)
                qt[(nint)k0 * l + t] = (short)Math.Clamp(MathF.Round(x[(nint)t * k + k0] * inv[t], MidpointRounding.ToEven), -127f, 127f);
        return true;
    }

    /// <summary>
    /// <see cref="StoreTransposed"/> with 8×8 transposes: rows [a, a + 8·⌊(b − a) / 8⌋) of y from acc
    /// (L = 8 or 16 floats, or 32 ints, a row); returns the first row left for <see cref="StoreScalar"/>.
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

    /// <summary><see cref="GateExact"/> on 16 token lanes (two vectors of 8).</summary>
    static void GateExact8(byte* acc, int f, float alpha1, float alpha3, float* xT)
    {
        const int l = 16;
        var g1 = Vector256.Create(alpha1);
        var g3 = Vector256.Create(alpha3);
        float* a = (float*)acc, b = a + (nint)f * l;
        for (nint i = 0; i < (nint)f * l; i += 8)
            Elementwise.SwiGlu(g1 * Vector256.Load(a + i), g3 * Vector256.Load(b + i)).Store(xT + i);
    }

    /// <summary><see cref="GateA8"/> on 32 token lanes (four vectors of 8).</summary>
    static void GateA8x8(byte* acc, int f, float alpha1, float alpha3, float* scales1, int mCount, short* xT, float* scales2)
    {
        const int l = 32, groups = l / 8;
        var g1 = Vector256.Create(alpha1);
        var g3 = Vector256.Create(alpha3);
        Vector256<float>* c1 = stackalloc Vector256<float>[groups];
        Vector256<float>* c3 = stackalloc Vector256<float>[groups];
        Vector256<float>* max = stackalloc Vector256<float>[groups];
        Vector256<float>* poison = stackalloc Vector256<float>[groups];
        for (int h = 0; h < groups; h++)
        {
            c1[h] = g1 * Vector256.Load(scales1 + 8 * h);
            c3[h] = g3 * Vector256.Load(scales1 + 8 * h);
            max[h] = poison[h] = default;
        }
        for (int n = 0; n < f; n++)
        {
            int* a = (int*)(acc + (nint)n * l * 4), b = (int*)(acc + (nint)(f + n) * l * 4);
            for (int h = 0; h < groups; h++)
            {
                var gate = Elementwise.SwiGlu(Vector256.ConvertToSingle(Vector256.Load(a + 8 * h)) * c1[h], Vector256.ConvertToSingle(Vector256.Load(b + 8 * h)) * c3[h]);
                gate.Store((float*)a + 8 * h);
                max[h] = Vector256.MaxNative(max[h], Vector256.Abs(gate));
                poison[h] += gate * Vector256<float>.Zero;
            }
        }
        float* inv = stackalloc float[l];
        for (int t = 0; t < l; t++)
        {
            float absmax = max[t / 8][t % 8];
            if (float.IsNaN(poison[t / 8][t % 8])) absmax = float.NaN;
            bool usable = t < mCount && float.IsFinite(absmax) && absmax != 0;
            scales2[t] = t >= mCount || absmax == 0 ? 0 : usable ? absmax / 127f : float.NaN;
            inv[t] = usable ? 127f / absmax : 0;
        }
        for (int n = 0; n < f; n++)
        {
            float* gRow = (float*)(acc + (nint)n * l * 4);
            for (int h = 0; h < groups; h += 2)
            {
                Vector256<float> i0 = Vector256.Load(inv + 8 * h), i1 = Vector256.Load(inv + 8 * h + 8);
                var q0 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(gRow + 8 * h) * i0)) & Vector256.GreaterThan(i0, Vector256<float>.Zero).AsInt32();
                var q1 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(gRow + 8 * h + 8) * i1)) & Vector256.GreaterThan(i1, Vector256<float>.Zero).AsInt32();
                Vector256.Narrow(q0, q1).Store(xT + (nint)n * l + 8 * h);
            }
        }
    }
}
