using TerDiT.Runtime.Config;
using TerDiT.Runtime.Diffusion;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Vae;

namespace TerDiT.Runtime;

/// <summary>
/// Class-conditional image generation with a TerDiT model in pure C#: the runtime forward
/// (<see cref="RuntimeModel"/>) under a DDPM, DDIM or DPM-Solver++ sampler with classifier-free guidance, over the
/// diffusion process of the packed file's <c>diffusion</c> record; a latent model's samples (not clipped:
/// <see cref="DiffusionProcess.ClipSample"/>) are decoded by its VAE (<see cref="VaeDecoder"/>, on the CPU).
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
    readonly VaeDecoder? _decoder;

    /// <summary>The model's configuration.</summary>
    public TerDiTConfig Config => Model.Config;

    /// <summary>Class names by label (from the packed file's metadata); null when built from other weights.</summary>
    public IReadOnlyList<string>? ClassNames { get; private init; }

    /// <summary>The diffusion process sampled: schedule, variance, clipping.</summary>
    public DiffusionProcess Diffusion { get; }

    /// <summary>The forward pass, for direct model calls.</summary>
    public IDenoiserModel Model { get; }

    /// <summary>Channels of the images <see cref="Sample"/> returns: the VAE's output channels for a latent model.</summary>
    public int ImageChannels => _decoder?.Config.OutChannels ?? Config.InChannels;

    /// <summary>Side of the images <see cref="Sample"/> returns: the latent side times the VAE's factor for a latent model.</summary>
    public int ImageSize => Config.InputSize * (_decoder?.Config.DownsampleFactor ?? 1);

    /// <summary>
    /// Opens and validates a packed model (<see cref="TditFile.Open"/>, checksum included) and builds
    /// the pipeline over it; the ternary weights are used in place from the mapped file, which stays
    /// open until <see cref="Dispose"/>. A latent model (metadata <c>latent</c>) needs its VAE,
    /// <paramref name="vaeDirectory"/> (<see cref="LatentDecoder"/>).
    /// </summary>
    /// <exception cref="TditFormatException">The file is not a valid packed model.</exception>
    /// <exception cref="InsufficientMemoryException">The model's fixed buffers (attention, RoPE) need more memory than the machine has.</exception>
    /// <exception cref="ArgumentException">A VAE missing, not needed, or not the model's.</exception>
    public static TerDiTPipeline Load(string path, RuntimeOptions? options = null, string? vaeDirectory = null)
    {
        var file = TditFile.Open(path);
        try
        {
            options ??= new RuntimeOptions();
            var diffusion = DiffusionProcess.For(file);
            var decoder = LatentDecoder(file, vaeDirectory, options);
            return new TerDiTPipeline(new RuntimeModel(new TditWeightSource(file), options), options.MaxBatch, file, file.Info.Classes, decoder, diffusion);
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

    /// <summary>
    /// Builds the pipeline over weights on the CPU runtime; <paramref name="owned"/> (e.g. a mapped file) is disposed with it.
    /// <paramref name="diffusion"/> defaults to <see cref="DiffusionProcess.For(TerDiTConfig, TditDiffusion?, bool)"/>(config) (DiT's schedule).
    /// </summary>
    public TerDiTPipeline(IWeightSource weights, RuntimeOptions? options = null, IDisposable? owned = null, DiffusionProcess? diffusion = null)
        : this(new RuntimeModel(weights, options ??= new RuntimeOptions()), options.MaxBatch, owned, diffusion: diffusion)
    {
    }

    /// <summary>
    /// The decoder of a packed model's samples: null for a pixel model (which refuses a VAE); for a latent model
    /// (metadata <c>latent</c>) the VAE in <paramref name="vaeDirectory"/>, a diffusers AutoencoderKL folder, after
    /// <see cref="CheckVae"/>, running on the CPU with <paramref name="options"/>' threads.
    /// </summary>
    /// <exception cref="ArgumentException">A VAE missing, not needed, or not the model's.</exception>
    public static VaeDecoder? LatentDecoder(TditFile file, string? vaeDirectory, RuntimeOptions? options = null)
    {
        var latent = file.Info.Latent;
        string name = Path.GetFileName(file.Path);
        if (latent is null)
            return vaeDirectory is null ? null : throw new ArgumentException($"{name} is a pixel-space model: it needs no VAE");
        if (vaeDirectory is null)
            throw new ArgumentException($"{name} generates latents of the VAE '{latent.Vae}': give its folder (diffusers AutoencoderKL: config.json + {VaeWeights.WeightsFileName}) to decode them");
        using var vae = VaeWeights.Open(vaeDirectory);
        CheckVae(file.Config, latent, vae);
        return new VaeDecoder(vae, options);
    }

    /// <summary>
    /// Refuses a VAE that is not the model's: another weights file than the one the model pins
    /// (<see cref="TditLatent.VaeSha256"/>), another latent channel count or scaling factor.
    /// </summary>
    /// <exception cref="ArgumentException">The VAE does not fit; the message says how.</exception>
    public static void CheckVae(TerDiTConfig config, TditLatent latent, VaeWeights vae)
    {
        if (latent.VaeSha256 is { } pinned && pinned != vae.Sha256)
            throw new ArgumentException($"VAE '{vae.Name}' is not the model's: its weights hash to {vae.Sha256}, the model was made with '{latent.Vae}' ({pinned})");
        if (vae.Config.LatentChannels != config.InChannels)
            throw new ArgumentException($"VAE '{vae.Name}' has {vae.Config.LatentChannels} latent channels, the model generates {config.InChannels}");
        if (Math.Abs(vae.Config.ScalingFactor - latent.ScalingFactor) > 1e-9 * latent.ScalingFactor)
            throw new ArgumentException($"VAE '{vae.Name}' scales latents by {vae.Config.ScalingFactor}, the model by {latent.ScalingFactor}");
    }

    /// <summary>
    /// Builds the pipeline over a model of any backend (e.g. the CUDA one); at most <paramref name="maxBatch"/> images
    /// go through one forward before guidance doubles them; <paramref name="owned"/> (the model, its file) is disposed
    /// with the pipeline. With a <paramref name="decoder"/> the model is a latent model: its samples are decoded
    /// (<see cref="LatentDecoder"/>). <paramref name="diffusion"/> defaults to
    /// <see cref="DiffusionProcess.For(TerDiTConfig, TditDiffusion?, bool)"/>(config, latent: decoder given); a latent model's
    /// diffusion does not clip, a pixel model's does.
    /// </summary>
    public TerDiTPipeline(IDenoiserModel model, int maxBatch, IDisposable? owned = null, IReadOnlyList<string>? classNames = null,
        VaeDecoder? decoder = null, DiffusionProcess? diffusion = null)
    {
        if (maxBatch <= 0) throw new ArgumentException($"maximum batch must be positive, got {maxBatch}");
        Model = model;
        _maxBatch = maxBatch;
        _owned = owned;
        ClassNames = classNames;
        _decoder = decoder;
        var c = Model.Config;
        if (decoder is not null && decoder.Config.LatentChannels != c.InChannels)
            throw new ArgumentException($"the VAE decodes {decoder.Config.LatentChannels} latent channels, the model generates {c.InChannels}");
        Diffusion = diffusion ?? DiffusionProcess.For(c, latent: decoder is not null);
        if (Diffusion.LearnSigma != c.LearnSigma) throw new ArgumentException($"the diffusion's variance ({Diffusion.Variance}) does not fit a model with LearnSigma = {c.LearnSigma}");
        if (Diffusion.ClipSample != (decoder is null))
            throw new ArgumentException(decoder is null ? "a pixel model's diffusion clips its samples" : "a latent model's diffusion does not clip its samples");
        _sampler = new DiffusionSampler(Model.Forward, c.InChannels, c.InputSize, Diffusion, c.NullClass);
    }

    /// <summary>
    /// Generates <paramref name="perClass"/> images for each class of <paramref name="classes"/>, class by
    /// class: returns (N, <see cref="ImageChannels"/>, <see cref="ImageSize"/>, <see cref="ImageSize"/>) with
    /// N = classes·perClass; a pixel model's values lie in [−1, 1], a latent model's decoded images about
    /// there (clamp when converting to pixels). Images run in batches
    /// of at most <see cref="RuntimeOptions.MaxBatch"/> (doubled for guidance); image i always gets the
    /// same noise (streams of <paramref name="seed"/> by image index), so the result depends only on the
    /// arguments, not on threads or batching.
    /// </summary>
    /// <param name="classes">Class labels in [0, NumClasses).</param>
    /// <param name="perClass">Images per class (≥ 1).</param>
    /// <param name="steps">Sampling steps (model calls): 1..1000 for DDPM and DDIM, 1..999 for DPM-Solver++ (DiT's 1000-step schedule).</param>
    /// <param name="sampler">DDPM (ancestral), DDIM (eta 0) or DPM-Solver++(2M).</param>
    /// <param name="guidance">Classifier-free guidance scale ≥ 0; 1 disables guidance.</param>
    /// <param name="seed">Seed of all noise.</param>
    /// <param name="progress">Told (steps done, total steps) over all batches after each step.</param>
    /// <param name="cancellationToken">Checked before each model call.</param>
    /// <param name="guidedChannels">Epsilon channels guidance applies to (default all; 3 reproduces DiT's and the TerDiT authors' rule).</param>
    /// <param name="decodeProgress">Told (images decoded, total) while a latent model's samples are decoded.</param>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public float[] Sample(IReadOnlyList<int> classes, int perClass, int steps, SamplerKind sampler, double guidance, ulong seed,
        IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default, int? guidedChannels = null,
        IProgress<SamplingProgress>? decodeProgress = null)
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
                progress == null ? null : new BatchProgress(progress, b, batches), cancellationToken, guidedChannels);
            x0.CopyTo(images, (long)first * per);
        }
        return _decoder is null ? images
            : _decoder.Decode(images, n, Config.InputSize, Config.InputSize, decodeProgress == null ? null : (done, total) => decodeProgress.Report(new SamplingProgress(done, total)));
    }

    public void Dispose() => _owned?.Dispose();

    /// <summary>Batch b of <paramref name="batches"/>: its steps as steps of the whole call.</summary>
    sealed class BatchProgress(IProgress<SamplingProgress> whole, int b, int batches) : IProgress<SamplingProgress>
    {
        public void Report(SamplingProgress p) => whole.Report(new SamplingProgress(b * p.Total + p.Done, batches * p.Total));
    }
}
