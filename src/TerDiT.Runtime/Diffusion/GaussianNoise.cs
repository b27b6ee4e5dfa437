namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// Seeded standard-normal numbers addressed by (seed, stream, index), so any element can be drawn
/// on its own: the result depends on nothing else (not on thread count, batch split or order).
/// </summary>
/// <remarks>
/// Uniforms: SplitMix64 (Steele, Lea &amp; Flood 2014) is a Weyl sequence <c>s_j = s_0 + j·φ</c>
/// (φ = 0x9E3779B97F4A7C15) passed through a 64-bit finaliser, so its j-th output is computed
/// directly. The start <c>s_0 = mix(seed ⊕ mix(stream + φ))</c> separates streams. Normal pair k of a
/// stream takes outputs 2k and 2k+1 as u1, u2 ∈ (0, 1] (top 53 bits) and applies Box–Muller:
/// element 2k = √(−2 ln u1)·cos(2π u2), element 2k+1 = √(−2 ln u1)·sin(2π u2), in double, then
/// rounded to float.
/// </remarks>
public static class GaussianNoise
{
    const ulong Phi = 0x9E3779B97F4A7C15UL;

    /// <summary>Writes elements [first, first + destination.Length) of stream (seed, stream).</summary>
    public static void Fill(ulong seed, ulong stream, Span<float> destination, long first = 0)
    {
        if (first < 0) throw new ArgumentOutOfRangeException(nameof(first), first, "first index must be ≥ 0");
        ulong start = Mix(seed ^ Mix(stream + Phi));
        for (int i = 0; i < destination.Length; i++)
        {
            ulong index = (ulong)(first + i), pair = index / 2;
            double u1 = Uniform(Mix(start + (2 * pair + 1) * Phi)), u2 = Uniform(Mix(start + (2 * pair + 2) * Phi));
            double r = Math.Sqrt(-2 * Math.Log(u1)), angle = 2 * Math.PI * u2;
            destination[i] = (float)(index % 2 == 0 ? r * Math.Cos(angle) : r * Math.Sin(angle));
        }
    }

    /// <summary>The SplitMix64 finaliser.</summary>
    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Top 53 bits as a double in (0, 1] (never 0, so the log is finite).</summary>
    static double Uniform(ulong bits) => ((bits >> 11) + 1) * (1.0 / (1UL << 53));
}
