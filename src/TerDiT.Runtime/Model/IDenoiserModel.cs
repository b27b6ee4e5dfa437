using TerDiT.Runtime.Config;

namespace TerDiT.Runtime.Model;

/// <summary>
/// A TerDiT forward pass on some backend (the CPU <see cref="RuntimeModel"/>, or a GPU model): the model call of
/// docs/DESIGN.md, which the samplers use as their <see cref="Diffusion.Denoiser"/>.
/// </summary>
public interface IDenoiserModel
{
    TerDiTConfig Config { get; }

    /// <summary>Floats in one image of the input, C·H·W.</summary>
    int InputLength { get; }

    /// <summary>Floats in one image of the output, OutChannels·H·W.</summary>
    int OutputLength { get; }

    /// <summary>
    /// x (N, C, H, W), timestep indices (N) ≥ 0, labels (N) in [0, NumClasses] (NumClasses = null class) →
    /// output (N, OutChannels, H, W); channels [0, C) are epsilon, [C, 2C) the variance interpolation values.
    /// </summary>
    void Forward(ReadOnlySpan<float> x, ReadOnlySpan<int> timesteps, ReadOnlySpan<int> labels, Span<float> output);
}
