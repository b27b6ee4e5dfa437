using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace TerDiT.Runtime.Imaging;

/// <summary>
/// Lays images out as a grid and encodes it as PNG. The encoding is a pure function of the pixels
/// (no timestamps or other metadata), so equal images give equal files, byte for byte. Images are
/// (N, C, H, W) row-major with C = 1 (8-bit grey PNG) or C = 3 (RGB PNG), either as model outputs in
/// [−1, 1] (floats, converted by <see cref="ToPixels"/>) or as 8-bit pixels.
/// </summary>
public static class PngGrid
{
    /// <summary>Black border, in pixels, around and between the cells.</summary>
    public const int Padding = 2;

    /// <summary>Pixel width of a grid of <paramref name="cells"/> cells of width <paramref name="cell"/>: <c>cells·(cell+Padding)+Padding</c> (same rule for height).</summary>
    public static int Extent(int cells, int cell) => cells * (cell + Padding) + Padding;

    /// <summary>
    /// 8-bit pixels of images in [−1, 1], same layout: <c>byte = round((clamp(x, −1, 1) + 1) · 127.5)</c>,
    /// the sum and product in float32 and the rounding half to even — the same bytes as torch's
    /// <c>x.clamp(-1, 1).add(1).mul(127.5).round()</c> (DiT's normalisation undone, as torchvision's
    /// <c>save_image</c> does up to the rounding rule). NaN gives 0.
    /// </summary>
    public static byte[] ToPixels(ReadOnlySpan<float> images)
    {
        var pixels = new byte[images.Length];
        for (int i = 0; i < images.Length; i++)
        {
            float v = MathF.Round((Math.Clamp(images[i], -1f, 1f) + 1f) * 127.5f, MidpointRounding.ToEven); // [0, 255] or NaN
            pixels[i] = float.IsNaN(v) ? (byte)0 : (byte)v;
        }
        return pixels;
    }

    /// <summary>
    /// Encodes <paramref name="images"/> (N, C, H, W) in [−1, 1] (<see cref="ToPixels"/>) as a PNG of
    /// <paramref name="rows"/>×<paramref name="cols"/> cells filled row by row, N = rows·cols.
    /// </summary>
    public static byte[] Encode(ReadOnlySpan<float> images, int n, int c, int h, int w, int rows, int cols) =>
        Encode(ToPixels(images), n, c, h, w, rows, cols);

    /// <summary>
    /// Encodes 8-bit <paramref name="pixels"/> (N, C, H, W) as a PNG of <paramref name="rows"/>×<paramref name="cols"/>
    /// cells filled row by row, N = rows·cols; C = 1 gives an 8-bit grey PNG, C = 3 an RGB one.
    /// </summary>
    public static byte[] Encode(ReadOnlySpan<byte> pixels, int n, int c, int h, int w, int rows, int cols)
    {
        if (n <= 0 || h <= 0 || w <= 0 || pixels.Length != (long)n * c * h * w)
            throw new ArgumentException($"{pixels.Length} pixels are not {n} images of {c}×{h}×{w}");
        if (rows <= 0 || cols <= 0 || n != rows * cols) throw new ArgumentException($"{n} images do not fill a {rows}×{cols} grid");
        if (c is not (1 or 3))
            throw new ArgumentException($"{c}-channel images cannot be shown as PNG (1 = grey, 3 = RGB; latent models need a decoder first)");

        var bytes = pixels.ToArray();
        int width = Extent(cols, w), height = Extent(rows, h), plane = h * w;
        using var ms = new MemoryStream();
        if (c == 1)
        {
            using var img = new Image<L8>(width, height, new L8(0));
            Blit(n, cols, h, w, (i, y, x) => img[x, y] = new L8(bytes[i * plane + (y % (h + Padding) - Padding) * w + (x % (w + Padding) - Padding)]));
            img.Save(ms, Encoder);
        }
        else
        {
            using var img = new Image<Rgb24>(width, height, new Rgb24(0, 0, 0));
            Blit(n, cols, h, w, (i, y, x) =>
            {
                int o = i * 3 * plane + (y % (h + Padding) - Padding) * w + (x % (w + Padding) - Padding);
                img[x, y] = new Rgb24(bytes[o], bytes[o + plane], bytes[o + 2 * plane]);
            });
            img.Save(ms, Encoder);
        }
        return ms.ToArray();
    }

    /// <summary>Writes <see cref="Encode(ReadOnlySpan{float}, int, int, int, int, int, int)"/>'s PNG to <paramref name="path"/> atomically (temp file + rename).</summary>
    public static void Save(string path, ReadOnlySpan<float> images, int n, int c, int h, int w, int rows, int cols) =>
        AtomicFile.WriteAllBytes(path, Encode(images, n, c, h, w, rows, cols));

    static readonly PngEncoder Encoder = new() { CompressionLevel = PngCompressionLevel.DefaultCompression };

    /// <summary>Calls <paramref name="set"/>(image, y, x) for every grid pixel that lies inside a cell.</summary>
    static void Blit(int n, int cols, int h, int w, Action<int, int, int> set)
    {
        for (int i = 0; i < n; i++)
        {
            int y0 = Padding + i / cols * (h + Padding), x0 = Padding + i % cols * (w + Padding);
            for (int y = y0; y < y0 + h; y++)
                for (int x = x0; x < x0 + w; x++) set(i, y, x);
        }
    }
}
