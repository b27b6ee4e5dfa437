using TerDiT.Cli;
using TerDiT.Testing;
using Xunit;

namespace TerDiT.Tests;

public class ShippedModelTests
{
    [Fact]
    public void SampleWithoutAModelUsesTheShippedPackedModel()
    {
        using var dir = new TempDirectory("shipped");
        var png = dir.File("grid.png");
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        int code = CliApp.Run(["sample", "--classes", "0,7", "--per-class", "2", "--steps", "3", "--out", png], stdout, stderr);
        Assert.True(code == 0, stderr.ToString());
        Assert.Contains("terdit-s-fmnist.tdit", stdout.ToString());
        var bytes = File.ReadAllBytes(png);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
    }
}
