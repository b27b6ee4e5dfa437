using System.CommandLine;
using TerDiT.Training;

namespace TerDiT.Cli.Commands;

/// <summary><c>--precision fp32|bf16</c>: matmul arithmetic of training (master weights stay fp32).</summary>
static class PrecisionOption
{
    public static Option<TrainPrecision> Create() => new("--precision")
    {
        Description = "matmul precision: fp32, or bf16 on fp32 master weights",
        DefaultValueFactory = _ => TrainPrecision.Fp32,
        CustomParser = r =>
        {
            switch (r.Tokens.Single().Value.ToLowerInvariant())
            {
                case "fp32": return TrainPrecision.Fp32;
                case "bf16": return TrainPrecision.Bf16;
                case var v: r.AddError($"--precision must be fp32 or bf16, not '{v}'"); return default;
            }
        },
    };
}
