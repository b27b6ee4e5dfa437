using System.CommandLine;
using System.Text.Json;
using TerDiT.Runtime.Config;

namespace TerDiT.Cli.Commands;

/// <summary><c>terdit info --preset NAME</c>: the config and exact parameter counts, from the schema (nothing allocated).</summary>
static class InfoCommand
{
    public static Command Create()
    {
        var model = new ModelOptions(presetRequired: true);
        var command = new Command("info", "Print a model's config and its parameter counts.");
        model.AddTo(command);
        command.SetAction(p => CliApp.Guard(p, output =>
        {
            var config = model.Resolve(p)!.Validate();
            Print(output, config);
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
}
