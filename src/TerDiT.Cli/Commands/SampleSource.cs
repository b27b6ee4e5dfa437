using TerDiT.Imaging;
using TerDiT.Model;
using TerDiT.Runtime;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Sampling;
using TerDiT.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Cli.Commands;

/// <summary>
/// Where <c>eval</c> draws its images from: a checkpoint's TorchSharp model (CPU or CUDA) or a packed model on
/// the pure-C# runtime. Either way a batch of requested classes and a seed give (B, C, H, W) images in [−1, 1] on the CPU.
/// </summary>
abstract class SampleSource : IDisposable
{
    public abstract TerDiTConfig Config { get; }
    /// <summary>The checkpoint or packed file.</summary>
    public abstract string Path { get; }
    /// <summary>Training step of the weights, when known (packed models do not record it as a number).</summary>
    public abstract long? Step { get; }
    /// <summary>One line for the console.</summary>
    public abstract string Description { get; }
    /// <summary>One image per entry of <paramref name="classes"/>: (B, C, H, W) on the CPU.</summary>
    public abstract Tensor Sample(int[] classes, SamplerKind sampler, int steps, double cfg, ulong seed);
    public abstract void Dispose();

    static string Kind(TerDiTConfig c) => $"{c.Name}, {(c.Ternary ? "ternary" : "full precision")}";

    public static SampleSource FromCheckpoint(string checkpoint, WeightsKind weights, Device device)
    {
        var path = Checkpoint.Resolve(checkpoint);
        using var ckpt = Checkpoint.Load(path);
        return new CheckpointSource(path, ckpt.Step, ckpt.CreateModel(weights, device), device);
    }

    public static SampleSource Packed(string modelPath, GemmMode mode, int? threads) =>
        new PackedSource(modelPath, mode, TerDiTPipeline.Load(modelPath, RuntimeModeOption.Options(mode, threads)));

    sealed class CheckpointSource(string path, long step, TerDiTModel model, Device device) : SampleSource
    {
        public override TerDiTConfig Config => model.Config;
        public override string Path => path;
        public override long? Step => step;
        public override string Description => $"{path} (step {step}, {Kind(Config)})";
        public override Tensor Sample(int[] classes, SamplerKind sampler, int steps, double cfg, ulong seed) =>
            ClassGridSampler.Sample(model, classes, 1, sampler, steps, cfg, seed, device);
        public override void Dispose() => model.Dispose();
    }

    sealed class PackedSource(string path, GemmMode mode, TerDiTPipeline pipe) : SampleSource
    {
        public override TerDiTConfig Config => pipe.Config;
        public override string Path => path;
        public override long? Step => null;
        public override string Description => $"{path} (packed, {Kind(Config)}, runtime {mode})";
        public override Tensor Sample(int[] classes, SamplerKind sampler, int steps, double cfg, ulong seed)
        {
            var c = pipe.Config;
            var images = pipe.Sample(classes, 1, steps, sampler, cfg, seed);                         // (B·C·H·W)
            return torch.tensor(images, [classes.Length, c.InChannels, c.InputSize, c.InputSize]);  // (B, C, H, W)
        }
        public override void Dispose() => pipe.Dispose();
    }
}
