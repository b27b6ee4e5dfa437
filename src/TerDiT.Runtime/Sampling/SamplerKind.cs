namespace TerDiT.Runtime.Sampling;

/// <summary>Reverse-process sampler; shared by the runtime samplers and the TorchSharp diffusion.</summary>
public enum SamplerKind
{
    /// <summary>DDPM ancestral sampling: x_{t−1} ~ N(μ_θ, Σ_θ).</summary>
    Ddpm,
    /// <summary>DDIM (deterministic when eta = 0; the runtime sampler always uses eta = 0).</summary>
    Ddim,
}
