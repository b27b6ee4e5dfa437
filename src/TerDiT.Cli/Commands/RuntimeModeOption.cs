using System.CommandLine;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Model;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>--mode exact|a8</c>: the activation precision of the packed runtime (with <c>--model</c> only), and the
/// checks that keep a packed model on the CPU runtime. No TorchSharp type here: <c>sample --model</c> uses it.
/// </summary>
static class RuntimeModeOption
{
    public static Option<string> Create()
    {
        var option = new Option<string>("--mode") { Description = "exact (fp32 activations) or a8 (int8 activations), --model only", DefaultValueFactory = _ => "exact" };
        option.AcceptOnlyFromAmong("exact", "a8");
        return option;
    }

    public static GemmMode Resolve(string mode) => mode == "a8" ? GemmMode.A8 : GemmMode.Exact;

    /// <summary>The runtime's options for <paramref name="mode"/>; <c>--threads</c> when given, else the runtime's default.</summary>
    public static RuntimeOptions Options(GemmMode mode, int? threads) =>
        threads is int t ? new RuntimeOptions { Mode = mode, Threads = t } : new RuntimeOptions { Mode = mode };

    /// <summary>Refuses <c>--device cuda</c> for a packed model and <c>--mode a8</c> for a checkpoint.</summary>
    public static void Check(bool packedModel, string device, string mode)
    {
        if (packedModel && device != "cpu") throw new ArgumentException("--model runs on the CPU runtime; --device cuda needs --checkpoint");
        if (!packedModel && mode != "exact") throw new ArgumentException("--mode a8 runs on the packed runtime: use --model MODEL.tdit");
    }
}
