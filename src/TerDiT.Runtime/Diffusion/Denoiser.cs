namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// The model as the samplers see it (DESIGN.md "Model call"): x (N, C, H, W), ORIGINAL timestep
/// indices (N), labels (N) → output (N, C or 2C, H, W), channels [0, C) epsilon, [C, 2C) the
/// variance interpolation values.
/// </summary>
public delegate void Denoiser(ReadOnlySpan<float> x, ReadOnlySpan<int> timesteps, ReadOnlySpan<int> labels, Span<float> output);
