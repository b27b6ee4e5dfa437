namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// One reverse process over a few images, advanced one model call at a time, so a host can put the rows
/// of several runs (with different steps, samplers or guidance) into the same forward pass: each step,
/// <see cref="WriteModelInput"/> fills this run's rows of the model's input and <see cref="Advance"/>
/// takes the model's output for them. Made by <see cref="DiffusionSampler.Start"/>; a run owns one
/// <see cref="Scheduler"/> (DDPM, DDIM with eta 0 or DPM-Solver++(2M)), and applies classifier-free
/// guidance before the scheduler's step: <c>ε = ε_u + s·(ε_c − ε_u)</c> on the guided epsilon channels
/// (<see cref="Guidance"/>), the variance channels from the conditional rows.
/// </summary>
/// <remarks>
/// The rows are images 0..N−1 with their labels, then (guided, <c>s ≠ 1</c>) the same images with the null
/// label. The model is expected to compute each row from that row alone (the runtime's forward does), so the
/// images depend only on the run's arguments, never on the rows placed beside them. Image j's x_T and the
/// noise of a stochastic step at index i of the scheduler's <see cref="Scheduler.StepSchedule"/> come from
/// its <see cref="ImageNoise"/>.
/// </remarks>
public sealed class SamplingRun
{
    readonly Scheduler _scheduler;
    readonly float _guidance;
    readonly bool _guided, _learnSigma;
    readonly int[] _labels;
    readonly ImageNoise[] _noise;
    readonly int _per, _nullClass, _plane, _guidedChannels;
    readonly float[] _x;               // (N, C, H, W): x_t, then x_0 once complete
    readonly float[] _eps, _variance;  // (N, C, H, W) guided ε and the conditional variance values (empty without learned sigma)
    readonly NoiseSource _stepNoise;
    int _done;                         // model calls advanced so far

    internal SamplingRun(ReadOnlySpan<int> labels, ReadOnlySpan<ImageNoise> noise, Scheduler scheduler, int steps, double guidance,
        int per, bool learnSigma, int nullClass, int plane, int guidedChannels)
    {
        if (labels.IsEmpty) throw new ArgumentException("no labels to sample");
        if (noise.Length != labels.Length) throw new ArgumentException($"{noise.Length} noise entries for {labels.Length} labels");
        if (!double.IsFinite(guidance) || guidance < 0) throw new ArgumentOutOfRangeException(nameof(guidance), guidance, "guidance scale must be finite and ≥ 0");
        foreach (var image in noise)
            if (image.Index is < 0 or >= ImageNoise.IndexLimit) throw new ArgumentOutOfRangeException(nameof(noise), image.Index, "image index out of range");
        _scheduler = scheduler;
        _scheduler.SetTimesteps(steps);
        (_guidance, _guided, _learnSigma, _per, _nullClass) = ((float)guidance, guidance != 1.0, learnSigma, per, nullClass);
        (_plane, _guidedChannels) = (plane, guidedChannels);
        _labels = labels.ToArray();
        _noise = noise.ToArray();
        _x = new float[_labels.Length * per];
        for (int j = 0; j < _labels.Length; j++) _noise[j].FillStart(_x.AsSpan(j * per, per));
        _eps = new float[_x.Length];
        _variance = learnSigma ? new float[_x.Length] : [];
        _stepNoise = z =>
        {
            int i = Steps - 1 - _done; // the step being taken: index n−1 … 1 of the scheduler's StepSchedule
            for (int j = 0; j < _noise.Length; j++) _noise[j].FillStep(i, z.Slice(j * _per, _per));
        };
    }

    /// <summary>N, the images of this run.</summary>
    public int Images => _labels.Length;

    /// <summary>Model rows per step: N, or 2N with guidance.</summary>
    public int ModelRows => _guided ? 2 * Images : Images;

    /// <summary>Steps (model calls) of the run.</summary>
    public int Steps => _scheduler.Timesteps.Length;

    /// <summary>Model calls advanced so far (0..<see cref="Steps"/>).</summary>
    public int StepsDone => _done;

    /// <summary>Whether every step is done and <see cref="Result"/> holds x_0.</summary>
    public bool IsComplete => _done == Steps;

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
        timesteps.Fill(_scheduler.Timesteps[_done]);
    }

    /// <summary>
    /// Takes the model's output for the rows of <see cref="WriteModelInput"/>, (rows, C or 2C, H, W), guides it
    /// (ε = ε_u + s·(ε_c − ε_u) on the guided channels, <see cref="Guidance"/>; the conditional ε alone when s = 1;
    /// variance values from the conditional rows) and takes the scheduler's step from x_t to the next sample. After the
    /// last step x_0 is clamped to [−1, 1] when the scheduler clips samples (<see cref="Scheduler.ClipSample"/>).
    /// </summary>
    public void Advance(ReadOnlySpan<float> output)
    {
        EnsureRunning();
        int n = Images, per = _per, outPer = (_learnSigma ? 2 : 1) * per;
        if (output.Length != ModelRows * outPer) throw new ArgumentException($"model output has {output.Length} floats, expected {ModelRows}×{outPer}");
        for (int j = 0; j < n; j++)
        {
            ReadOnlySpan<float> cond = output.Slice(j * outPer, outPer);
            Span<float> eps = _eps.AsSpan(j * per, per);
            if (_guided) Guidance.Combine(cond[..per], output.Slice((n + j) * outPer, per), _guidance, _plane, _guidedChannels, eps);
            else cond[..per].CopyTo(eps);
            if (_learnSigma) cond.Slice(per, per).CopyTo(_variance.AsSpan(j * per, per));
        }
        _scheduler.Step(new ModelOutput(_eps, _variance), _scheduler.Timesteps[_done], _x, noise: _stepNoise);
        if (++_done == Steps && _scheduler.ClipSample)
            for (int k = 0; k < _x.Length; k++) _x[k] = Math.Clamp(_x[k], -1f, 1f); // DDPM's last mean is x̂0 up to rounding
    }

    /// <summary>x_0 (N, C, H, W), every value in [−1, 1] when the scheduler clips samples; only once <see cref="IsComplete"/>.</summary>
    public ReadOnlySpan<float> Result => IsComplete ? _x : throw new InvalidOperationException($"the run has done {StepsDone} of {Steps} steps");

    void EnsureRunning()
    {
        if (IsComplete) throw new InvalidOperationException("the run is complete");
    }
}
