using System.CommandLine;
using TerDiT.Model;
using TerDiT.Training;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit ptq</c>: post-training ternarization of a full-precision checkpoint (no quantization-aware training).
/// The chosen weights (EMA or raw) go into the same architecture with <c>Ternary = true</c> through
/// <see cref="TerDiTModel.LoadFullPrecisionWeights"/> (each alpha = gamma = mean |W| of its weight); the result is
/// written as <c>RUN_DIR2/checkpoints/step-NNNNNNN.ckpt</c> with the source's step, options and data identity,
/// both the model and the EMA weights set to the ternarized ones, and a fresh AdamW state (zero moments, step count 0),
/// so <c>sample</c> and <c>eval</c> read it with either <c>--weights</c> and <c>train --resume</c> continues from it as
/// quantization-aware fine-tuning.
/// </summary>
static class PtqCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "a full-precision .ckpt file, or a run directory (its latest checkpoint)", Required = true };
        var output = new Option<string>("--out") { Description = "run directory for the ternarized checkpoint", Required = true };
        var weights = new Option<string>("--weights") { Description = "which weights to ternarize: ema or raw", DefaultValueFactory = _ => "ema" };
        weights.AcceptOnlyFromAmong("ema", "raw");

        var command = new Command("ptq", "Post-training ternarization of a full-precision checkpoint into a new run directory.");
        foreach (var o in new Option[] { checkpoint, output, weights }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            var source = Checkpoint.Resolve(p.GetValue(checkpoint)!);
            var kind = p.GetValue(weights) == "raw" ? WeightsKind.Raw : WeightsKind.Ema;
            var path = Ternarize(source, p.GetValue(output)!, kind);
            stdout.WriteLine($"{path}: {kind.ToString().ToLowerInvariant()} weights of {source} ternarized (alpha = mean |W| per layer)");
            return 0;
        }));
        return command;
    }

    /// <summary>Ternarizes the <paramref name="kind"/> weights of the full-precision checkpoint at <paramref name="source"/>
    /// into <c>runDir/checkpoints/</c>; returns the written path. Refuses a ternary source.</summary>
    public static string Ternarize(string source, string runDir, WeightsKind kind)
    {
        using var ckpt = Checkpoint.Load(source);
        if (ckpt.Config.Ternary)
            throw new ArgumentException($"{source} is already ternary (trained with quantization); ptq needs a full-precision checkpoint (train --full-precision)");
        using var model = new TerDiTModel(ckpt.Config with { Ternary = true });
        model.LoadFullPrecisionWeights(ckpt.Weights(kind));
        using var flat = new FlatParameters(model.named_parameters().Select(p => (p.name, p.parameter)));
        using var optimizer = new AdamW(flat, ckpt.Options.LearningRate,
            weightDecay: ckpt.Options.WeightDecay);
        var weightsByName = model.named_parameters().ToDictionary(p => p.name, p => (TorchSharp.torch.Tensor)p.parameter);
        var result = new Checkpoint
        {
            Config = model.Config, Options = ckpt.Options, Step = ckpt.Step, Data = ckpt.Data, DataPosition = ckpt.DataPosition,
            OptimizerStep = optimizer.StepCount,
            Model = weightsByName, Ema = weightsByName,
            OptimizerState = optimizer.State().ToDictionary(s => s.Name, s => s.Value),
        };
        var path = Checkpoint.PathFor(runDir, ckpt.Step);
        result.Save(path); // the tensors belong to the model and the optimizer: not disposed here
        return path;
    }
}
