using System.CommandLine;
using TerDiT.Runtime.Config;

namespace TerDiT.Cli.Commands;

/// <summary>The options that choose a model config: a preset and the ablation switches.</summary>
sealed class ModelOptions
{
    public readonly Option<string> Preset = new("--preset")
    {
        Description = $"model size: {string.Join(", ", Presets.Names)}",
    };
    public readonly Option<bool> FullPrecision = new("--full-precision") { Description = "the full-precision baseline instead of ternary layers" };
    public readonly Option<bool> NoAdaLnNorm = new("--no-adaln-norm") { Description = "leave out TerDiT's RMSNorm over the adaLN modulation (ablation)" };
    public readonly Option<string> AlphaInit = new("--alpha-init")
    {
        Description = "initial ternary scale: normal (N(0,1), the authors') or absmean (mean |W|)",
        DefaultValueFactory = _ => "normal",
    };

    public ModelOptions(bool presetRequired)
    {
        Preset.Required = presetRequired;
        AlphaInit.AcceptOnlyFromAmong("normal", "absmean");
        Preset.Validators.Add(r =>
        {
            var name = r.GetValueOrDefault<string>();
            if (name is not null && !Presets.All.ContainsKey(name))
                r.AddError($"unknown preset '{name}'; known presets: {string.Join(", ", Presets.Names)}");
        });
    }

    public void AddTo(Command command)
    {
        command.Add(Preset); command.Add(FullPrecision); command.Add(NoAdaLnNorm); command.Add(AlphaInit);
    }

    /// <summary>The chosen config, or null when no preset was given.</summary>
    public TerDiTConfig? Resolve(ParseResult p)
    {
        var name = p.GetValue(Preset);
        if (name is null) return null;
        return Presets.Get(name) with
        {
            Ternary = !p.GetValue(FullPrecision),
            AdaLnNorm = !p.GetValue(NoAdaLnNorm),
            AlphaInit = p.GetValue(AlphaInit) == "absmean" ? Runtime.Config.AlphaInit.Absmean : Runtime.Config.AlphaInit.Normal,
        };
    }
}
