using System.CommandLine;
using TerDiT.Runtime;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Cuda;
using TerDiT.Runtime.Model;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>--mode exact|a8</c>: the activation precision of the packed runtime (with <c>--model</c> only), the pipeline
/// of a packed model on the CPU runtime or the CUDA backend, and the option checks. No TorchSharp type here:
/// <c>sample --model</c> uses it.
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

    /// <summary>
    /// The pipeline of a packed model: the CPU runtime, or with <paramref name="device"/> "cuda" the CUDA backend
    /// (<paramref name="gpuBatch"/> images a forward before guidance there; <paramref name="threads"/> is the CPU's);
    /// a latent model's samples are decoded on the CPU by the VAE in <paramref name="vae"/>.
    /// </summary>
    public static TerDiTPipeline Pipeline(string modelPath, GemmMode mode, string device, int? threads, int? gpuBatch = null, string? vae = null) =>
        device == "cuda"
            ? CudaPipeline.Load(modelPath, gpuBatch is int b ? new CudaOptions { Mode = mode, MaxBatch = b } : new CudaOptions { Mode = mode }, vae,
                Options(mode, threads))
            : TerDiTPipeline.Load(modelPath, Options(mode, threads), vae);

    /// <summary>Refuses <c>--mode a8</c> for a checkpoint.</summary>
    public static void Check(bool packedModel, string mode)
    {
        if (!packedModel && mode != "exact") throw new ArgumentException("--mode a8 runs on the packed runtime: use --model MODEL.tdit");
    }
}
