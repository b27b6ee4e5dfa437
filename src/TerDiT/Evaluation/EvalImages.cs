using TerDiT.Data;
using static TorchSharp.torch;

namespace TerDiT.Evaluation;

/// <summary>
/// Turns 8-bit grey images into the classifier's input: values <c>p / 127.5 − 1</c> in [-1, 1],
/// centred on a <see cref="FeatureClassifier.InputSize"/>² canvas filled with the background value −1
/// (Fashion-MNIST's 28×28 gets a 2-pixel border), the same form the diffusion trainer feeds its model.
/// </summary>
public static class EvalImages
{
    /// <summary>Images <c>[start, start + count)</c> of <paramref name="images"/> as a CPU float32 tensor (count, 1, 32, 32).</summary>
    /// <exception cref="ArgumentException">The images are not single-channel, are larger than 32×32 or cannot be centred
    /// (odd border), or the range lies outside the set.</exception>
    public static Tensor ToTensor(LabeledImages images, int start, int count)
    {
        const int S = FeatureClassifier.InputSize;
        if (images.Channels != 1 || images.Height > S || images.Width > S || (S - images.Height) % 2 != 0 || (S - images.Width) % 2 != 0)
            throw new ArgumentException($"expected single-channel images of at most {S}×{S} with an even border, got {images.Channels}×{images.Height}×{images.Width}");
        if (start < 0 || count < 0 || start + count > images.Count)
            throw new ArgumentException($"range [{start}, {start + count}) outside the {images.Count} images");
        var range = images.Take(start + count);                             // the padding then touches only what is needed
        var canvas = range.Height == S && range.Width == S ? range : range.PadTo(S);
        var (x, y) = canvas.Gather(Enumerable.Range(start, count).ToArray()); // (count, 1, 32, 32), (count)
        y.Dispose();
        return x;
    }

    /// <summary>All images of <paramref name="images"/>; see <see cref="ToTensor(LabeledImages, int, int)"/>.</summary>
    public static Tensor ToTensor(LabeledImages images) => ToTensor(images, 0, images.Count);
}
