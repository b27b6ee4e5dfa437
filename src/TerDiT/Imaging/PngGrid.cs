using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace TerDiT.Imaging;

/// <summary>
/// Lays images out as a grid and encodes it as PNG. The encoding is a pure function of the pixels
/// (no timestamps or other metadata), so equal images give equal files, byte for byte.
/// </summary>
public static class PngGrid
{
    /// <summary>Black border, in pixels, around and between the cells.</summary>
    public const int Padding = 2;

    /// <summary>Pixel width of a grid of <paramref name="cols"/> cells of width <paramref name="cell"/>: <c>cols·(cell+Padding)+Padding</c> (same rule for height).</summary>
    public static int Extent(int cells, int cell) => cells * (cell + Padding) + Padding;

    /// <summary>
    /// Encodes <paramref name="images"/> (N, C, H, W) with values in [−1, 1] (clamped; byte = round((v+1)·127.5))
    /// as a PNG of <paramref name="rows"/>×<paramref name="cols"/> cells filled row by row, N = rows·cols.
    /// C = 1 gives an 8-bit grey PNG, C = 3 an RGB one.
    /// </summary>
    public static byte[] Encode(Tensor images, int rows, int cols)
    {
        if (images.dim() != 4) throw new ArgumentException($"expected images (N, C, H, W), got shape [{string.Join(", ", images.shape)}]");
        int n = (int)images.shape[0], c = (int)images.shape[1], h = (int)images.shape[2], w = (int)images.shape[3];
        if (rows <= 0 || cols <= 0 || n != rows * cols) throw new ArgumentException($"{n} images do not fill a {rows}×{cols} grid");
        if (c is not (1 or 3))
            throw new ArgumentException($"{c}-channel images cannot be shown as PNG (1 = grey, 3 = RGB; latent models need a decoder first)");

        byte[] bytes;
        using (var q = images.detach().to(ScalarType.Float32, CPU).clamp(-1, 1).add(1).mul(127.5).round().to(ScalarType.Byte).contiguous())
            bytes = q.data<byte>().ToArray(); // (N, C, H, W)

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

    /// <summary>Writes <see cref="Encode"/>'s PNG to <paramref name="path"/> atomically (temp file + rename).</summary>
    public static void Save(string path, Tensor images, int rows, int cols)
    {
        var png = Encode(images, rows, cols);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        File.WriteAllBytes(tmp, png);
        File.Move(tmp, path, overwrite: true);
    }

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
