using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Data;

/// <summary>Turns <see cref="LabeledImages"/> into model-ready tensors.</summary>
public static class ImageBatches
{
    /// <summary>
    /// The images at <paramref name="indices"/> as x (N, C, H, W) of <paramref name="dtype"/> with
    /// <c>x = byte / 127.5 − 1</c> (so 0 → −1, 255 → 1) and y (N) int64 labels, both on <paramref name="device"/>.
    /// </summary>
    public static (Tensor X, Tensor Y) Gather(this LabeledImages data, ReadOnlySpan<int> indices, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        int n = indices.Length, size = data.ImageBytes;
        var pixels = new float[(long)n * size];
        var labels = new long[n];
        for (int i = 0; i < n; i++)
        {
            int k = indices[i];
            if ((uint)k >= (uint)data.Count) throw new ArgumentOutOfRangeException(nameof(indices), $"image index {k} outside 0..{data.Count - 1}");
            var src = data.Pixels.AsSpan(k * size, size);
            var dst = pixels.AsSpan(i * size, size);
            for (int j = 0; j < size; j++) dst[j] = src[j] / 127.5f - 1f;
            labels[i] = data.Labels[k];
        }
        using var x = torch.tensor(pixels, [n, data.Channels, data.Height, data.Width]); // (N, C, H, W) float32 on CPU
        using var y = torch.tensor(labels, [n]);                                         // (N) int64 on CPU
        return (x.to(dtype, device ?? CPU), y.to(device ?? CPU));
    }
}
