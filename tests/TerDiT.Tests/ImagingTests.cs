using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TerDiT.Imaging;
using TorchSharp;
using Xunit;

namespace TerDiT.Tests;

public class ImagingTests
{
    [Fact]
    public void GridHasRowsTimesColumnsCellsWithPadding()
    {
        // 2 rows × 3 cols of 32×32 grey images; image i is filled with value −1 + i·0.4 (so distinct bytes).
        using var images = torch.arange(6, dtype: torch.float32).mul(0.4).sub(1).view(6, 1, 1, 1).expand(6, 1, 32, 32).contiguous();
        var png = PngGrid.Encode(images, rows: 2, cols: 3);
        using var img = Image.Load<L8>(png);
        Assert.Equal(3 * 32 + 4 * PngGrid.Padding, img.Width);
        Assert.Equal(2 * 32 + 3 * PngGrid.Padding, img.Height);
        Assert.Equal(0, img[0, 0].PackedValue);                                            // border
        for (int i = 0; i < 6; i++)
        {
            int x = PngGrid.Padding + i % 3 * (32 + PngGrid.Padding) + 31, y = PngGrid.Padding + i / 3 * (32 + PngGrid.Padding) + 31;
            Assert.Equal((byte)Math.Round(i * 0.4 * 127.5), img[x, y].PackedValue);        // last pixel of cell i
        }
        Assert.Equal(png, PngGrid.Encode(images, 2, 3));                                   // byte for byte
    }

    [Fact]
    public void RgbGridKeepsChannelsAndClampsRange()
    {
        using var images = torch.tensor(new float[] { 2f, 0f, -3f }).view(1, 3, 1, 1).expand(1, 3, 4, 4).contiguous();
        using var img = Image.Load<Rgb24>(PngGrid.Encode(images, 1, 1));
        Assert.Equal(new Rgb24(255, 128, 0), img[PngGrid.Padding, PngGrid.Padding]);       // 0 → round(127.5) = 128 (half to even)
    }

    [Fact]
    public void BadGridShapesAreRefused()
    {
        using var four = torch.zeros(2, 4, 8, 8);
        Assert.Contains("4-channel", Assert.Throws<ArgumentException>(() => PngGrid.Encode(four, 1, 2)).Message);
        using var grey = torch.zeros(3, 1, 8, 8);
        Assert.Contains("do not fill", Assert.Throws<ArgumentException>(() => PngGrid.Encode(grey, 2, 2)).Message);
    }
}
