namespace TerDiT.Training;

/// <summary>
/// Derives independent 64-bit seeds from (seed, stream, counter) with SplitMix64, so every random
/// draw of training is a pure function of the run's seed and the step (or epoch) it belongs to.
/// </summary>
public static class Seeds
{
    /// <summary>Stream of the per-step CPU generator (timesteps, label dropout, noise).</summary>
    public const ulong StepStream = 1;
    /// <summary>Stream of the per-epoch data permutation.</summary>
    public const ulong EpochStream = 2;
    /// <summary>Stream of the per-step latent draws of a latent training set (mean + std·ε).</summary>
    public const ulong LatentStream = 3;

    /// <summary>SplitMix64's output function applied to a combination of the three inputs.</summary>
    public static ulong Derive(ulong seed, ulong stream, ulong counter)
    {
        ulong z = Mix(seed) ^ Mix(stream * 0x9E3779B97F4A7C15UL + 0xD1B54A32D192ED03UL) ^ Mix(counter + 0x94D049BB133111EBUL * (stream + 1));
        return Mix(z);
    }

    /// <summary>The SplitMix64 finaliser (Steele, Lea, Flood 2014).</summary>
    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
