using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TerDiT.Data;
using TerDiT.Runtime.Config;
using TerDiT.Testing;
using Xunit;

namespace TerDiT.Tests;

public class DataTests
{
    [Fact]
    public void ImageFolderReadsClassesInOrderResizesAndConverts()
    {
        using var dir = new TempDirectory("imgfolder");
        // Class folders created out of order; class "b" has a 20×20 RGB image of colour (200, 100, 0).
        Directory.CreateDirectory(Path.Combine(dir, "b"));
        Directory.CreateDirectory(Path.Combine(dir, "a"));
        using (var img = new Image<Rgb24>(20, 20, new Rgb24(200, 100, 0))) img.SaveAsPng(Path.Combine(dir, "b", "x.png"));
        using (var img = new Image<Rgb24>(8, 8, new Rgb24(10, 20, 30))) img.SaveAsPng(Path.Combine(dir, "a", "2.png"));
        using (var img = new Image<Rgb24>(8, 8, new Rgb24(255, 255, 255))) img.SaveAsJpeg(Path.Combine(dir, "a", "1.jpg"));
        File.WriteAllText(Path.Combine(dir, "a", "notes.txt"), "ignored");

        var rgb = ImageFolder.Load(dir, 8, 3);
        Assert.Equal(["a", "b"], rgb.ClassNames);
        Assert.Equal([0, 0, 1], rgb.Labels);
        Assert.Equal((3, 8, 8), (rgb.Channels, rgb.Height, rgb.Width));
        Assert.InRange(rgb.Pixels[0], 250, 255);                       // 1.jpg: white (JPEG may round)
        Assert.Equal(new byte[] { 10, 20, 30 }, new[] { rgb.Pixels[192], rgb.Pixels[192 + 64], rgb.Pixels[192 + 128] }); // 2.png: R, G, B planes
        Assert.Equal(new byte[] { 200, 100, 0 }, new[] { rgb.Pixels[384 + 27], rgb.Pixels[384 + 64 + 27], rgb.Pixels[384 + 128 + 27] }); // resized, uniform

        var grey = ImageFolder.Load(dir, 8, 1);
        Assert.Equal(64, grey.ImageBytes);
        Assert.Equal((byte)Math.Round(0.299 * 200 + 0.587 * 100), grey.Pixels[128 + 9]);
    }

    [Fact]
    public void ImageFolderErrorsAreClear()
    {
        var missing = Assert.Throws<DirectoryNotFoundException>(() => ImageFolder.Load("/nonexistent/images", 32, 1));
        Assert.Contains("one sub-folder", missing.Message);
        using var dir = new TempDirectory("imgfolder");
        Assert.Contains("no class sub-folders", Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir, 32, 1)).Message);
        Directory.CreateDirectory(Path.Combine(dir, "cat"));
        File.WriteAllText(Path.Combine(dir, "cat", "broken.png"), "not a png");
        Assert.Contains("broken.png", Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir, 32, 1)).Message);
    }

    [Fact]
    public void FashionMnistIsPaddedTo32AndScaledToMinusOneOne()
    {
        var config = Presets.Get("TerDiT-Tiny");
        var raw = FashionMnist.Load(Split.Train, Fixtures.FashionMnistDirectory);
        var data = DatasetSource.Load("fashion-mnist", config, Fixtures.FashionMnistDirectory, limit: 16);
        Assert.Equal((16, 1, 32, 32), (data.Count, data.Channels, data.Height, data.Width));
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++)
                Assert.Equal(raw.Pixels[3 * 784 + r * 28 + c], data.Pixels[3 * 1024 + (r + 2) * 32 + c + 2]);
        Assert.True(data.Pixels.AsSpan(5 * 1024, 64).IndexOfAnyExcept((byte)0) < 0); // top two rows black

        var (x, y) = data.Gather([3, 0]);
        using (x) using (y)
        {
            Assert.Equal([2L, 1, 32, 32], x.shape);
            Assert.Equal(raw.Labels[3], y[0].item<long>());
            Assert.Equal(-1f, x.min().item<float>());
            Assert.Equal(data.Pixels[3 * 1024 + 500] / 127.5f - 1f, x[0, 0, 500 / 32, 500 % 32].item<float>(), 6);
        }
        var resized = DatasetSource.Load("fashion-mnist", config with { InputSize = 16 }, Fixtures.FashionMnistDirectory, limit: 4);
        Assert.Equal((16, 16), (resized.Height, resized.Width));
    }

    [Fact]
    public void MissingOrMismatchedDatasetIsAClearError()
    {
        var config = Presets.Get("TerDiT-Tiny");
        Assert.Contains("apt-get install", Assert.Throws<FileNotFoundException>(() => DatasetSource.Load("fashion-mnist", config, "/nonexistent")).Message);
        Assert.Contains("neither", Assert.Throws<DirectoryNotFoundException>(() => DatasetSource.Load("/nonexistent/dir", config)).Message);
        Assert.Contains("expects 4", Assert.Throws<ArgumentException>(() =>
            DatasetSource.Load("fashion-mnist", Presets.Get("TerDiT-600M"), Fixtures.FashionMnistDirectory)).Message);
    }
}
