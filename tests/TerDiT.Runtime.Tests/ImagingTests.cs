using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TerDiT.Runtime.Imaging;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class ImagingTests
{
    /// <summary><paramref name="n"/> images (C, H, W), image i filled with <paramref name="value"/>(i, channel).</summary>
    static float[] Filled(int n, int c, int h, int w, Func<int, int, float> value)
    {
        var images = new float[n * c * h * w];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < c; k++)
                images.AsSpan((i * c + k) * h * w, h * w).Fill(value(i, k));
        return images;
    }

    [Fact]
    public void GridHasRowsTimesColumnsCellsWithPadding()
    {
        // 2 rows × 3 cols of 32×32 grey images; image i is filled with value −1 + i·0.4 (so distinct bytes).
        var images = Filled(6, 1, 32, 32, (i, _) => i * 0.4f - 1);
        var png = PngGrid.Encode(images, 6, 1, 32, 32, rows: 2, cols: 3);
        using var img = Image.Load<L8>(png);
        Assert.Equal(3 * 32 + 4 * PngGrid.Padding, img.Width);
        Assert.Equal(2 * 32 + 3 * PngGrid.Padding, img.Height);
        Assert.Equal(0, img[0, 0].PackedValue);                                            // border
        for (int i = 0; i < 6; i++)
        {
            int x = PngGrid.Padding + i % 3 * (32 + PngGrid.Padding) + 31, y = PngGrid.Padding + i / 3 * (32 + PngGrid.Padding) + 31;
            Assert.Equal((byte)Math.Round(i * 0.4 * 127.5), img[x, y].PackedValue);        // last pixel of cell i
        }
        Assert.Equal(png, PngGrid.Encode(images, 6, 1, 32, 32, 2, 3));                     // byte for byte
    }

    [Fact]
    public void RgbGridKeepsChannelsAndClampsRange()
    {
        var images = Filled(1, 3, 4, 4, (_, k) => new[] { 2f, 0f, -3f }[k]);
        using var img = Image.Load<Rgb24>(PngGrid.Encode(images, 1, 3, 4, 4, 1, 1));
        Assert.Equal(new Rgb24(255, 128, 0), img[PngGrid.Padding, PngGrid.Padding]);       // 0 → round(127.5) = 128 (half to even)
    }

    [Fact]
    public void BadGridShapesAreRefused()
    {
        Assert.Contains("4-channel", Assert.Throws<ArgumentException>(() => PngGrid.Encode(new float[2 * 4 * 8 * 8], 2, 4, 8, 8, 1, 2)).Message);
        Assert.Contains("do not fill", Assert.Throws<ArgumentException>(() => PngGrid.Encode(new float[3 * 8 * 8], 3, 1, 8, 8, 2, 2)).Message);
        Assert.Contains("are not 2 images", Assert.Throws<ArgumentException>(() => PngGrid.Encode(new float[100], 2, 1, 8, 8, 1, 2)).Message);
    }

    [Fact]
    public void PixelsRoundToNearestAndClamp()
    {
        Assert.Equal(new byte[] { 0, 0, 128, 255, 255, 64, 191 }, PngGrid.ToPixels([-1.5f, -1f, 0f, 1f, 2f, -0.5f, 0.5f]));
        Assert.Equal(new byte[] { 0, 255, 0 }, PngGrid.ToPixels([float.NegativeInfinity, float.PositiveInfinity, float.NaN]));
    }

    /// <summary>
    /// Exact ties (x + 1)·127.5 = k + ½ in float32 round to the even neighbour: searched among the floats next
    /// to (k + ½)/127.5 − 1, so both parities of k are met (a half-up rule fails on every even k).
    /// </summary>
    [Fact]
    public void PixelTiesRoundHalfToEven()
    {
        int even = 0, odd = 0;
        for (int k = 0; k < 255; k++)
        {
            float x = (float)((k + 0.5) / 127.5 - 1);
            for (int i = 0; i < 64; i++) x = MathF.BitDecrement(x);
            for (int i = 0; i <= 128; i++, x = MathF.BitIncrement(x))
            {
                if ((x + 1f) * 127.5f != k + 0.5f) continue;
                Assert.Equal(k % 2 == 0 ? k : k + 1, PngGrid.ToPixels([x])[0]);
                if (k % 2 == 0) even++; else odd++;
            }
        }
        Assert.True(even > 0 && odd > 0, $"ties found: {even} even, {odd} odd");
    }
}
