using TerDiT.Runtime.Config;
using TerDiT.Runtime.Model;
using Xunit;

namespace TerDiT.Runtime.Tests;

/// <summary>Sizes that come from outside are bounded before anything is allocated from them.</summary>
public sealed class ResourceBoundsTests
{
    [Fact]
    public void EveryPresetIsWithinTheConfigBounds()
    {
        foreach (var c in Presets.All.Values) c.Validate();
    }

    [Theory]
    [InlineData("InChannels", 1025, "InChannels 1025 is outside 1..1024")]
    [InlineData("InputSize", 8193, "InputSize 8193 is outside 1..8192")]
    [InlineData("HiddenSize", 65537 * 2, "HiddenSize 131074 is outside 1..65536")]
    [InlineData("Depth", 1_000_000, "Depth 1000000 is outside 1..1024")]
    [InlineData("NumClasses", 20_000_000, "NumClasses 20000000 is outside 1..16777216")]
    [InlineData("FfnMultipleOf", 0, "FfnMultipleOf 0 is outside 1..65536")]
    [InlineData("InputSize", 1024, "512 patches a side make 262144 tokens, more than 65536")]
    public void SizesOutsideTheirBoundsAreRefused(string key, int value, string expected)
    {
        var c = Presets.Get("TerDiT-S");
        var json = c.ToJson().Replace($"\"{key}\":{typeof(TerDiTConfig).GetProperty(key)!.GetValue(c)}", $"\"{key}\":{value}");
        Assert.Contains(expected, Assert.Throws<ArgumentException>(() => TerDiTConfig.FromJson(json)).Message);
    }

    [Fact]
    public void PatchFeaturesAndEnumsAreChecked()
    {
        var c = Presets.Get("TerDiT-S");
        Assert.Contains("features exceeds", Assert.Throws<ArgumentException>(() => (c with { InChannels = 1024, InputSize = 64, PatchSize = 64 }).Validate()).Message);
        Assert.Contains("AlphaInit 7 is not one of Normal, Absmean",
            Assert.Throws<ArgumentException>(() => TerDiTConfig.FromJson(c.ToJson().Replace("\"AlphaInit\":\"Normal\"", "\"AlphaInit\":7"))).Message);
    }

    /// <summary>65536 tokens: the attention scores of one head, T², exceed the largest array, so the model refuses at construction.</summary>
    [Fact]
    public void ModelWhoseAttentionCannotBeAllocatedIsRefused()
    {
        var config = new TerDiTConfig
        {
            Name = "wide", InChannels = 1, InputSize = 256, PatchSize = 1, HiddenSize = 8, Depth = 1, NumHeads = 2, NumClasses = 2, FfnMultipleOf = 8,
        };
        var (weights, _) = ModelTestWeights.Random(config, 1);
        var e = Assert.Throws<InsufficientMemoryException>(() => new RuntimeModel(weights, new RuntimeOptions { Threads = 1 }));
        Assert.Contains("attention over 65536 tokens", e.Message);
    }

    [Fact]
    public void BudgetRefusesMoreThanTheMachineHas()
    {
        MemoryBudget.Require(1 << 20, "a megabyte");
        var e = Assert.Throws<InsufficientMemoryException>(() => MemoryBudget.Require(MemoryBudget.Available + 1, "the test's request"));
        Assert.StartsWith("the test's request needs ", e.Message);
        Assert.Equal(long.MaxValue, MemoryBudget.Multiply(1L << 40, 1L << 40));
        Assert.Equal(6, MemoryBudget.Multiply(2, 3));
    }
}
