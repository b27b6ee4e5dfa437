using TerDiT.Runtime.Format;
using static TorchSharp.torch;

namespace TerDiT.Data;

/// <summary>A labelled training set as the trainer sees it: images (pixels) or VAE latents.</summary>
public interface ITrainingSet
{
    int Count { get; }
    /// <summary>C, H, W of one sample (the model's input shape).</summary>
    int Channels { get; }
    int Height { get; }
    int Width { get; }
    /// <summary>Class names by label.</summary>
    IReadOnlyList<string> ClassNames { get; }
    /// <summary>The VAE latent space the samples live in; null for pixel images.</summary>
    TditLatent? Latent { get; }

    /// <summary>
    /// The samples at <paramref name="indices"/> as model inputs x (N, C, H, W) of <paramref name="dtype"/> and
    /// labels y (N) int64, both on <paramref name="device"/>. A set whose samples are random draws (latents
    /// from their posterior) draws them from a CPU generator seeded <paramref name="sampleSeed"/>.
    /// </summary>
    (Tensor X, Tensor Y) Gather(ReadOnlySpan<int> indices, ulong sampleSeed, Device? device, ScalarType dtype);
}
