namespace TerDiT.Runtime.Diffusion;

/// <summary>Reverse-process sampler; shared by the runtime samplers and the TorchSharp diffusion.</summary>
public enum SamplerKind
{
    /// <summary>DDPM ancestral sampling: x_{t−1} ~ N(μ_θ, Σ_θ) (<see cref="DdpmScheduler"/>).</summary>
    Ddpm,
    /// <summary>DDIM (deterministic when eta = 0; the runtime sampler always uses eta = 0) (<see cref="DdimScheduler"/>).</summary>
    Ddim,
    /// <summary>DPM-Solver++(2M): second-order multistep solver of the diffusion ODE in data prediction (<see cref="DpmSolverMultistepScheduler"/>).</summary>
    DpmPlusPlus2M,
}
