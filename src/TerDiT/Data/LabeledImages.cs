namespace TerDiT.Data;

/// <summary>
/// A labelled image set held as raw 8-bit pixels, layout (N, C, H, W) row-major.
/// The one in-memory form every data source produces; tensors are made from it on demand.
/// </summary>
public sealed class LabeledImages
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

    /// <summary>The first <paramref name="n"/> images (or all, if fewer).</summary>
    public LabeledImages Take(int n)
    {
        n = Math.Min(n, Count);
        return new LabeledImages(Pixels.AsSpan(0, n * ImageBytes).ToArray(), Labels.AsSpan(0, n).ToArray(), Channels, Height, Width, ClassNames);
    }
}
