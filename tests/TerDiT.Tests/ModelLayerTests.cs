using TerDiT.Model;
using TerDiT.Runtime.Config;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class ModelLayerTests
{
    [Fact]
    public void RopeRotatesAdjacentPairsByTokenIndexAngles()
    {
        const int n = 2, t = 5, h = 3, hd = 8;
        using var x = randn(n, t, h, hd, generator: new Generator(1, CPU));
        using var table = RotaryEmbedding.Table(t, hd, CPU);
        using var y = RotaryEmbedding.Apply(x, table);
        var xs = x.data<float>().ToArray();
        var expected = new float[xs.Length];
        for (int b = 0; b < n; b++)
            for (int tok = 0; tok < t; tok++)
                for (int head = 0; head < h; head++)
                    for (int i = 0; i < hd / 2; i++)
                    {
                        int at = ((b * t + tok) * h + head) * hd + 2 * i;
                        double angle = tok / Math.Pow(10000, 2.0 * i / hd);
                        double re = xs[at], im = xs[at + 1];
                        expected[at] = (float)(re * Math.Cos(angle) - im * Math.Sin(angle));
                        expected[at + 1] = (float)(re * Math.Sin(angle) + im * Math.Cos(angle));
                    }
        TensorAssert.Close(tensor(expected).view(n, t, h, hd), y, rtol: 1e-5, atol: 1e-6, what: "RoPE");
    }

    [Fact]
    public void PatchifyOrdersFeaturesChannelRowColumn()
    {
        const int n = 2, c = 3, p = 2, size = 6, g = size / p;
        using var x = arange(n * c * size * size, dtype: ScalarType.Float32).view(n, c, size, size);
        using var tokens = Patches.Patchify(x, p);
        Assert.Equal(new long[] { n, g * g, c * p * p }, tokens.shape);
        var xv = x.data<float>().ToArray();
        var tv = tokens.data<float>().ToArray();
        for (int b = 0; b < n; b++)
            for (int gh = 0; gh < g; gh++)
                for (int gw = 0; gw < g; gw++)
                    for (int ch = 0; ch < c; ch++)
                        for (int r = 0; r < p; r++)
                            for (int q = 0; q < p; q++)
                            {
                                float pixel = xv[((b * c + ch) * size + gh * p + r) * size + gw * p + q];
                                float feature = tv[(b * g * g + gh * g + gw) * c * p * p + (ch * p + r) * p + q];
                                Assert.Equal(pixel, feature);
                            }
    }

    [Fact]
    public void UnpatchifyReadsRowColumnChannelAndRoundTrips()
    {
        const int n = 2, c = 3, p = 2, size = 6, g = size / p;
        using var tokens = arange(n * g * g * p * p * c, dtype: ScalarType.Float32).view(n, g * g, p * p * c);
        using var image = Patches.Unpatchify(tokens, p, c, g, g);
        Assert.Equal(new long[] { n, c, size, size }, image.shape);
        var tv = tokens.data<float>().ToArray();
        var iv = image.data<float>().ToArray();
        for (int b = 0; b < n; b++)
            for (int gh = 0; gh < g; gh++)
                for (int gw = 0; gw < g; gw++)
                    for (int r = 0; r < p; r++)
                        for (int q = 0; q < p; q++)
                            for (int ch = 0; ch < c; ch++)
                                Assert.Equal(tv[(b * g * g + gh * g + gw) * p * p * c + (r * p + q) * c + ch],
                                    iv[((b * c + ch) * size + gh * p + r) * size + gw * p + q]);

        // Round trip: patchify's (c, row, col) features reordered to (row, col, c) unpatchify back to the image.
        using var x = randn(n, c, size, size, generator: new Generator(2, CPU));
        using var reordered = Patches.Patchify(x, p).view(n, g * g, c, p * p).transpose(2, 3).reshape(n, g * g, p * p * c);
        TensorAssert.Equal(x, Patches.Unpatchify(reordered, p, c, g, g), "round trip");
        Assert.Throws<ArgumentException>(() => Patches.Patchify(x, 4));
    }

    [Fact]
    public void TimestepFeaturesAreCosThenSin()
    {
        using var t = tensor(new long[] { 0, 1, 999 });
        using var f = TimestepEmbedder.Features(t);
        Assert.Equal(new long[] { 3, 256 }, f.shape);
        var v = f.data<float>().ToArray();
        long[] ts = [0, 1, 999];
        for (int row = 0; row < 3; row++)
            foreach (int i in new[] { 0, 1, 17, 64, 127 })
            {
                double arg = ts[row] * Math.Exp(-Math.Log(10000) * i / 128);
                Assert.Equal(Math.Cos(arg), v[row * 256 + i], 3);
                Assert.Equal(Math.Sin(arg), v[row * 256 + 128 + i], 3);
            }
    }

    [Fact]
    public void LabelDropoutIsSeededAndHitsTheRequestedRate()
    {
        using var y = arange(10, dtype: ScalarType.Int64).repeat(1000);   // (10000)
        using var none = LabelEmbedder.LabelDropout(y, 0, 10, new Generator(5, CPU));
        TensorAssert.Equal(y, none, "p = 0");
        using var all = LabelEmbedder.LabelDropout(y, 1, 10, new Generator(5, CPU));
        Assert.True((all == 10).all().item<bool>());

        using var a = LabelEmbedder.LabelDropout(y, 0.1, 10, new Generator(5, CPU));
        using var b = LabelEmbedder.LabelDropout(y, 0.1, 10, new Generator(5, CPU));
        TensorAssert.Equal(a, b, "same seed");
        using var dropped = a == 10;
        double rate = dropped.to(ScalarType.Float64).mean().item<double>();
        Assert.InRange(rate, 0.085, 0.115);                                 // 0.1 ± 5σ (σ = 0.003)
        using var kept = a.masked_select(dropped.logical_not());
        using var original = y.masked_select(dropped.logical_not());
        TensorAssert.Equal(original, kept, "kept labels");
    }

    [Theory]
    [InlineData(true, AlphaInit.Normal)]
    [InlineData(true, AlphaInit.Absmean)]
    [InlineData(false, AlphaInit.Normal)]
    public void BlocksAreTheIdentityAtInitialisation(bool ternary, AlphaInit alphaInit)
    {
        var config = Presets.Get("TerDiT-Tiny") with { Depth = 2, Ternary = ternary, AlphaInit = alphaInit };
        var model = new TerDiTModel(config, seed: 3);
        var g = new Generator(4, CPU);
        using var x = randn(2, config.Tokens, config.HiddenSize, generator: g);
        using var c = randn(2, config.CondDim, generator: g);
        using var rope = RotaryEmbedding.Table(config.Tokens, config.HeadDim, CPU);
        using (no_grad())
        {
            foreach (var block in model.Blocks)
                TensorAssert.Equal(x, block.call(x, c, rope), "block output at init");

            // Non-zero modulation weights make the same block change x (so the check above can fail).
            var adaLN = model.Blocks[0].named_parameters().First(p => p.name == "adaLN_modulation.weight").parameter;
            adaLN.normal_(0, 0.1, g);
            using var moved = model.Blocks[0].call(x, c, rope);
            Assert.True((moved - x).abs().max().item<float>() > 1e-2, "block ignores its modulation");
        }
    }
}
