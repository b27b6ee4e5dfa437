using TerDiT.Runtime.Config;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class ParameterSchemaTests
{
    [Theory]
    [InlineData("TerDiT-600M", 609.9e6, 604.0e6)]
    [InlineData("TerDiT-4.2B", 4238e6, 4228e6)]
    [InlineData("TerDiT-7B", 7294e6, 0)]
    public void PaperPresetsMatchPublishedCounts(string preset, double total, double ternary)
    {
        var c = Presets.Get(preset);
        Assert.InRange(ParameterSchema.ParameterCount(c), total * 0.99, total * 1.01);
        if (ternary > 0) Assert.InRange(ParameterSchema.TernaryParameterCount(c), ternary * 0.99, ternary * 1.01);
    }

    [Fact]
    public void FfnHiddenFollowsTheRoundingRule()
    {
        Assert.Equal(4096, Presets.Get("TerDiT-600M").FfnHidden);
        Assert.Equal(8192, Presets.Get("TerDiT-4.2B").FfnHidden);
        Assert.Equal(11008, Presets.Get("TerDiT-7B").FfnHidden);
    }

    [Fact]
    public void FullPrecisionHasNoTernaryTensors()
    {
        var c = Presets.Get("TerDiT-Tiny") with { Ternary = false };
        Assert.Equal(0, ParameterSchema.TernaryParameterCount(c));
        Assert.DoesNotContain(ParameterSchema.Enumerate(c), p => p.Name.EndsWith(".alpha"));
    }

    [Fact]
    public void ConfigRoundTripsThroughJsonAndRejectsBadShapes()
    {
        var c = Presets.Get("TerDiT-S") with { AlphaInit = AlphaInit.Absmean, AdaLnNorm = false };
        Assert.Equal(c, TerDiTConfig.FromJson(c.ToJson()));
        Assert.Throws<ArgumentException>(() => (c with { InputSize = 30, PatchSize = 4 }).Validate());
        Assert.Throws<FormatException>(() => TerDiTConfig.FromJson("{not json"));
        Assert.Throws<ArgumentException>(() => Presets.Get("TerDiT-XXL"));
    }
}
