using TerDiT.Data;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Vae;
using static TorchSharp.torch;

namespace TerDiT.Vae;

/// <summary>
/// Encodes an image folder (one sub-folder per class) into a <see cref="LatentSet"/> with a VAE: each image
/// centre-cropped and resized to <c>imageSize</c>², scaled to [−1, 1], encoded to its posterior's mean and
/// standard deviation. Images are read and encoded in batches, so memory holds one batch of pixels plus the
/// latents (2 · C·(s/f)² floats an image: 32 KB for Stable Diffusion's VAE at 256²).
/// </summary>
public static class LatentEncoder
{
    /// <param name="progress">Called with (images encoded, total).</param>
    /// <exception cref="ArgumentException">An image size that is not a multiple of the VAE's downsampling factor.</exception>
    public static LatentSet EncodeFolder(string directory, string vaeDirectory, int imageSize, int batch, Device? device = null,
        Action<int, int>? progress = null)
    {
        if (batch <= 0) throw new ArgumentException($"batch must be positive, not {batch}");
        using var weights = VaeWeights.Open(vaeDirectory);
        var c = weights.Config;
        int f = c.DownsampleFactor;
        if (imageSize <= 0 || imageSize % f != 0) throw new ArgumentException($"image size {imageSize} is not a positive multiple of the VAE's factor {f}");
        if (c.InChannels != 3) throw new ArgumentException($"the VAE takes {c.InChannels}-channel images; image folders give RGB");
        var (files, classNames) = ImageFolder.Files(directory);
        using var vae = AutoencoderKL.Load(weights, device);
        int side = imageSize / f, per = c.LatentChannels * side * side, imageBytes = 3 * imageSize * imageSize;
        var mean = new float[(long)files.Count * per];
        var std = new float[(long)files.Count * per];
        var pixels = new byte[(long)batch * imageBytes];
        using var _ = no_grad();
        for (int first = 0; first < files.Count; first += batch)
        {
            int n = Math.Min(batch, files.Count - first);
            for (int i = 0; i < n; i++) ImageFolder.ReadImage(files[first + i].Path, imageSize, 3, pixels.AsSpan(i * imageBytes, imageBytes), centerCrop: true);
            var images = new LabeledImages(pixels[..(n * imageBytes)], new int[n], 3, imageSize, imageSize, ["image"]);
            var (x, y) = ImageBatches.Gather(images, Enumerable.Range(0, n).ToArray(), device);    // (n, 3, s, s) in [−1, 1]
            using (x) using (y)
            {
                var (m, s) = vae.Encode(x);                                                           // (n, C, s/f, s/f) each
                using (m) using (s)
                {
                    Copy(m, mean.AsSpan(first * per, n * per));
                    Copy(s, std.AsSpan(first * per, n * per));
                }
            }
            progress?.Invoke(first + n, files.Count);
        }
        var latent = new TditLatent { Vae = weights.Name, VaeSha256 = weights.Sha256, ScalingFactor = c.ScalingFactor };
        return new LatentSet(mean, std, files.Select(t => t.Label).ToArray(), c.LatentChannels, side, imageSize, classNames, latent);
    }

    static void Copy(Tensor t, Span<float> destination)
    {
        using var cpu = t.to(ScalarType.Float32, CPU).contiguous();
        cpu.data<float>().CopyTo(destination);
    }
}
