namespace TerDiT.Runtime.Sampling;

/// <summary>Reverse-process sampler; shared by the runtime samplers and the TorchSharp diffusion.</summary>
public enum SamplerKind
{
    /// <summary>DDPM ancestral sampling: x_{t−1} ~ N(μ_θ, Σ_θ).</summary>
    Ddpm,
    /// <summary>DDIM (deterministic when eta = 0; the runtime sampler always uses eta = 0).</summary>
    Ddim,
}

/// <summary>
/// The model as the samplers see it (DESIGN.md "Model call"): x (N, C, H, W), ORIGINAL timestep
/// indices (N), labels (N) → output (N, C or 2C, H, W), channels [0, C) epsilon, [C, 2C) the
/// variance interpolation values.
/// </summary>
public delegate void Denoiser(ReadOnlySpan<float> x, ReadOnlySpan<int> timesteps, ReadOnlySpan<int> labels, Span<float> output);
