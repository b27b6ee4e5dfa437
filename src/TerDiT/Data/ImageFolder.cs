using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace TerDiT.Data;

/// <summary>
/// A labelled image set stored as one sub-folder per class (<c>DIR/&lt;class&gt;/*.png|jpg|jpeg</c>).
/// Class names are the sub-folder names in ordinal order; the label of an image is its folder's rank.
/// </summary>
public static class ImageFolder
{
    static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>
    /// Loads every image under <paramref name="directory"/>, resized (bicubic) to
    /// <paramref name="size"/>×<paramref name="size"/> and converted to grey (<paramref name="channels"/> = 1,
    /// luminance) or RGB (3). Images are ordered by class, then by ordinal file name.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">No class folders or images, or an image cannot be decoded.</exception>
    public static LabeledImages Load(string directory, int size, int channels)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"an image folder gives 1 (grey) or 3 (RGB) channels, not {channels}");
        if (size <= 0) throw new ArgumentException($"image size must be positive, not {size}");
        var (files, classNames) = Files(directory);
        int imageBytes = channels * size * size;
        var pixels = new byte[(long)files.Count * imageBytes];
        var labels = new int[files.Count];
        for (int i = 0; i < files.Count; i++)
        {
            ReadImage(files[i].Path, size, channels, pixels.AsSpan(i * imageBytes, imageBytes));
            labels[i] = files[i].Label;
        }
        return new LabeledImages(pixels, labels, channels, size, size, classNames);
    }

    /// <summary>
    /// The images of a folder with their labels, ordered by class, then by ordinal file name, and the class
    /// names (sub-folder names in ordinal order).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">No class folders or no images.</exception>
    public static (IReadOnlyList<(string Path, int Label)> Files, string[] ClassNames) Files(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"image folder {directory} not found; it must hold one sub-folder of PNG/JPEG images per class");
        var classDirs = Directory.GetDirectories(directory).Order(StringComparer.Ordinal).ToArray();
        if (classDirs.Length == 0)
            throw new InvalidDataException($"image folder {directory} has no class sub-folders (expected DIR/<class>/*.png)");
        var files = new List<(string Path, int Label)>();
        for (int c = 0; c < classDirs.Length; c++)
            foreach (var f in Directory.GetFiles(classDirs[c]).Order(StringComparer.Ordinal))
                if (Extensions.Contains(Path.GetExtension(f).ToLowerInvariant())) files.Add((f, c));
        if (files.Count == 0) throw new InvalidDataException($"image folder {directory} holds no PNG or JPEG images in its class sub-folders");
        return (files, classDirs.Select(d => Path.GetFileName(d)!).ToArray());
    }

    /// <summary>
    /// Decodes one image into <paramref name="dest"/> as (C, size, size) bytes: resized to size×size, or with
    /// <paramref name="centerCrop"/> resized so its shorter side is size and cropped to the centre square
    /// (bicubic; close to, not bit-equal with, ADM's center crop that DiT and TerDiT train with).
    /// </summary>
    public static void ReadImage(string path, int size, int channels, Span<byte> dest, bool centerCrop = false)
    {
        Image<Rgb24> image;
        try { image = Image.Load<Rgb24>(path); }
        catch (Exception e) when (e is UnknownImageFormatException or InvalidImageContentException or NotSupportedException)
        {
            throw new InvalidDataException($"{path}: not a readable PNG/JPEG image ({e.Message})", e);
        }
        using (image)
        {
            if (centerCrop && (image.Width != size || image.Height != size))
                image.Mutate(x => x.Resize(new ResizeOptions { Size = new Size(size, size), Sampler = KnownResamplers.Bicubic, Mode = ResizeMode.Crop }));
            else if (image.Width != size || image.Height != size)
                image.Mutate(x => x.Resize(size, size, KnownResamplers.Bicubic));
            int plane = size * size;
            for (int r = 0; r < size; r++)
                for (int col = 0; col < size; col++)
                {
                    var p = image[col, r];
                    int o = r * size + col;
                    if (channels == 1)
                        dest[o] = (byte)Math.Clamp((int)Math.Round(0.299 * p.R + 0.587 * p.G + 0.114 * p.B), 0, 255); // ITU-R BT.601 luma
                    else
                    {
                        dest[o] = p.R; dest[plane + o] = p.G; dest[2 * plane + o] = p.B;
                    }
                }
        }
    }
}
