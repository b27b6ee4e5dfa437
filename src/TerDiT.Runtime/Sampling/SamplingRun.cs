namespace TerDiT.Runtime.Sampling;

/// <summary>
/// One reverse process over a few images, advanced one model call at a time, so a host can put the rows
/// of several runs (with different steps, samplers or guidance) into the same forward pass: each step,
/// <see cref="WriteModelInput"/> fills this run's rows of the model's input and <see cref="Advance"/>
/// takes the model's output for them. Made by <see cref="DiffusionSampler.Start"/>; the update of a step
/// is <see cref="DiffusionSampler"/>'s (DDPM or DDIM with eta 0, guidance by doubled rows).
/// </summary>
/// <remarks>
/// The rows are images 0..N−1 with their labels, then (guided, <c>s ≠ 1</c>) the same images with the null
/// label. The model is expected to compute each row from that row alone (the runtime's forward does), so the
/// images depend only on the run's arguments, never on the rows placed beside them.
/// </remarks>
public sealed class SamplingRun
{
    readonly DiffusionSchedule _schedule;
    readonly SamplerKind _kind;
    readonly float _guidance;
    readonly bool _guided, _learnSigma, _clip;
    readonly int[] _labels;
    readonly ImageNoise[] _noise;
    readonly int _per, _nullClass, _plane, _guidedChannels;
    readonly float[] _x;               // (N, C, H, W): x_t, then x_0 once complete
    readonly float[]? _z;              // (C, H, W) DDPM noise of one image
    readonly float[] _eps;             // (C, H, W) guided epsilon of one image
    int _next;                         // schedule step of the next model call; −1 once complete

    internal SamplingRun(ReadOnlySpan<int> labels, ReadOnlySpan<ImageNoise> noise, SamplerKind kind, int steps, double guidance,
        int per, bool learnSigma, int nullClass, int plane, int guidedChannels, bool clip)
    {
        if (labels.IsEmpty) throw new ArgumentException("no labels to sample");
        if (noise.Length != labels.Length) throw new ArgumentException($"{noise.Length} noise entries for {labels.Length} labels");
        if (steps is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps must be in 1..1000");
        if (!double.IsFinite(guidance) || guidance < 0) throw new ArgumentOutOfRangeException(nameof(guidance), guidance, "guidance scale must be finite and ≥ 0");
        if (kind is not (SamplerKind.Ddpm or SamplerKind.Ddim)) throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown sampler");
        foreach (var image in noise)
            if (image.Index is < 0 or >= ImageNoise.IndexLimit) throw new ArgumentOutOfRangeException(nameof(noise), image.Index, "image index out of range");
        _schedule = DiffusionSchedule.Linear().Respace(steps);
        (_kind, _guidance, _guided, _learnSigma, _per, _nullClass) = (kind, (float)guidance, guidance != 1.0, learnSigma, per, nullClass);
        (_plane, _guidedChannels, _clip) = (plane, guidedChannels, clip);
        _eps = new float[per];
        _labels = labels.ToArray();
        _noise = noise.ToArray();
        _x = new float[_labels.Length * per];
        for (int j = 0; j < _labels.Length; j++) _noise[j].FillStart(_x.AsSpan(j * per, per));
        _z = kind == SamplerKind.Ddpm ? new float[per] : null;
        _next = steps - 1;
    }

    /// <summary>N, the images of this run.</summary>
    public int Images => _labels.Length;

    /// <summary>Model rows per step: N, or 2N with guidance.</summary>
    public int ModelRows => _guided ? 2 * Images : Images;

    /// <summary>Steps of the respaced schedule.</summary>
    public int Steps => _schedule.NumTimesteps;

    /// <summary>Model calls advanced so far (0..<see cref="Steps"/>).</summary>
    public int StepsDone => Steps - 1 - _next;

    /// <summary>Whether every step is done and <see cref="Result"/> holds x_0.</summary>
    public bool IsComplete => _next < 0;

    /// <summary>
    /// Writes this run's <see cref="ModelRows"/> rows of the next model call: x (rows, C, H, W), the original
    /// timestep of each row, and the labels (images, then null labels when guided).
    /// </summary>
    public void WriteModelInput(Span<float> x, Span<int> timesteps, Span<int> labels)
    {
        EnsureRunning();
        int rows = ModelRows, n = Images;
        if (x.Length != rows * _per || timesteps.Length != rows || labels.Length != rows)
            throw new ArgumentException($"model input for {rows} rows needs {rows}×{_per} floats, {rows} timesteps and {rows} labels");
        _x.CopyTo(x);
        _labels.CopyTo(labels);
        if (_guided)
        {
            _x.CopyTo(x[(n * _per)..]);                       // (2N, C, H, W): conditional, then unconditional
            labels[n..].Fill(_nullClass);
        }
        timesteps.Fill(_schedule.TimestepMap[_next]);
    }

    /// <summary>
    /// Takes the model's output for the rows of <see cref="WriteModelInput"/>, (rows, C or 2C, H, W), and steps x_t
    /// to x_{t−1}: ε = ε_u + s·(ε_c − ε_u) on the guided channels (<see cref="Guidance"/>; the conditional ε alone
    /// when s = 1), variance values from the conditional rows, x̂0 = √(1/ᾱ)·x − √(1/ᾱ − 1)·ε, clipped to [−1, 1]
    /// when clipping; DDIM (eta 0) or DDPM with the image's own noise. After the last step x_0 is clamped to [−1, 1]
    /// when clipping.
    /// </summary>
    public void Advance(ReadOnlySpan<float> output)
    {
        EnsureRunning();
        int n = Images, per = _per, outPer = (_learnSigma ? 2 : 1) * per, i = _next;
        if (output.Length != ModelRows * outPer) throw new ArgumentException($"model output has {output.Length} floats, expected {ModelRows}×{outPer}");
        var s = _schedule;
        double recip = s.SqrtRecipAlphasCumprod[i], recipm1 = s.SqrtRecipm1AlphasCumprod[i];
        for (int j = 0; j < n; j++)
        {
            ReadOnlySpan<float> cond = output.Slice(j * outPer, outPer), eps = cond[..per];
            if (_guided)
            {
                Guidance.Combine(eps, output.Slice((n + j) * outPer, per), _guidance, _plane, _guidedChannels, _eps);
                eps = _eps;
            }
            if (_z != null && i > 0) _noise[j].FillStep(i, _z);
            Span<float> x = _x.AsSpan(j * per, per);
            for (int e = 0; e < per; e++)
            {
                double xt = x[e], predX0 = recip * xt - recipm1 * eps[e];
                if (_clip) predX0 = Math.Clamp(predX0, -1, 1);
                if (_kind == SamplerKind.Ddim)
                {
                    // eta = 0: x_{t−1} = √ᾱ_{t−1}·x̂0 + √(1 − ᾱ_{t−1})·ε̂, ε̂ re-derived from the (clipped) x̂0.
                    double acPrev = s.AlphasCumprodPrev[i], epsHat = (recip * xt - predX0) / recipm1;
                    x[e] = (float)(Math.Sqrt(acPrev) * predX0 + Math.Sqrt(1 - acPrev) * epsHat);
                }
                else
                {
                    double mean = s.PosteriorMeanCoef1[i] * predX0 + s.PosteriorMeanCoef2[i] * xt;
                    double logVar = _learnSigma
                        ? (cond[per + e] + 1.0) / 2 * s.LogBetas[i] + (1 - (cond[per + e] + 1.0) / 2) * s.PosteriorLogVarianceClipped[i]
                        : s.FixedLargeLogVariance[i];
                    x[e] = (float)(i > 0 ? mean + Math.Exp(0.5 * logVar) * _z![e] : mean);
                }
            }
        }
        if (--_next < 0 && _clip)
            for (int k = 0; k < _x.Length; k++) _x[k] = Math.Clamp(_x[k], -1f, 1f); // the last step's mean is x̂0 up to rounding
    }

    /// <summary>x_0 (N, C, H, W), every value in [−1, 1] when clipping; only once <see cref="IsComplete"/>.</summary>
    public ReadOnlySpan<float> Result => IsComplete ? _x : throw new InvalidOperationException($"the run has done {StepsDone} of {Steps} steps");

    void EnsureRunning()
    {
        if (IsComplete) throw new InvalidOperationException("the run is complete");
    }
}
