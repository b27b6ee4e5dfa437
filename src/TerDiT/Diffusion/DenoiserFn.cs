using static TorchSharp.torch;

namespace TerDiT.Diffusion;

/// <summary>
/// The model as the diffusion sees it: <c>x</c> (N, C, H, W) noisy input, <c>t</c> (N) int64 ORIGINAL
/// timestep indices (0..999 for DiT, also under respacing), <c>y</c> (N) int64 labels (null class allowed).
/// Returns (N, C, H, W) epsilon, or (N, 2C, H, W) with learned sigma: channels [0, C) epsilon,
/// [C, 2C) the variance interpolation values v in [−1, 1].
/// </summary>
public delegate Tensor DenoiserFn(Tensor x, Tensor t, Tensor y);

/// <summary>How the reverse-process variance Σ_θ(x_t, t) is obtained (IDDPM's <c>ModelVarType</c>).</summary>
public enum VarianceKind
{
    /// <summary>Model outputs 2C channels; log Σ = frac·log β_t + (1−frac)·log β̃_t (clipped), frac = (v+1)/2.</summary>
    LearnedRange,
    /// <summary>Model outputs C channels; Σ = β̃_t, the posterior variance (log clipped at step 0).</summary>
    FixedSmall,
    /// <summary>Model outputs C channels; Σ = β_t (β̃_1 at step 0).</summary>
    FixedLarge,
}
