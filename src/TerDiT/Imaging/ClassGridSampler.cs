using TerDiT.Diffusion;
using TerDiT.Model;
using TerDiT.Runtime;
using TerDiT.Runtime.Diffusion;
using TerDiT.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Imaging;

/// <summary>Samples a class-by-row grid of images from a model: the <c>terdit sample</c> entry point.</summary>
public static class ClassGridSampler
{
    /// <summary>Most images sampled at once (guidance doubles the model's batch): bounds the memory whatever N is.</summary>
    public const int MaxChunk = 32;

    /// <summary>Seed stream of the generators of chunks after the first.</summary>
    const ulong ChunkStream = 5;

    /// <summary>
    /// Generates <c>classes.Count · perClass</c> images, row r holding <paramref name="perClass"/> samples of
    /// <c>classes[r]</c>: labels (N) = each class repeated <paramref name="perClass"/> times, sampled without
    /// gradients in chunks of <see cref="MaxChunk"/> images by <see cref="GaussianDiffusion.Sample"/> over the model's
    /// <see cref="DiffusionProcess"/> respaced to <paramref name="steps"/> steps with guidance <paramref name="cfgScale"/>. Chunk 0 draws x_T and
    /// all sampler noise from one CPU generator seeded with <paramref name="seed"/>, chunk k ≥ 1 from one seeded
    /// <c>Seeds.Derive(seed, 5, k)</c>. Returns (N, C, H, W) in [−1, 1] on the CPU; same inputs on the same
    /// machine give the same tensor.
    /// </summary>
    /// <exception cref="InsufficientMemoryException">The N images, or one chunk's forward, need more memory than the machine has.</exception>
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
        long n = (long)classes.Count * perClass, imageFloats = (long)config.InChannels * config.InputSize * config.InputSize;
        int chunk = (int)Math.Min(n, MaxChunk), chunks = (int)((n + chunk - 1) / chunk);
        string shape = $"{config.InChannels}×{config.InputSize}×{config.InputSize}";
        MemoryBudget.RequireArray(MemoryBudget.Multiply(n, imageFloats), $"{n} images of {shape}");
        MemoryBudget.Require(MemoryBudget.Multiply(n, 4 * imageFloats), $"{n} images of {shape}");
        if (device.type == DeviceType.CPU)
            MemoryBudget.Require(MemoryBudget.Multiply(2 * chunk, ActivationMemory.InferenceBytesPerImage(config)), $"sampling {chunk} images of {shape} ({config.Tokens} tokens) at once");

        model.eval();
        var process = DiffusionProcess.For(config);
        using var _ = no_grad();
        var result = empty([n, config.InChannels, config.InputSize, config.InputSize]); // (N, C, H, W) CPU
        for (int k = 0; k < chunks; k++)
        {
            using var scope = NewDisposeScope();
            long first = (long)k * chunk, count = Math.Min(chunk, n - first);
            using var generator = new Generator(k == 0 ? seed : Seeds.Derive(seed, ChunkStream, (ulong)k), CPU);
            var y = tensor(Enumerable.Range((int)first, (int)count).Select(i => (long)classes[i / perClass]).ToArray(), [count]); // (B)
            var x = GaussianDiffusion.Sample((xt, t, yy) => model.call(xt, t, yy), process, [count, config.InChannels, config.InputSize, config.InputSize],
                y, sampler, steps, cfgScale, config.NullClass, generator, device,
                progress is null ? null : (done, total) => progress(k * total + done, chunks * total), dtype: dtype); // (B, C, H, W)
            result.narrow(0, first, count).copy_(x.to(ScalarType.Float32, CPU));
        }
        return result;
    }
}
