using TerDiT.Data;
using TerDiT.Testing;
using Xunit;

namespace TerDiT.Tests;

public class FashionMnistTests
{
    [Fact]
    public void LoadsFixtureWithShapesAndLabels()
    {
        var train = FashionMnist.Load(Split.Train, Fixtures.FashionMnistDirectory);
        Assert.Equal(512, train.Count);
        Assert.Equal((1, 28, 28), (train.Channels, train.Height, train.Width));
        Assert.Equal(10, train.NumClasses);
        Assert.Equal(10, train.Labels.Distinct().Count());
        Assert.InRange(train.Pixels.Average(p => (double)p), 40, 110); // mostly dark background, not all zero
    }

    [Fact]
    public void MissingDirectoryExplainsHowToInstall()
    {
        var e = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(Split.Test, "/nonexistent/fmnist"));
        Assert.Contains("apt-get install dataset-fashion-mnist", e.Message);
    }

    [Fact]
    public void TruncatedFileIsRefused()
    {
        using var dir = new TempDirectory("fmnist");
        var src = Path.Combine(Fixtures.FashionMnistDirectory, "t10k-images-idx3-ubyte.gz");
        using (var input = new System.IO.Compression.GZipStream(File.OpenRead(src), System.IO.Compression.CompressionMode.Decompress))
        using (var ms = new MemoryStream())
        {
            input.CopyTo(ms);
            File.WriteAllBytes(Path.Combine(dir, "t10k-images-idx3-ubyte"), ms.ToArray()[..5000]);
        }
        File.Copy(Path.Combine(Fixtures.FashionMnistDirectory, "t10k-labels-idx1-ubyte.gz"), Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"));
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(Split.Test, dir));
        Assert.Contains("truncated", e.Message);
    }
}
