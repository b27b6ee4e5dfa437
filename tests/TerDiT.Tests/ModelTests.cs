using TerDiT.Model;
using TerDiT.Runtime.Config;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class ModelTests
{
    static TerDiTConfig Tiny => Presets.Get("TerDiT-Tiny");

    public static TheoryData<string> Variants => new()
    {
        "Tiny", "S", "Tiny-fp", "Tiny-noqk", "Tiny-noadalnnorm", "Tiny-rgb", "Tiny-16", "Tiny-nosigma", "Tiny-fp-noqk-noadalnnorm",
    };

    static TerDiTConfig Variant(string name) => name switch
    {
        "Tiny" => Tiny,
        "S" => Presets.Get("TerDiT-S"),
        "S-2" => Presets.Get("TerDiT-S") with { Depth = 2 },
        "Tiny-fp" => Tiny with { Ternary = false },
        "Tiny-noqk" => Tiny with { QkNorm = false },
        "Tiny-noadalnnorm" => Tiny with { AdaLnNorm = false },
        "Tiny-rgb" => Tiny with { InChannels = 3 },
        "Tiny-16" => Tiny with { InputSize = 16 },
        "Tiny-nosigma" => Tiny with { LearnSigma = false, Depth = 1 },
        "Tiny-fp-noqk-noadalnnorm" => Tiny with { Ternary = false, QkNorm = false, AdaLnNorm = false, Depth = 2 },
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void ParametersEqualTheSchemaInNameShapeAndOrder(string variant)
    {
        var config = Variant(variant);
        var model = new TerDiTModel(config);
        var actual = model.named_parameters().Select(p => $"{p.name} [{string.Join(", ", p.parameter.shape)}]").ToArray();
        var expected = ParameterSchema.Enumerate(config).Select(s => $"{s.Name} [{string.Join(", ", s.Shape)}]").ToArray();
        Assert.Equal(expected, actual);
        Assert.Equal(ParameterSchema.ParameterCount(config), model.parameters().Sum(p => p.numel()));
        Assert.Equal(config.Ternary ? 8 * config.Depth : 0, model.TernaryLayers.Count());
        Assert.Equal(ParameterSchema.TernaryParameterCount(config), model.TernaryLayers.Sum(l => l.Weight.numel()));
    }

    [Theory]
    [InlineData("Tiny", 3)]
    [InlineData("Tiny-rgb", 2)]
    [InlineData("Tiny-16", 2)]
    [InlineData("Tiny-nosigma", 2)]
    [InlineData("S-2", 1)]
    public void ForwardMapsImagesToOutputChannels(string variant, int batch)
    {
        var config = Variant(variant);
        var model = new TerDiTModel(config, seed: 1);
        RandomiseZeroInitLayers(model, 2);
        var g = new Generator(9, CPU);
        using var x = randn(batch, config.InChannels, config.InputSize, config.InputSize, generator: g);
        using var t = randint(0, 1000, [batch], dtype: ScalarType.Int64, generator: g);
        using var y = randint(0, config.NumClasses + 1, [batch], dtype: ScalarType.Int64, generator: g);
        using var _ = no_grad();
        using var o = model.call(x, t, y);
        Assert.Equal(new long[] { batch, config.OutChannels, config.InputSize, config.InputSize }, o.shape);
        Assert.True(o.isfinite().all().item<bool>(), "non-finite output");
        Assert.True(o.std().item<float>() > 1e-3, "output is constant");
    }

    [Fact]
    public void OutputDependsOnInputTimestepAndLabel()
    {
        var config = Tiny with { Depth = 2 };
        var model = new TerDiTModel(config, seed: 1);
        RandomiseZeroInitLayers(model, 2);
        var g = new Generator(10, CPU);
        using var x = randn(2, 1, 32, 32, generator: g);
        using var t = tensor(new long[] { 10, 500 });
        using var y = tensor(new long[] { 3, 10 });
        using var _ = no_grad();
        using var o = model.call(x, t, y);
        // Each sample is processed independently of the rest of the batch.
        TensorAssert.Close(o[1].unsqueeze(0), model.call(x[1].unsqueeze(0), t[1].unsqueeze(0), y[1].unsqueeze(0)), 1e-4, 1e-5, "batch independence");
        Assert.True((o - model.call(x, tensor(new long[] { 11, 500 }), y))[0].abs().max().item<float>() > 1e-4, "timestep ignored");
        Assert.True((o - model.call(x, t, tensor(new long[] { 4, 10 })))[0].abs().max().item<float>() > 1e-4, "label ignored");
        Assert.True((o - model.call(x * 1.1f, t, y)).abs().max().item<float>() > 1e-4, "input ignored");
    }

    [Fact]
    public void InitialisationFollowsTheRulesAndIsSeeded()
    {
        var config = Tiny;
        var model = new TerDiTModel(config, seed: 5);
        var p = model.named_parameters().ToDictionary(q => q.name, q => q.parameter);
        foreach (var name in new[] { "x_embedder.bias", "blocks.0.adaLN_modulation.weight", "blocks.3.adaLN_modulation.bias",
                     "final_layer.adaLN_modulation.weight", "final_layer.adaLN_modulation.bias", "final_layer.linear.weight", "final_layer.linear.bias",
                     "t_embedder.fc1.bias", "blocks.1.attention.q_norm.bias" })
            Assert.True(p[name].count_nonzero().item<long>() == 0, $"{name} should be zero");
        foreach (var name in new[] { "blocks.2.attention_norm.weight", "blocks.2.ffn_norm.weight", "blocks.2.adaLN_norm.weight", "blocks.0.attention.k_norm.weight" })
            Assert.True((p[name] == 1).all().item<bool>(), $"{name} should be one");
        foreach (var name in new[] { "t_embedder.fc1.weight", "t_embedder.fc2.weight", "y_embedder.embedding_table.weight" })
            Assert.InRange(p[name].std().item<float>(), 0.018, 0.022);
        // xavier-uniform: U(−a, a), a = sqrt(6 / (in + out)), std a / sqrt(3).
        foreach (var (name, fanIn, fanOut) in new[] { ("blocks.0.attention.wq.weight", 128, 128), ("blocks.1.feed_forward.w2.weight", 512, 128), ("x_embedder.weight", 16, 128) })
        {
            double a = Math.Sqrt(6.0 / (fanIn + fanOut));
            Assert.True(p[name].abs().max().item<float>() <= a, $"{name} exceeds the xavier bound");
            Assert.InRange(p[name].std().item<float>(), 0.95 * a / Math.Sqrt(3), 1.05 * a / Math.Sqrt(3));
        }
        var alphas = model.TernaryLayers.Select(l => l.Alpha.item<float>()).ToArray();
        Assert.Equal(alphas.Length, alphas.Distinct().Count());                      // N(0, 1) draws, not a constant

        var same = new TerDiTModel(config, seed: 5).named_parameters().ToDictionary(q => q.name, q => q.parameter);
        var other = new TerDiTModel(config, seed: 6).named_parameters().ToDictionary(q => q.name, q => q.parameter);
        foreach (var (name, value) in p) TensorAssert.Equal(value, same[name], name);
        Assert.False(p["blocks.0.attention.wq.weight"].allclose(other["blocks.0.attention.wq.weight"]));
    }

    [Fact]
    public void AbsmeanAlphaIsGammaOfTheInitialWeight()
    {
        var model = new TerDiTModel(Tiny with { AlphaInit = AlphaInit.Absmean, Depth = 1 }, seed: 2);
        foreach (var layer in model.TernaryLayers)
        {
            float gamma = layer.Weight.abs().mean().item<float>();
            double expected = gamma > 0 ? gamma : Math.Sqrt(6.0 / (layer.InFeatures + layer.OutFeatures)) / 2;
            Assert.Equal(expected, layer.Alpha.item<float>(), 6);
        }
    }

    [Fact]
    public void BadInputsAreRefusedWithClearMessages()
    {
        var model = new TerDiTModel(Tiny with { Depth = 1 });
        using var x = zeros(2, 1, 32, 32);
        using var t = zeros(2, dtype: ScalarType.Int64);
        using var y = zeros(2, dtype: ScalarType.Int64);
        Assert.Contains("x must be (N, 1, 32, 32)", Assert.Throws<ArgumentException>(() => model.call(zeros(2, 1, 16, 16), t, y)).Message);
        Assert.Contains("t must be an int64", Assert.Throws<ArgumentException>(() => model.call(x, zeros(2), y)).Message);
        Assert.Contains("y must be an int64", Assert.Throws<ArgumentException>(() => model.call(x, t, zeros(3, dtype: ScalarType.Int64))).Message);
        Assert.Contains("labels must be in [0, 10]", Assert.Throws<ArgumentException>(() => model.call(x, t, tensor(new long[] { 0, 11 }))).Message);
        Assert.Contains("Float64", Assert.Throws<ArgumentException>(() => model.call(x.to(ScalarType.Float64), t, y)).Message);
        Assert.Throws<ArgumentException>(() => new TerDiTModel(Tiny with { NumHeads = 3 }));
    }

    [Fact]
    public void FullPrecisionWeightsTernarizeAfterTraining()
    {
        var config = Tiny with { Depth = 1 };
        var fp = new TerDiTModel(config with { Ternary = false }, seed: 3);
        RandomiseZeroInitLayers(fp, 4);
        var ternary = new TerDiTModel(config, seed: 8);
        ternary.LoadFullPrecisionWeights(fp.state_dict());
        var source = fp.state_dict();
        foreach (var (name, p) in ternary.named_parameters().Where(q => !q.name.EndsWith(".alpha")))
            TensorAssert.Equal(source[name], p, name);
        foreach (var layer in ternary.TernaryLayers)
            Assert.Equal(layer.Weight.abs().mean().item<float>(), layer.Alpha.item<float>(), 6);

        // The ternary model computes with gamma · W_t: close to, not equal to, the full-precision model.
        var g = new Generator(1, CPU);
        using var x = randn(2, 1, 32, 32, generator: g);
        using var t = tensor(new long[] { 100, 900 });
        using var y = tensor(new long[] { 1, 2 });
        using var _ = no_grad();
        using var a = fp.call(x, t, y);
        using var b = ternary.call(x, t, y);
        double relative = ((a - b).norm() / a.norm()).item<float>();
        Assert.InRange(relative, 1e-3, 0.9);

        Assert.Throws<ArgumentException>(() => ternary.LoadFullPrecisionWeights(ternary.state_dict()));   // has alphas
        Assert.Throws<InvalidOperationException>(() => fp.LoadFullPrecisionWeights(fp.state_dict()));
    }

    /// <summary>
    /// A bf16 model computes what the fp32 model computes with the same (bf16-representable)
    /// parameters, up to bf16 arithmetic. (Against the original fp32 weights a ternary model differs
    /// more: rounding latent weights to bf16 flips ~0.03% of trits, ~9% output change on this model.)
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RunsInBFloat16CloseToFloat32(bool ternary)
    {
        var config = Tiny with { Depth = 2, Ternary = ternary };
        var fp32 = new TerDiTModel(config, seed: 4);
        RandomiseZeroInitLayers(fp32, 6);
        using (no_grad())
            foreach (var (_, p) in fp32.named_parameters()) p.copy_(p.to(ScalarType.BFloat16));
        var bf16 = new TerDiTModel(config, seed: 4);
        bf16.load_state_dict(fp32.state_dict());
        bf16.to(ScalarType.BFloat16);
        var g = new Generator(11, CPU);
        using var x = randn(2, 1, 32, 32, generator: g).to(ScalarType.BFloat16).to(ScalarType.Float32);
        using var t = tensor(new long[] { 3, 700 });
        using var y = tensor(new long[] { 5, 10 });
        using var _ = no_grad();
        using var a = fp32.call(x, t, y);
        using var b = bf16.call(x.to(ScalarType.BFloat16), t, y);
        Assert.Equal(ScalarType.BFloat16, b.dtype);
        double relative = ((a - b.to(ScalarType.Float32)).norm() / a.norm()).item<float>();
        Assert.True(relative < 0.03, $"bf16 output differs from fp32 by {relative:P1}");
    }

    /// <summary>Gives the zero-initialised layers (adaLN, final linear) random values so outputs depend on everything.</summary>
    internal static void RandomiseZeroInitLayers(TerDiTModel model, ulong seed)
    {
        var g = new Generator(seed, CPU);
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
            if (name.Contains("adaLN_modulation") || name.StartsWith("final_layer.linear"))
                p.normal_(0, 0.05, g);
    }
}
