namespace TerDiT.Runtime.Diffusion;

/// <summary>Progress of a sampling call: <paramref name="Done"/> of <paramref name="Total"/> model steps finished.</summary>
public readonly record struct SamplingProgress(int Done, int Total);
