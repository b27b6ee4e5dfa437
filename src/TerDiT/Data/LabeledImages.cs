using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using TerDiT.Runtime.Format;
using static TorchSharp.torch;

namespace TerDiT.Data;

/// <summary>
/// A labelled image set held as raw 8-bit pixels, layout (N, C, H, W) row-major.
/// The one in-memory form every data source produces; tensors are made from it on demand.
/// </summary>
public sealed class LabeledImages : ITrainingSet
{
    public LabeledImages(byte[] pixels, int[] labels, int channels, int height, int width, IReadOnlyList<string> classNames)
    {
        if (channels <= 0 || height <= 0 || width <= 0) throw new ArgumentException("image dimensions must be positive");
        if (pixels.Length != (long)labels.Length * channels * height * width)
            throw new ArgumentException($"pixel buffer holds {pixels.Length} bytes, expected {labels.Length}×{channels}×{height}×{width}");
        foreach (var y in labels)
            if (y < 0 || y >= classNames.Count) throw new ArgumentException($"label {y} outside 0..{classNames.Count - 1}");
        Pixels = pixels; Labels = labels; Channels = channels; Height = height; Width = width; ClassNames = classNames;
    }

    /// <summary>(N, C, H, W) bytes, 0 = black.</summary>
    public byte[] Pixels { get; }
    public int[] Labels { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int Count => Labels.Length;
    public int NumClasses => ClassNames.Count;
    public int ImageBytes => Channels * Height * Width;
    public TditLatent? Latent => null;

    /// <summary><see cref="ImageBatches.Gather"/>: pixels are not random, so <paramref name="sampleSeed"/> is unused.</summary>
    public (Tensor X, Tensor Y) Gather(ReadOnlySpan<int> indices, ulong sampleSeed, Device? device, ScalarType dtype) =>
        ImageBatches.Gather(this, indices, device, dtype);

    /// <summary>
    /// Every image centred on a black <paramref name="size"/>×<paramref name="size"/> canvas
    /// (e.g. Fashion-MNIST's 28×28 → 32×32 with 2 pixels each side; an odd margin puts the extra pixel after).
    /// </summary>
    public LabeledImages PadTo(int size)
    {
        if (size < Height || size < Width) throw new ArgumentException($"cannot pad {Height}×{Width} images to {size}×{size}");
        int top = (size - Height) / 2, left = (size - Width) / 2, outBytes = Channels * size * size;
        var dst = new byte[(long)Count * outBytes];
        for (int i = 0; i < Count; i++)
            for (int c = 0; c < Channels; c++)
                for (int r = 0; r < Height; r++)
                    Pixels.AsSpan(i * ImageBytes + (c * Height + r) * Width, Width)
                        .CopyTo(dst.AsSpan(i * outBytes + (c * size + top + r) * size + left, Width));
        return new LabeledImages(dst, Labels, Channels, size, size, ClassNames);
    }

    /// <summary>Every image resized (bicubic, per channel) to <paramref name="size"/>×<paramref name="size"/>.</summary>
    public LabeledImages Resize(int size)
    {
        if (size <= 0) throw new ArgumentException($"image size must be positive, not {size}");
        if (size == Height && size == Width) return this;
        int outPlane = size * size, outBytes = Channels * outPlane;
        var dst = new byte[(long)Count * outBytes];
        for (int i = 0; i < Count; i++)
            for (int c = 0; c < Channels; c++)
            {
                using var plane = Image.LoadPixelData<L8>(
                    Pixels.AsSpan(i * ImageBytes + c * Height * Width, Height * Width), Width, Height);
                plane.Mutate(x => x.Resize(size, size, KnownResamplers.Bicubic));
                plane.CopyPixelDataTo(dst.AsSpan(i * outBytes + c * outPlane, outPlane));
            }
        return new LabeledImages(dst, Labels, Channels, size, size, ClassNames);
    }

    /// <summary>The first <paramref name="n"/> images (or all, if fewer).</summary>
    public LabeledImages Take(int n)
    {
        n = Math.Min(n, Count);
        return new LabeledImages(Pixels.AsSpan(0, n * ImageBytes).ToArray(), Labels.AsSpan(0, n).ToArray(), Channels, Height, Width, ClassNames);
    }
}
