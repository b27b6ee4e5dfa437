using TerDiT.Imaging;
using TerDiT.Model;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Diffusion;
using TerDiT.Training;
using static TorchSharp.torch;

namespace TerDiT.Cli.Commands;

/// <summary>A training checkpoint's model on TorchSharp (<see cref="ClassGridSampler"/>), on the CPU or CUDA.</summary>
sealed class CheckpointSampleSource : SampleSource
{
    readonly TerDiTModel model;
    readonly Device device;

    CheckpointSampleSource(string path, long step, TerDiTModel model, Device device) => (Path, Step, this.model, this.device) = (path, step, model, device);

    /// <summary>
    /// Loads <paramref name="checkpoint"/> (a .ckpt file or a run directory: its latest) on the device named
    /// <paramref name="device"/> (<see cref="DeviceOption"/>), with libtorch's CPU threads set to <paramref name="threads"/> when given.
    /// </summary>
    public static CheckpointSampleSource Open(string checkpoint, WeightsKind weights, string device, int? threads)
    {
        ThreadsOption.Apply(threads);
        var dev = DeviceOption.Resolve(device);
        var path = Checkpoint.Resolve(checkpoint);
        using var ckpt = Checkpoint.Load(path);
        if (ckpt.Data.Latent is { } latent)
            throw new ArgumentException($"{path} is a latent model (VAE '{latent.Vae}'): pack it (terdit pack) and sample the .tdit with --model and --vae");
        return new CheckpointSampleSource(path, ckpt.Step, ckpt.CreateModel(weights, dev), dev);
    }

    public override TerDiTConfig Config => model.Config;
    public override string Path { get; }
    public override DiffusionProcess Diffusion => DiffusionProcess.For(Config);
    public override long? Step { get; }
    public override string Description => $"{Path} (step {Step}, {Kind(Config)})";

    public override float[] Sample(int[] labels, SamplerKind sampler, int steps, double cfg, ulong seed)
    {
        using var images = ClassGridSampler.Sample(model, labels, 1, sampler, steps, cfg, seed, device); // (B, C, H, W) CPU float32
        using var dense = images.contiguous();
        return dense.data<float>().ToArray();
    }

    public override void Dispose() => model.Dispose();
}
