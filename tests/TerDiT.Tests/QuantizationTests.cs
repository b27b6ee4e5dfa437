using TerDiT.Model;
using TerDiT.Runtime.Config;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class QuantizationTests
{
    // gamma = (0.9 + 0.1 + 0.4 + 2.0 + 0 + 0.6) / 6 = 2/3; W/gamma = 1.35, -0.15, 0.6, -3, 0, 0.9.
    static Tensor HandMade() => tensor(new float[] { 0.9f, -0.1f, 0.4f, -2.0f, 0f, 0.6f }).view(2, 3);

    [Fact]
    public void QuantizesHandMadeTensorWithAbsmean()
    {
        using var w = HandMade();
        using var q = TernaryLinear.Quantize(w);
        Assert.Equal(new float[] { 1, 0, 1, -1, 0, 1 }, q.data<float>().ToArray());

        var (trits, gamma) = TernaryLinear.Ternarize(w);
        using (trits)
        {
            Assert.Equal(ScalarType.Int8, trits.dtype);
            Assert.Equal(new long[] { 2, 3 }, trits.shape);
            Assert.Equal(new sbyte[] { 1, 0, 1, -1, 0, 1 }, trits.data<sbyte>().ToArray());
        }
        Assert.Equal(2.0 / 3, gamma, 6);
    }

    [Fact]
    public void RoundsToNearestAndClampsLargeValues()
    {
        // mean|W| = 8 / 8 = 1, so W/(gamma + 1e-6) is W shrunk by 1e-6: 0.5 lands just below the half.
        using var w = tensor(new float[] { 0.49f, 0.51f, -0.49f, -0.51f, 4f, -1.1f, 0.5f, 0.4f });
        Assert.Equal(1.0, w.abs().mean().item<float>(), 6);
        using var q = TernaryLinear.Quantize(w);
        Assert.Equal(new float[] { 0, 1, 0, -1, 1, -1, 0, 0 }, q.data<float>().ToArray());
    }

    [Fact]
    public void ForwardUsesAlphaTimesTernaryWeightPlusBias()
    {
        var layer = new TernaryLinear(3, 2, hasBias: true);
        using (no_grad())
        {
            layer.Weight.copy_(HandMade());
            layer.Alpha.fill_(0.75);
            layer.Bias!.copy_(tensor(new float[] { 0.5f, -1f }));
        }
        using var x = tensor(new float[] { 1, 2, 3, -1, 0.5f, 2 }).view(2, 3);
        using var y = layer.call(x);
        // W_q = 0.75 · [[1, 0, 1], [-1, 0, 1]]
        var expected = tensor(new float[]
        {
            0.75f * (1 + 3) + 0.5f, 0.75f * (-1 + 3) - 1f,
            0.75f * (-1 + 2) + 0.5f, 0.75f * (1 + 2) - 1f,
        }).view(2, 2);
        TensorAssert.Close(expected, y, rtol: 1e-6, atol: 1e-6, what: "ternary forward");
    }

    [Fact]
    public void StraightThroughGradientReachesLatentWeightUnchangedAndAlphaGetsItsOwn()
    {
        var g = new Generator(7, CPU);
        var layer = new TernaryLinear(16, 8, hasBias: true);
        using (no_grad())
        {
            layer.Weight.normal_(0, 0.3, g);
            layer.Alpha.fill_(-1.7);
        }
        using var x = randn(5, 16, generator: g);
        using var r = randn(5, 8, generator: g);   // dL/dy
        using var loss = (layer.call(x) * r).sum();
        loss.backward();

        using var wt = TernaryLinear.Quantize(layer.Weight);
        using var gradWq = r.t().matmul(x);         // dL/dW_q, (8, 16)
        // STE: dL/dW = dL/dW_t = alpha · dL/dW_q, with no mask (also where |W| is large or W_t = 0).
        TensorAssert.Close(gradWq * -1.7, layer.Weight.grad!, rtol: 1e-5, atol: 1e-5, what: "dL/dW");
        TensorAssert.Close((gradWq * wt).sum().view(1), layer.Alpha.grad!, rtol: 1e-5, atol: 1e-5, what: "dL/dalpha");
        TensorAssert.Close(r.sum(dim: 0), layer.Bias!.grad!, rtol: 1e-6, atol: 1e-6, what: "dL/db");
        Assert.True(layer.Alpha.grad!.abs().item<float>() > 1e-3, "alpha gradient is unexpectedly zero");
    }

    [Fact]
    public void AlphaInitNormalIsSeededAndAbsmeanIsGamma()
    {
        var a = new TernaryLinear(4, 3);
        var b = new TernaryLinear(4, 3);
        a.InitAlpha(AlphaInit.Normal, new Generator(3, CPU));
        b.InitAlpha(AlphaInit.Normal, new Generator(3, CPU));
        Assert.Equal(a.Alpha.item<float>(), b.Alpha.item<float>());
        Assert.NotEqual(1f, a.Alpha.item<float>());

        using (no_grad()) a.Weight.copy_(HandMade().view(3, 2).repeat(1, 2));
        a.InitAlpha(AlphaInit.Absmean);
        Assert.Equal(2.0 / 3, a.Alpha.item<float>(), 6);
    }

    [Fact]
    public void AbsmeanAlphaOfZeroWeightFallsBackToXavierScale()
    {
        var layer = new TernaryLinear(24, 8, hasBias: true);   // weight zero, as adaLN-Zero leaves it
        layer.InitAlpha(AlphaInit.Absmean);
        Assert.Equal(Math.Sqrt(6.0 / 32) / 2, layer.Alpha.item<float>(), 6);
    }

    [Fact]
    public void ParametersAreNamedWeightAlphaBias()
    {
        var names = new TernaryLinear(4, 3, hasBias: true).named_parameters().Select(p => (p.name, string.Join("x", p.parameter.shape))).ToArray();
        Assert.Equal(new[] { ("weight", "3x4"), ("alpha", "1"), ("bias", "3") }, names);
        Assert.Equal(new[] { "weight", "alpha" }, new TernaryLinear(4, 3).named_parameters().Select(p => p.name));
        Assert.Throws<ArgumentException>(() => new TernaryLinear(0, 3));
    }
}
