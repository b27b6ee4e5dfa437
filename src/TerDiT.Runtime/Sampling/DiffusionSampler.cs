namespace TerDiT.Runtime.Sampling;

/// <summary>
/// DDPM and DDIM (eta 0) sampling over a <see cref="Denoiser"/> as in DiT/IDDPM: DiT's 1000-step
/// linear schedule respaced to the requested steps (the model receives original timestep indices),
/// x̂0 = √(1/ᾱ)·x − √(1/ᾱ − 1)·ε clipped to [−1, 1], classifier-free guidance by doubling the
/// batch with null labels, <c>ε = ε_u + s·(ε_c − ε_u)</c> on all epsilon channels, the variance
/// channels from the conditional half (<c>s = 1</c>: no doubling). Schedule coefficients are float64,
/// the per-element update is computed in double and stored as float.
/// </summary>
/// <remarks>
/// Noise: image j of a call (global index <c>firstImage + j</c>) draws x_T from stream
/// <c>(firstImage + j)·2²⁰</c> and the DDPM noise of step i from stream <c>(firstImage + j)·2²⁰ + 1 + i</c>
/// of <see cref="GaussianNoise"/>, so a sample depends only on (seed, image index, label, settings),
/// never on thread count or on how images are split into batches.
/// </remarks>
public sealed class DiffusionSampler
{
    const int StreamsPerImage = 1 << 20;
    readonly Denoiser _model;
    readonly int _channels, _size, _nullClass;
    readonly bool _learnSigma;
    float[] _input = [], _output = [];
    int[] _timesteps = [], _labels = [];

    /// <param name="model">The denoiser.</param>
    /// <param name="channels">C, image channels (the model outputs C, or 2C with <paramref name="learnSigma"/>).</param>
    /// <param name="size">H = W.</param>
    /// <param name="learnSigma">Whether the model outputs the learned-range variance channels; otherwise DDPM uses
    /// DiT's "fixed large" variance (β_t, β̃_1 at step 0).</param>
    /// <param name="nullClass">Label of the unconditional class.</param>
    public DiffusionSampler(Denoiser model, int channels, int size, bool learnSigma, int nullClass)
    {
        if (channels <= 0 || size <= 0) throw new ArgumentException($"image shape must be positive, got C={channels}, size={size}");
        (_model, _channels, _size, _learnSigma, _nullClass) = (model, channels, size, learnSigma, nullClass);
    }

    /// <summary>
    /// Generates one image per label: returns x_0 (N, C, H, W) with every value in [−1, 1].
    /// <paramref name="progress"/>(done, total) is called after each step.
    /// </summary>
    /// <param name="labels">(N) class labels.</param>
    /// <param name="kind">DDPM or DDIM.</param>
    /// <param name="steps">Sampling steps, 1..1000 (DiT's schedule respaced).</param>
    /// <param name="guidance">Classifier-free guidance scale s ≥ 0; 1 = none.</param>
    /// <param name="seed">Seed of all noise.</param>
    /// <param name="firstImage">Global index of the first image, for the noise streams (see remarks).</param>
    public float[] Sample(ReadOnlySpan<int> labels, SamplerKind kind, int steps, double guidance, ulong seed,
        long firstImage = 0, Action<int, int>? progress = null)
    {
        int n = labels.Length, per = _channels * _size * _size;
        if (n == 0) throw new ArgumentException("no labels to sample");
        if (steps is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps must be in 1..1000");
        if (!double.IsFinite(guidance) || guidance < 0) throw new ArgumentOutOfRangeException(nameof(guidance), guidance, "guidance scale must be finite and ≥ 0");
        if (firstImage < 0 || firstImage + n > (long)(ulong.MaxValue / StreamsPerImage)) throw new ArgumentOutOfRangeException(nameof(firstImage));
        if (kind is not (SamplerKind.Ddpm or SamplerKind.Ddim)) throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown sampler");
        var schedule = DiffusionSchedule.Linear().Respace(steps);

        var x = new float[n * per];                           // (N, C, H, W)
        for (int j = 0; j < n; j++) GaussianNoise.Fill(seed, Stream(firstImage + j, 0), x.AsSpan(j * per, per));
        var eps = new float[n * per];
        var varValues = _learnSigma ? new float[n * per] : null;
        var z = kind == SamplerKind.Ddpm ? new float[per] : null;

        for (int i = steps - 1, done = 1; i >= 0; i--, done++)
        {
            GuidedModel(x, schedule.TimestepMap[i], labels, guidance, eps, varValues);
            double recip = schedule.SqrtRecipAlphasCumprod[i], recipm1 = schedule.SqrtRecipm1AlphasCumprod[i];
            for (int j = 0; j < n; j++)
            {
                if (z != null && i > 0) GaussianNoise.Fill(seed, Stream(firstImage + j, 1 + i), z);
                for (int e = 0; e < per; e++)
                {
                    int k = j * per + e;
                    double xt = x[k], predX0 = Math.Clamp(recip * xt - recipm1 * eps[k], -1, 1);
                    if (kind == SamplerKind.Ddim)
                    {
                        // eta = 0: x_{t−1} = √ᾱ_{t−1}·x̂0 + √(1 − ᾱ_{t−1})·ε̂, ε̂ re-derived from the clipped x̂0.
                        double acPrev = schedule.AlphasCumprodPrev[i], epsHat = (recip * xt - predX0) / recipm1;
                        x[k] = (float)(Math.Sqrt(acPrev) * predX0 + Math.Sqrt(1 - acPrev) * epsHat);
                    }
                    else
                    {
                        double mean = schedule.PosteriorMeanCoef1[i] * predX0 + schedule.PosteriorMeanCoef2[i] * xt;
                        double logVar = varValues != null
                            ? (varValues[k] + 1.0) / 2 * schedule.LogBetas[i] + (1 - (varValues[k] + 1.0) / 2) * schedule.PosteriorLogVarianceClipped[i]
                            : schedule.FixedLargeLogVariance[i];
                        x[k] = (float)(i > 0 ? mean + Math.Exp(0.5 * logVar) * z![e] : mean);
                    }
                }
            }
            progress?.Invoke(done, steps);
        }
        for (int k = 0; k < x.Length; k++) x[k] = Math.Clamp(x[k], -1f, 1f); // the last step's mean is x̂0 up to rounding
        return x;
    }

    static ulong Stream(long image, int step) => (ulong)image * StreamsPerImage + (ulong)step;

    /// <summary>ε (N, C, H, W) and, with learned sigma, the variance values v (N, C, H, W), guided with scale s.</summary>
    void GuidedModel(float[] x, int timestep, ReadOnlySpan<int> labels, double guidance, float[] eps, float[]? varValues)
    {
        int n = labels.Length, per = _channels * _size * _size, outPer = (_learnSigma ? 2 : 1) * per;
        bool guided = guidance != 1.0;
        int batch = guided ? 2 * n : n;
        if (_labels.Length != batch)
        {
            (_input, _output, _timesteps, _labels) = (new float[batch * per], new float[batch * outPer], new int[batch], new int[batch]);
        }
        x.CopyTo(_input, 0);
        labels.CopyTo(_labels);
        if (guided)
        {
            x.CopyTo(_input, n * per);                         // (2N, C, H, W): conditional, then unconditional
            _labels.AsSpan(n).Fill(_nullClass);
        }
        _timesteps.AsSpan().Fill(timestep);
        _model(_input, _timesteps, _labels, _output);
        float s = (float)guidance;
        for (int j = 0; j < n; j++)
        {
            ReadOnlySpan<float> cond = _output.AsSpan(j * outPer, outPer);
            if (guided)
            {
                ReadOnlySpan<float> uncond = _output.AsSpan((n + j) * outPer, per);
                for (int e = 0; e < per; e++) eps[j * per + e] = uncond[e] + s * (cond[e] - uncond[e]);
            }
            else cond[..per].CopyTo(eps.AsSpan(j * per, per));
            if (varValues != null) cond.Slice(per, per).CopyTo(varValues.AsSpan(j * per, per));
        }
    }
}
