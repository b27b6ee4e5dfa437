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

    /// <summary>
    /// Config keys are the property names, case-sensitive, all of them: any other key is refused by name instead of
    /// silently ignored, and a missing key is refused instead of becoming 0 or false.
    /// </summary>
    [Fact]
    public void ConfigJsonRefusesUnknownAndMissingKeysByName()
    {
        string json = Presets.Get("TerDiT-S").ToJson();
        Assert.Equal(TerDiTConfig.JsonKeys.Count, System.Text.Json.JsonDocument.Parse(json).RootElement.EnumerateObject().Count());
        Assert.Contains("\"HiddenSize\":384", json);
        var e = Assert.Throws<FormatException>(() => TerDiTConfig.FromJson(json.Replace("\"HiddenSize\"", "\"hiddenSize\"").Replace("\"Depth\"", "\"depth\"")));
        Assert.Contains("unknown key(s) 'hiddenSize', 'depth'", e.Message);
        Assert.Contains("HiddenSize", e.Message);
        var missing = Assert.Throws<FormatException>(() => TerDiTConfig.FromJson("{\"HiddenSize\": 384, \"Depth\": 12, \"NumHeads\": 6}"));
        Assert.Contains("lacks the key(s) 'Name', 'InChannels'", missing.Message);
        Assert.Contains("is a JSON Array", Assert.Throws<FormatException>(() => TerDiTConfig.FromJson("[1]")).Message);
        Assert.Contains("is null", Assert.Throws<FormatException>(() => TerDiTConfig.FromJson("null")).Message);
    }
}
