using TerDiT.Runtime.Imaging;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class ImagingTests
{
    /// <summary>
    /// The one pixel rule (<see cref="PngGrid.ToPixels"/>) gives torch's bytes for
    /// <c>x.clamp(-1, 1).add(1).mul(127.5).round()</c>, the rule the committed grids were written with, on
    /// random values, values out of range and every float within 64 ulps of each tie (k + ½ after scaling).
    /// </summary>
    [Fact]
    public void PixelsEqualTorchsRoundHalfToEven()
    {
        var rng = new Random(3);
        var values = Enumerable.Range(0, 100_000).Select(_ => (float)(rng.NextDouble() * 2.2 - 1.1)).ToList();
        for (int k = 0; k < 255; k++)
        {
            float x = (float)((k + 0.5) / 127.5 - 1);
            for (int i = 0; i < 64; i++) x = MathF.BitDecrement(x);
            for (int i = 0; i <= 128; i++, x = MathF.BitIncrement(x)) values.Add(x);
        }
        var input = values.ToArray();
        using var t = tensor(input);
        using var q = t.clamp(-1, 1).add(1).mul(127.5).round().to(ScalarType.Byte);
        Assert.Equal(q.data<byte>().ToArray(), PngGrid.ToPixels(input));
    }
}
