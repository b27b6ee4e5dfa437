using System.CommandLine;
using System.Globalization;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Import;
using TerDiT.Runtime.Vae;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit import --authors-checkpoint DIR [--ema] --out MODEL.tdit</c>: the TerDiT authors' released
/// checkpoint as a packed model (<see cref="AuthorsCheckpoint"/>). Pure runtime code: no libtorch, and the
/// PyTorch pickles are read without executing anything.
/// </summary>
static class ImportCommand
{
    public static Command Create()
    {
        var dir = new Option<string>("--authors-checkpoint") { Description = "the authors' checkpoint folder (model_args.pth, consolidated[_ema][_ternary].00-of-01.pth)", Required = true };
        var ema = new Option<bool>("--ema") { Description = "import the EMA weights (consolidated_ema*, what the authors sample with) instead of the raw ones" };
        var heads = new Option<int?>("--heads") { Description = "attention heads, only for a model name outside the authors' registry" };
        var fpDType = new Option<string>("--fp-dtype") { Description = "storage of the full-precision tensors: f32 (exact, default) or f16", DefaultValueFactory = _ => "f32" };
        var vae = new Option<string?>("--vae") { Description = "pin the VAE folder the model's latents belong to (its weights' SHA-256 is recorded and checked by sample)" };
        var output = new Option<string>("--out") { Description = "packed model file to write (.tdit)", Required = true };
        fpDType.AcceptOnlyFromAmong("f32", "f16");

        var command = new Command("import", "Import the TerDiT authors' released checkpoint as a packed .tdit model (no code in the checkpoint is run).");
        foreach (var o in new Option[] { dir, ema, heads, fpDType, vae, output }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            string source = p.GetValue(dir)!, path = p.GetValue(output)!;
            TditLatent? latent = null;
            if (p.GetValue(vae) is { } vaeDir)
                using (var w = VaeWeights.Open(vaeDir))
                    latent = new TditLatent { Vae = w.Name, VaeSha256 = w.Sha256, ScalingFactor = w.Config.ScalingFactor };
            var sizes = AuthorsCheckpoint.Import(source, path, new AuthorsImportOptions
            {
                Ema = p.GetValue(ema), Heads = p.GetValue(heads), Latent = latent,
                FullPrecision = p.GetValue(fpDType) == "f16" ? TditDType.F16 : TditDType.F32,
                Progress = new ProgressLines(stdout, "import", "tensors").Report,
            });
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{path}: {sizes.FileBytes} bytes (packed ternary {sizes.PackedTernaryBytes}, full precision {sizes.FullPrecisionBytes}) from {AuthorsCheckpoint.WeightsPath(source, p.GetValue(ema))}"));
            return 0;
        }));
        return command;
    }
}
