using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Sampling;

namespace TerDiT.Runtime;

/// <summary>
/// Class-conditional image generation with a TerDiT model in pure C#: the runtime forward
/// (<see cref="RuntimeModel"/>) under a DDPM or DDIM sampler with classifier-free guidance.
/// One call at a time: the activation buffers are reused across calls (each call is itself multi-threaded).
/// </summary>
/// <example>
/// <code>
/// using var pipe = TerDiTPipeline.Load("model.tdit", new RuntimeOptions { Mode = GemmMode.Exact, Threads = 2 });
/// float[] images = pipe.Sample([0, 7], perClass: 4, steps: 50, SamplerKind.Ddim, guidance: 1.5, seed: 1); // (8, C, H, W)
/// var c = pipe.Config;
/// PngGrid.Save("grid.png", images, 8, c.InChannels, c.InputSize, c.InputSize, rows: 2, cols: 4);
/// </code>
/// </example>
public sealed class TerDiTPipeline : IDisposable
{
    readonly IDisposable? _owned;
    readonly DiffusionSampler _sampler;
    readonly int _maxBatch;

    /// <summary>The model's configuration.</summary>
    public TerDiTConfig Config => Model.Config;

    /// <summary>Class names by label (from the packed file's metadata); null when built from other weights.</summary>
    public IReadOnlyList<string>? ClassNames { get; private init; }

    /// <summary>The forward pass, for direct model calls.</summary>
    public IDenoiserModel Model { get; }

    /// <summary>
    /// Opens and validates a packed model (<see cref="TditFile.Open"/>, checksum included) and builds
    /// the pipeline over it; the ternary weights are used in place from the mapped file, which stays
    /// open until <see cref="Dispose"/>.
    /// </summary>
    /// <exception cref="TditFormatException">The file is not a valid packed model.</exception>
    /// <exception cref="InsufficientMemoryException">The model's fixed buffers (attention, RoPE) need more memory than the machine has.</exception>
    public static TerDiTPipeline Load(string path, RuntimeOptions? options = null)
    {
        var file = TditFile.Open(path);
        try
        {
            return new TerDiTPipeline(new TditWeightSource(file), options, file) { ClassNames = file.Info.Classes };
        }
        catch (InsufficientMemoryException e)
        {
            file.Dispose();
            throw new InsufficientMemoryException($"{Path.GetFileName(path)}: {e.Message}", e);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Builds the pipeline over weights on the CPU runtime; <paramref name="owned"/> (e.g. a mapped file) is disposed with it.</summary>
    public TerDiTPipeline(IWeightSource weights, RuntimeOptions? options = null, IDisposable? owned = null)
        : this(new RuntimeModel(weights, options ??= new RuntimeOptions()), options.MaxBatch, owned)
    {
    }

    /// <summary>
    /// Builds the pipeline over a model of any backend (e.g. the CUDA one); at most <paramref name="maxBatch"/> images
    /// go through one forward before guidance doubles them; <paramref name="owned"/> (the model, its file) is disposed
    /// with the pipeline.
    /// </summary>
    public TerDiTPipeline(IDenoiserModel model, int maxBatch, IDisposable? owned = null, IReadOnlyList<string>? classNames = null)
    {
        if (maxBatch <= 0) throw new ArgumentException($"maximum batch must be positive, got {maxBatch}");
        Model = model;
        _maxBatch = maxBatch;
        _owned = owned;
        ClassNames = classNames;
        var c = Model.Config;
        _sampler = new DiffusionSampler(Model.Forward, c.InChannels, c.InputSize, c.LearnSigma, c.NullClass);
    }

    /// <summary>
    /// Generates <paramref name="perClass"/> images for each class of <paramref name="classes"/>, class by
    /// class: returns (N, C, H, W) with N = classes·perClass, every value in [−1, 1]. Images run in batches
    /// of at most <see cref="RuntimeOptions.MaxBatch"/> (doubled for guidance); image i always gets the
    /// same noise (streams of <paramref name="seed"/> by image index), so the result depends only on the
    /// arguments, not on threads or batching.
    /// </summary>
    /// <param name="classes">Class labels in [0, NumClasses).</param>
    /// <param name="perClass">Images per class (≥ 1).</param>
    /// <param name="steps">Sampling steps 1..1000 (the 1000-step schedule respaced).</param>
    /// <param name="sampler">DDPM (ancestral) or DDIM (eta 0).</param>
    /// <param name="guidance">Classifier-free guidance scale ≥ 0; 1 disables guidance.</param>
    /// <param name="seed">Seed of all noise.</param>
    /// <param name="progress">Told (steps done, total steps) over all batches after each step.</param>
    /// <param name="cancellationToken">Checked before each model call.</param>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public float[] Sample(IReadOnlyList<int> classes, int perClass, int steps, SamplerKind sampler, double guidance, ulong seed,
        IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (classes.Count == 0) throw new ArgumentException("no classes to sample");
        if (perClass <= 0) throw new ArgumentOutOfRangeException(nameof(perClass), perClass, "images per class must be ≥ 1");
        foreach (int k in classes)
            if (k < 0 || k >= Config.NumClasses) throw new ArgumentOutOfRangeException(nameof(classes), k, $"class must be in [0, {Config.NumClasses})");
        int[] labels = classes.SelectMany(k => Enumerable.Repeat(k, perClass)).ToArray();
        int n = labels.Length, per = Model.InputLength, batches = (n + _maxBatch - 1) / _maxBatch;
        var images = new float[(long)n * per];
        for (int b = 0; b < batches; b++)
        {
            int first = b * _maxBatch, count = Math.Min(_maxBatch, n - first);
            var x0 = _sampler.Sample(labels.AsSpan(first, count), sampler, steps, guidance, seed, first,
                progress == null ? null : new BatchProgress(progress, b, batches), cancellationToken);
            x0.CopyTo(images, (long)first * per);
        }
        return images;
    }

    public void Dispose() => _owned?.Dispose();

    /// <summary>Batch b of <paramref name="batches"/>: its steps as steps of the whole call.</summary>
    sealed class BatchProgress(IProgress<SamplingProgress> whole, int b, int batches) : IProgress<SamplingProgress>
    {
        public void Report(SamplingProgress p) => whole.Report(new SamplingProgress(b * p.Total + p.Done, batches * p.Total));
    }
}
