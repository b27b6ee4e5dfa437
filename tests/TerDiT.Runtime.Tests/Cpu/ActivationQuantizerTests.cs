using TerDiT.Runtime.Cpu;
using Xunit;

namespace TerDiT.Runtime.Tests.Cpu;

public class ActivationQuantizerTests
{
    [Fact]
    public void Vectorised_IsBitIdenticalToTheReference_ForEveryTailLength()
    {
        var rng = new Random(11);
        for (int len = 0; len <= 257; len++)
        {
            var x = new float[len];
            for (int i = 0; i < len; i++) x[i] = (float)(rng.NextDouble() * 8 - 4);
            if (len > 3) x[len / 2] = -9.5f;   // the absmax element must map to exactly -127
            var qr = new sbyte[len];
            var qv = new sbyte[len];
            float sr = ActivationQuantizer.QuantizeRowReference(x, qr);
            float sv = ActivationQuantizer.QuantizeRow(x, qv);
            Assert.Equal(sr, sv);
            Assert.Equal(qr, qv);
            if (len > 3)
            {
                Assert.Equal(-127, qr[len / 2]);
                Assert.Equal(9.5f / 127, sr);
                for (int i = 0; i < len; i++) Assert.True(Math.Abs(qr[i] * sr - x[i]) <= sr / 2 * 1.0001f, $"len {len} element {i}");
            }
        }
    }

    [Fact]
    public void DegenerateRows()
    {
        var q = new sbyte[4];
        Assert.Equal(0f, ActivationQuantizer.QuantizeRow(new float[4], q));
        Assert.All(q, v => Assert.Equal(0, v));
        Assert.True(float.IsNaN(ActivationQuantizer.QuantizeRowReference([1, float.NaN, 2, 3], q)));
        Assert.True(float.IsNaN(ActivationQuantizer.QuantizeRow([1, float.PositiveInfinity, 2, 3], q)));
        Assert.Equal([0, 0, 0, 0], q);
        Assert.Throws<ArgumentException>(() => ActivationQuantizer.QuantizeRow(new float[4], new sbyte[3]));
    }
}
