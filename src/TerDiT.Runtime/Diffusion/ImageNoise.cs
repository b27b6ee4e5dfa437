namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// Which noise one image draws: image <see cref="Index"/> of the noise of <see cref="Seed"/>. Its x_T is stream
/// <c>Index·2²⁰</c> and the DDPM noise of step i stream <c>Index·2²⁰ + 1 + i</c> of <see cref="GaussianNoise"/>,
/// so an image depends only on (seed, index, label, settings), never on which images share its model calls.
/// </summary>
/// <param name="Seed">Seed of the noise.</param>
/// <param name="Index">Index of the image under that seed, 0 ≤ Index &lt; 2⁴⁴.</param>
public readonly record struct ImageNoise(ulong Seed, long Index)
{
    /// <summary>Streams reserved for each image: x_T and one per step, 1000 steps at most.</summary>
    const int StreamsPerImage = 1 << 20;

    /// <summary>The largest valid <see cref="Index"/> + 1, so that every stream number fits 64 bits.</summary>
    public const long IndexLimit = (long)(ulong.MaxValue / StreamsPerImage);

    /// <summary>Writes x_T of this image into <paramref name="destination"/> (C·H·W values).</summary>
    public void FillStart(Span<float> destination) => GaussianNoise.Fill(Seed, Stream(0), destination);

    /// <summary>Writes the DDPM noise z of schedule step <paramref name="step"/> into <paramref name="destination"/>.</summary>
    public void FillStep(int step, Span<float> destination) => GaussianNoise.Fill(Seed, Stream(1 + step), destination);

    ulong Stream(int offset) => (Index is >= 0 and < IndexLimit
        ? (ulong)Index * StreamsPerImage
        : throw new ArgumentOutOfRangeException(nameof(Index), Index, $"image index must be in [0, {IndexLimit})")) + (ulong)offset;
}
