using TerDiT.Runtime.Config;
using TerDiT.Runtime.Diffusion;

namespace TerDiT.Cli.Commands;

/// <summary>
/// Where <c>sample</c> and <c>eval</c> draw their images from: a packed model on the pure-C# runtime
/// (<see cref="PackedSampleSource"/>, which touches only the runtime assembly) or a checkpoint's TorchSharp
/// model (<see cref="CheckpointSampleSource"/>, CPU or CUDA). Nothing in this contract names a TorchSharp
/// type, so a command holding a packed source never loads libtorch. The two draw their noise from
/// different generators: the same seed gives different images.
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
    /// <summary>Channels of the images <see cref="Sample"/> returns (a latent model's are its VAE's, RGB).</summary>
    public virtual int ImageChannels => Config.InChannels;
    /// <summary>Side of the images <see cref="Sample"/> returns.</summary>
    public virtual int ImageSize => Config.InputSize;
    /// <summary>The diffusion process <see cref="Sample"/> runs: schedule, variance, clipping.</summary>
    public abstract DiffusionProcess Diffusion { get; }

    /// <summary>Refuses a step count <paramref name="sampler"/> cannot take on <see cref="Diffusion"/>'s schedule, naming <c>--steps</c>.</summary>
    public void CheckSteps(SamplerKind sampler, int steps)
    {
        int max = Diffusion.MaxSteps(sampler);
        if (steps < 1 || steps > max)
            throw new ArgumentException($"--steps must lie in 1..{max} for this sampler (the {Diffusion.Schedule.NumTimesteps}-step schedule respaced), not {steps}");
    }

    /// <summary>
    /// One image per entry of <paramref name="labels"/>: (B, <see cref="ImageChannels"/>, <see cref="ImageSize"/>,
    /// <see cref="ImageSize"/>) floats in [−1, 1] (a latent model's decoded images about there), B = labels.Length.
    /// Same arguments, same images.
    /// </summary>
    public abstract float[] Sample(int[] labels, SamplerKind sampler, int steps, double cfg, ulong seed);

    public abstract void Dispose();

    protected static string Kind(TerDiTConfig c) => $"{c.Name}, {(c.Ternary ? "ternary" : "full precision")}";
}
