namespace TerDiT.Runtime.Sampling;

/// <summary>Reverse-process sampler of the runtime.</summary>
public enum SamplerKind
{
    /// <summary>DDPM ancestral sampling: x_{t−1} = μ_θ + σ_θ·z (learned-range variance when the model learns sigma).</summary>
    Ddpm,
    /// <summary>DDIM with eta = 0 (deterministic after the initial noise).</summary>
    Ddim,
}

/// <summary>
/// The model as the samplers see it (DESIGN.md "Model call"): x (N, C, H, W), ORIGINAL timestep
/// indices (N), labels (N) → output (N, C or 2C, H, W), channels [0, C) epsilon, [C, 2C) the
/// variance interpolation values.
/// </summary>
public delegate void Denoiser(ReadOnlySpan<float> x, ReadOnlySpan<int> timesteps, ReadOnlySpan<int> labels, Span<float> output);
