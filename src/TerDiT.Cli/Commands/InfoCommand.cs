using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit info --preset NAME</c>: the config and exact parameter counts, from the schema (nothing allocated).
/// <c>terdit info MODEL.tdit</c>: a packed model's metadata, config and byte counts (file validated, checksum included).
/// </summary>
static class InfoCommand
{
    public static Command Create()
    {
        var model = new ModelOptions(presetRequired: false);
        var file = new Argument<string?>("MODEL") { Description = "a packed model (.tdit) to describe", Arity = ArgumentArity.ZeroOrOne };
        file.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string?>() is { } value && value.StartsWith('-'))
                r.AddError($"unknown option '{value}' (a model file name cannot start with '-')");
        });
        var command = new Command("info", "Print a packed model's sizes and config, or a preset's config and parameter counts.");
        command.Add(file);
        model.AddTo(command);
        command.SetAction(p => CliApp.Guard(p, output =>
        {
            var path = p.GetValue(file);
            var config = model.Resolve(p);
            if ((path is null) == (config is null)) throw new ArgumentException("give a packed model (terdit info MODEL.tdit) or --preset NAME, not both");
            if (path is not null) PrintPacked(output, path);
            else Print(output, config!.Validate());
            return 0;
        }));
        return command;
    }

    /// <summary>The config as indented JSON, then <c>parameters: N</c> and <c>ternary parameters: N</c>.</summary>
    public static void Print(TextWriter output, TerDiTConfig config)
    {
        output.WriteLine($"config: {JsonSerializer.Serialize(JsonDocument.Parse(config.ToJson()), new JsonSerializerOptions { WriteIndented = true })}");
        output.WriteLine($"tokens: {config.Tokens}, head dim: {config.HeadDim}, FFN hidden: {config.FfnHidden}, cond dim: {config.CondDim}");
        output.WriteLine($"parameters: {ParameterSchema.ParameterCount(config)}");
        output.WriteLine($"ternary parameters: {ParameterSchema.TernaryParameterCount(config)}");
    }

    /// <summary>
    /// A packed model: its metadata, <see cref="Print"/>'s config lines, then the byte counts of
    /// <see cref="TditSizes"/> and <c>ratio: R× smaller than the fp32 weights</c>.
    /// </summary>
    static void PrintPacked(TextWriter output, string path)
    {
        using var f = TditFile.Open(path);
        var m = f.Info;
        var fullDTypes = f.Tensors.Where(t => t.Kind == ParameterKind.Full).Select(t => t.DType.Name()).Distinct();
        output.WriteLine($"model: {path}");
        output.WriteLine($"preset: {m.Preset}, weights: {m.Weights.ToString().ToLowerInvariant()}, source: {m.Source}");
        output.WriteLine($"ternary layout: {m.TernaryLayout ?? "(none: full precision)"}, full-precision dtype: {string.Join("/", fullDTypes)}");
        output.WriteLine($"classes: {string.Join(", ", m.Classes.Take(10))}{(m.Classes.Count > 10 ? $", … ({m.Classes.Count})" : "")}");
        if (m.Latent is { } l)
            output.WriteLine($"latent model: decode with VAE '{l.Vae}'{(l.VaeSha256 is null ? "" : $" (weights sha256 {l.VaeSha256})")}, latents scaled by {l.ScalingFactor.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        Print(output, f.Config);
        var s = f.Sizes;
        output.WriteLine($"file bytes: {s.FileBytes}");
        output.WriteLine($"packed ternary bytes: {s.PackedTernaryBytes}");
        output.WriteLine($"ternary scale bytes: {s.ScaleBytes}");
        output.WriteLine($"full-precision bytes: {s.FullPrecisionBytes}");
        output.WriteLine($"header bytes: {s.HeaderBytes}");
        output.WriteLine($"fp32 weights bytes: {s.Fp32EquivalentBytes}");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio: {s.CompressionRatio:F2}× smaller than the fp32 weights"));
    }
}
