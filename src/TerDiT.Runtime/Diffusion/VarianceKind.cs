namespace TerDiT.Runtime.Diffusion;

/// <summary>How the reverse-process variance Σ_θ(x_t, t) is obtained (IDDPM's <c>ModelVarType</c>).</summary>
public enum VarianceKind
{
    /// <summary>
    /// The model outputs 2C channels: ε, then v ∈ [−1, 1]; log Σ = frac·log β_t + (1 − frac)·log β̃_t (clipped),
    /// frac = (v + 1)/2 (Nichol &amp; Dhariwal 2021, eq. (15)).
    /// </summary>
    LearnedRange,
    /// <summary>The model outputs C channels; Σ = β̃_t, the posterior variance (log clipped at step 0).</summary>
    FixedSmall,
    /// <summary>The model outputs C channels; Σ = β_t (β̃_1 at step 0).</summary>
    FixedLarge,
}
