namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// Sampling over a <see cref="Denoiser"/> with any <see cref="Scheduler"/> of a <see cref="DiffusionProcess"/> (DDPM,
/// DDIM with eta 0, DPM-Solver++(2M)): the model receives original timestep indices; classifier-free guidance doubles
/// the batch with null labels (<see cref="Guidance"/>: <c>ε = ε_u + s·(ε_c − ε_u)</c> on all epsilon channels unless told
/// otherwise), the variance channels from the conditional half (<c>s = 1</c>: no doubling), before the scheduler's step
/// (<see cref="SamplingRun"/>). Whether x̂0 is clipped is the process's (<see cref="DiffusionProcess.ClipSample"/>: pixel
/// models are, latent models are not).
/// </summary>
/// <remarks>
/// Noise: each image draws from its own <see cref="ImageNoise"/> streams, (seed, firstImage + j) for image j
/// of a call, so a sample depends only on (seed, image index, label, settings), never on thread count or on
/// how images are split into batches. <see cref="Start"/> gives the steps one at a time, for hosts that batch
/// several runs into one model call.
/// </remarks>
public sealed class DiffusionSampler
{
    readonly Denoiser _model;
    readonly DiffusionProcess _process;
    readonly int _per, _outPer, _plane, _channels, _nullClass;
    float[] _input = [], _output = [];
    int[] _timesteps = [], _labels = [];

    /// <param name="model">The denoiser.</param>
    /// <param name="channels">C, image channels (the model outputs C, or 2C when <see cref="DiffusionProcess.LearnSigma"/>).</param>
    /// <param name="size">H = W.</param>
    /// <param name="process">The diffusion the model was trained for: schedule, variance, clipping.</param>
    /// <param name="nullClass">Label of the unconditional class.</param>
    public DiffusionSampler(Denoiser model, int channels, int size, DiffusionProcess process, int nullClass)
    {
        if (channels <= 0 || size <= 0) throw new ArgumentException($"image shape must be positive, got C={channels}, size={size}");
        (_model, _process, _per, _plane, _channels, _nullClass) =
            (model, process ?? throw new ArgumentNullException(nameof(process)), channels * size * size, size * size, channels, nullClass);
        _outPer = (process.LearnSigma ? 2 : 1) * _per;
    }

    /// <summary>
    /// Generates one image per label: returns x_0 (N, C, H, W), every value in [−1, 1] when the process clips samples.
    /// Image j draws the noise <c>(seed, firstImage + j)</c>.
    /// </summary>
    /// <param name="labels">(N) class labels.</param>
    /// <param name="kind">The sampler.</param>
    /// <param name="steps">Sampling steps (model calls): 1..T for DDPM and DDIM, 1..T−1 for DPM-Solver++ (T = 1000 for DiT).</param>
    /// <param name="guidance">Classifier-free guidance scale s ≥ 0; 1 = none.</param>
    /// <param name="seed">Seed of all noise.</param>
    /// <param name="firstImage">Global index of the first image, for the noise streams (see remarks).</param>
    /// <param name="progress">Told after each step.</param>
    /// <param name="cancellationToken">Checked before each model call.</param>
    /// <param name="guidedChannels">Epsilon channels guidance applies to (default: all; see <see cref="Guidance"/>).</param>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public float[] Sample(ReadOnlySpan<int> labels, SamplerKind kind, int steps, double guidance, ulong seed,
        long firstImage = 0, IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default, int? guidedChannels = null)
    {
        if (firstImage < 0 || firstImage > ImageNoise.IndexLimit - labels.Length) throw new ArgumentOutOfRangeException(nameof(firstImage));
        var noise = new ImageNoise[labels.Length];
        for (int j = 0; j < noise.Length; j++) noise[j] = new ImageNoise(seed, firstImage + j);
        return Sample(labels, noise, kind, steps, guidance, progress, cancellationToken, guidedChannels);
    }

    /// <summary>
    /// Generates one image per label, image j with the noise <paramref name="noise"/>[j]: returns x_0 (N, C, H, W),
    /// every value in [−1, 1] when the process clips samples. The other arguments as in the overload with a seed.
    /// </summary>
    public float[] Sample(ReadOnlySpan<int> labels, ReadOnlySpan<ImageNoise> noise, SamplerKind kind, int steps, double guidance,
        IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default, int? guidedChannels = null)
    {
        var run = Start(labels, noise, kind, steps, guidance, guidedChannels);
        int rows = run.ModelRows;
        if (_labels.Length != rows) (_input, _output, _timesteps, _labels) = (new float[rows * _per], new float[rows * _outPer], new int[rows], new int[rows]);
        while (!run.IsComplete)
        {
            cancellationToken.ThrowIfCancellationRequested();
            run.WriteModelInput(_input, _timesteps, _labels);
            _model(_input, _timesteps, _labels, _output);
            run.Advance(_output);
            progress?.Report(new SamplingProgress(run.StepsDone, run.Steps));
        }
        return run.Result.ToArray();
    }

    /// <summary>
    /// A run of the same sampling (image j with <paramref name="noise"/>[j]) that the caller advances one model
    /// call at a time with its own model calls; it gives the same images as <see cref="Sample(ReadOnlySpan{int}, ReadOnlySpan{ImageNoise}, SamplerKind, int, double, IProgress{SamplingProgress}?, CancellationToken, int?)"/>
    /// when the model computes each row on its own. The run owns a new scheduler of <paramref name="kind"/>
    /// (<see cref="DiffusionProcess.CreateScheduler"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Steps outside what the scheduler takes, an unknown sampler, or guided channels
    /// outside 1..C.</exception>
    public SamplingRun Start(ReadOnlySpan<int> labels, ReadOnlySpan<ImageNoise> noise, SamplerKind kind, int steps, double guidance,
        int? guidedChannels = null)
    {
        int guided = guidedChannels ?? _channels;
        if (guided < 1 || guided > _channels) throw new ArgumentOutOfRangeException(nameof(guidedChannels), guided, $"guided channels must be in 1..{_channels}");
        return new(labels, noise, _process.CreateScheduler(kind), steps, guidance, _per, _process.LearnSigma, _nullClass, _plane, guided);
    }
}
