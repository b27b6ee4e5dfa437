using TerDiT.Diffusion;
using TerDiT.Model;
using TerDiT.Runtime.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Imaging;

/// <summary>Samples a class-by-row grid of images from a model: the <c>terdit sample</c> entry point.</summary>
public static class ClassGridSampler
{
    /// <summary>
    /// Generates <c>classes.Count · perClass</c> images, row r holding <paramref name="perClass"/> samples of
    /// <c>classes[r]</c>: labels (N) = each class repeated <paramref name="perClass"/> times, x_T and all sampler
    /// noise from one CPU generator seeded with <paramref name="seed"/>, <see cref="GaussianDiffusion.Sample"/>
    /// over <paramref name="steps"/> respaced steps with guidance <paramref name="cfgScale"/>.
    /// Returns (N, C, H, W) in [−1, 1] on the CPU; same inputs on the same machine give the same tensor.
    /// </summary>
    public static Tensor Sample(TerDiTModel model, IReadOnlyList<int> classes, int perClass, SamplerKind sampler, int steps, double cfgScale,
        ulong seed, Device? device = null, Action<int, int>? progress = null)
    {
        var config = model.Config;
        if (classes.Count == 0) throw new ArgumentException("no classes to sample");
        if (perClass <= 0) throw new ArgumentException($"--per-class must be positive, not {perClass}");
        foreach (var c in classes)
            if (c < 0 || c >= config.NumClasses) throw new ArgumentException($"class {c} outside 0..{config.NumClasses - 1}");
        if (cfgScale < 1 || !double.IsFinite(cfgScale)) throw new ArgumentException($"--cfg must be ≥ 1 (1 = no guidance), not {cfgScale}");

        device ??= CPU;
        var dtype = model.parameters().First().dtype;
        long n = (long)classes.Count * perClass;
        using var scope = NewDisposeScope();
        using var generator = new Generator(seed, CPU);
        var y = tensor(classes.SelectMany(c => Enumerable.Repeat((long)c, perClass)).ToArray(), [n]); // (N)
        model.eval();
        var x = GaussianDiffusion.Sample((xt, t, yy) => model.call(xt, t, yy), [n, config.InChannels, config.InputSize, config.InputSize],
            y, sampler, steps, cfgScale, config.NullClass, generator, device, progress, dtype: dtype);  // (N, C, H, W)
        return scope.MoveToOuter(x.to(ScalarType.Float32, CPU));
    }
}
