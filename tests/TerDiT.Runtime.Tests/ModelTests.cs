using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Model;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class ModelTests
{
    /// <summary>Small enough for the scalar reference: D 32, 2 heads of 16, 16 tokens, FFN 96.</summary>
    internal static readonly TerDiTConfig Small = new()
    {
        Name = "test-small", InChannels = 2, InputSize = 8, PatchSize = 2, HiddenSize = 32, Depth = 2,
        NumHeads = 2, NumClasses = 5, FfnMultipleOf = 16,
    };

    public static TheoryData<string> Variants => new() { "default", "no-qknorm", "no-adalnnorm", "full-precision", "patch4-3ch" };

    static TerDiTConfig Variant(string name) => name switch
    {
        "default" => Small,
        "no-qknorm" => Small with { QkNorm = false },
        "no-adalnnorm" => Small with { AdaLnNorm = false },
        "full-precision" => Small with { Ternary = false },
        "patch4-3ch" => Small with { InChannels = 3, PatchSize = 4, InputSize = 12, NumHeads = 4, LearnSigma = false },
        _ => throw new ArgumentException(name),
    };

    [Theory, MemberData(nameof(Variants))]
    public void ForwardMatchesScalarReference(string variant)
    {
        var config = Variant(variant);
        var (weights, dense) = ModelTestWeights.Random(config, 11);
        int n = 3;
        var model = new RuntimeModel(weights, new RuntimeOptions { Threads = 2 });
        var x = TestData.Normal(n * model.InputLength, 5);
        int[] t = [0, 517, 999], y = [1, config.NullClass, 4];

        var expected = ModelReferenceForward.Run(config, dense, x, t, y);
        var actual = new float[n * model.OutputLength];
        model.Forward(x, t, y, actual);

        double err = TestData.RelativeError(actual, expected);
        // float32 throughout; the largest single source is the float32 timestep angle t·f (up to 999 rad,
        // ulp 6e-5), which DiT also computes in float32 — the double reference does not.
        Assert.True(err < 3e-5, $"relative error {err:E3}");
        Console.WriteLine($"{variant}: relative error {err:E3}");
        // Non-trivial: blocks change the output (the reference without the last block differs).
        Assert.True(TestData.RelativeError(expected, ModelReferenceForward.Run(config with { Depth = 1 }, dense, x, t, y)) > 0.05);
    }

    [Theory]
    [InlineData("default")]
    [InlineData("no-adalnnorm")]
    public void A8ForwardStaysCloseToScalarReference(string variant)
    {
        var config = Variant(variant);
        var (weights, dense) = ModelTestWeights.Random(config, 11);
        int n = 3;
        var model = new RuntimeModel(weights, new RuntimeOptions { Threads = 2, Mode = GemmMode.A8 });
        var x = TestData.Normal(n * model.InputLength, 5);
        int[] t = [0, 517, 999], y = [1, config.NullClass, 4];
        var expected = ModelReferenceForward.Run(config, dense, x, t, y);
        var actual = new float[n * model.OutputLength];
        model.Forward(x, t, y, actual);
        double err = TestData.RelativeError(actual, expected);
        Console.WriteLine($"A8 {variant}: relative error {err:E3}");
        Assert.True(err < 0.03, $"relative error {err:E3}");
        Assert.True(err > 1e-5, "A8 should not be exact"); // the mode switch reached the kernels
    }

    [Fact]
    public void ForwardIsIndependentOfThreadsAndBatchComposition()
    {
        var (weights, _) = ModelTestWeights.Random(Small, 3);
        var one = new RuntimeModel(weights, new RuntimeOptions { Threads = 1 });
        var two = new RuntimeModel(weights, new RuntimeOptions { Threads = 2 });
        int n = 4;
        var x = TestData.Normal(n * one.InputLength, 9);
        int[] t = [3, 50, 500, 999], y = [0, 1, 2, Small.NullClass];
        float[] a = new float[n * one.OutputLength], b = new float[a.Length];
        one.Forward(x, t, y, a);
        two.Forward(x, t, y, b);
        Assert.Equal(a, b);

        // Image 2 alone gives the same bits as inside the batch (reused, larger buffers included).
        var single = new float[one.OutputLength];
        two.Forward(x.AsSpan(2 * one.InputLength, one.InputLength), t.AsSpan(2, 1), y.AsSpan(2, 1), single);
        Assert.Equal(a.AsSpan(2 * one.OutputLength, one.OutputLength).ToArray(), single);
    }

    [Fact]
    public void BadInputsGiveClearMessages()
    {
        var (weights, _) = ModelTestWeights.Random(Small, 3);
        var model = new RuntimeModel(weights, new RuntimeOptions { Threads = 1 });
        var x = new float[model.InputLength];
        var o = new float[model.OutputLength];
        Assert.Contains("label 0 is 6", Assert.Throws<ArgumentException>(() => model.Forward(x, [1], [6], o)).Message);
        Assert.Contains("expected 1×128", Assert.Throws<ArgumentException>(() => model.Forward(new float[5], [1], [0], o)).Message);
        Assert.Contains("not provided", Assert.Throws<KeyNotFoundException>(() => new RuntimeModel(new InMemoryWeights(Small))).Message);
        Assert.Contains("expected 32",
            Assert.Throws<ArgumentException>(() => new InMemoryWeights(Small).SetFull("x_embedder.bias", new float[7])).Message);
    }
}
