using TerDiT.Data;
using TerDiT.Runtime.Config;

namespace TerDiT.Tests;

/// <summary>The small data fixtures committed under tests/fixtures, and the small model config the training tests share.</summary>
public static class Fixtures
{
    /// <summary>A Tiny-shaped model at 8×8 input (16 tokens), so a training step costs milliseconds.</summary>
    public static readonly TerDiTConfig Micro = new()
    {
        Name = "micro", InChannels = 1, InputSize = 8, PatchSize = 2, HiddenSize = 32, Depth = 2, NumHeads = 2, NumClasses = 10, FfnMultipleOf = 32,
    };

    /// <summary>The first <paramref name="count"/> fixture training images, downscaled to <see cref="Micro"/>'s 8×8.</summary>
    public static LabeledImages MicroData(int count) => DatasetSource.Load("fashion-mnist", Micro, FashionMnistDirectory, limit: count);

    /// <summary>512 train + 256 test Fashion-MNIST images as gzipped IDX, same file names as the Debian package.</summary>
    public static string FashionMnistDirectory => Path.Combine(RepoRoot, "tests", "fixtures", "fashion-mnist");

    public static string RepoRoot => Testing.Repository.Root;
}
