using System.CommandLine;
using System.Globalization;
using TerDiT.Packing;
using TerDiT.Runtime.Format;
using TerDiT.Training;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit pack --checkpoint PATH --out MODEL.tdit [--weights ema|raw]</c> or
/// <c>terdit pack --preset NAME --random-init --out MODEL.tdit</c>: writes a packed model
/// (<see cref="ModelPacker"/>) with full-precision tensors as F16 (default) or F32 (<c>--fp-dtype f32</c>).
/// </summary>
static class PackCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "a .ckpt file, or a run directory (its latest checkpoint)" };
        var model = new ModelOptions(presetRequired: false);
        var randomInit = new Option<bool>("--random-init") { Description = "pack an untrained model of --preset (the model's own initialisation), for size and speed measurements" };
        var seed = new Option<ulong>("--seed") { Description = "initialisation seed with --random-init", DefaultValueFactory = _ => 0 };
        var weights = new Option<string>("--weights") { Description = "ema or raw weights of the checkpoint", DefaultValueFactory = _ => "ema" };
        var fpDType = new Option<string>("--fp-dtype")
        {
            Description = "storage of the full-precision tensors: f16 (smaller) or f32 (bit-exact to the checkpoint)", DefaultValueFactory = _ => "f16",
        };
        var output = new Option<string>("--out") { Description = "packed model file to write (.tdit)", Required = true };
        weights.AcceptOnlyFromAmong("ema", "raw");
        fpDType.AcceptOnlyFromAmong("f16", "f32");

        var command = new Command("pack", "Pack a checkpoint (or a random-init preset) into a .tdit file for the runtime: 2-bit ternary weights.");
        command.Add(checkpoint);
        model.AddTo(command);
        foreach (var o in new Option[] { randomInit, seed, weights, fpDType, output }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            var path = p.GetValue(output)!;
            var fp = p.GetValue(fpDType) == "f32" ? TditDType.F32 : TditDType.F16;
            var config = model.Resolve(p);
            var ckpt = p.GetValue(checkpoint);
            TditSizes sizes;
            if (ckpt is not null)
            {
                if (config is not null || p.GetValue(randomInit)) throw new ArgumentException("--checkpoint takes the model from the checkpoint: leave out --preset and --random-init");
                var resolved = Checkpoint.Resolve(ckpt);
                sizes = ModelPacker.PackCheckpoint(resolved, path, p.GetValue(weights) == "raw" ? WeightsKind.Raw : WeightsKind.Ema, fp);
                stdout.WriteLine($"packed {resolved} ({p.GetValue(weights)} weights)");
            }
            else
            {
                if (config is null || !p.GetValue(randomInit)) throw new ArgumentException("give --checkpoint PATH, or --preset NAME --random-init");
                sizes = ModelPacker.PackRandomInit(config, path, (long)p.GetValue(seed), fp);
                stdout.WriteLine($"packed a random-init {config.Name} ({(config.Ternary ? "ternary" : "full precision")}, seed {p.GetValue(seed)})");
            }
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{path}: {sizes.FileBytes} bytes (packed ternary {sizes.PackedTernaryBytes}, full precision {sizes.FullPrecisionBytes} as {fp.Name()}, "
                + $"scales {sizes.ScaleBytes}, header {sizes.HeaderBytes}); {sizes.CompressionRatio:F2}× smaller than the fp32 weights ({sizes.Fp32EquivalentBytes} bytes)"));
            return 0;
        }));
        return command;
    }
}
