namespace TerDiT.Runtime.Diffusion;

/// <summary>Writes the standard-normal noise of the current step, (N, C, H, W) like the sample, into the span.</summary>
public delegate void NoiseSource(Span<float> noise);

/// <summary>
/// What a scheduler reads of the model's output at x_t: ε (N, C, H, W) and, for a learned-sigma model, the
/// variance interpolation values v (N, C, H, W) (empty otherwise). Guidance is applied before, by the caller.
/// </summary>
public readonly ref struct ModelOutput
{
    /// <param name="epsilon">ε (N, C, H, W).</param>
    /// <param name="varianceValues">v (N, C, H, W), or empty when the model has no variance channels.</param>
    public ModelOutput(ReadOnlySpan<float> epsilon, ReadOnlySpan<float> varianceValues = default)
    {
        Epsilon = epsilon;
        VarianceValues = varianceValues;
    }

    /// <summary>ε (N, C, H, W).</summary>
    public ReadOnlySpan<float> Epsilon { get; }

    /// <summary>v (N, C, H, W), or empty.</summary>
    public ReadOnlySpan<float> VarianceValues { get; }
}

/// <summary>
/// A reverse-process scheduler, the contract of diffusers' schedulers: <see cref="SetTimesteps"/>(n) chooses the n
/// original timesteps at which the model is called, <see cref="Timesteps"/> lists them in calling order (highest
/// first), and <see cref="Step"/>(modelOutput, t, sample) turns x_t into the sample at the next timestep (x_0 after
/// the last one), giving x̂0 as well. A sampling loop depends only on this, so DDPM, DDIM and DPM-Solver++ swap in one
/// line; the model call and classifier-free guidance stay outside.
/// </summary>
/// <remarks>
/// The schedule arithmetic is float64 (<see cref="DiffusionSchedule"/>); each element's update is computed in double
/// and stored as float. Steps must be taken in the order of <see cref="Timesteps"/>; <see cref="SetTimesteps"/>
/// starts over (and forgets a multistep solver's history). One sampling run at a time per instance.
/// </remarks>
public abstract class Scheduler
{
    DiffusionSchedule? _stepSchedule;
    int[] _timesteps = [];
    int _next;

    /// <param name="trainSchedule">The schedule the model was trained with.</param>
    /// <param name="clipSample">Whether x̂0 is clipped to [−1, 1] (pixel models; latent models sample without clipping).</param>
    protected Scheduler(DiffusionSchedule trainSchedule, bool clipSample)
    {
        TrainSchedule = trainSchedule ?? throw new ArgumentNullException(nameof(trainSchedule));
        ClipSample = clipSample;
    }

    /// <summary>The schedule the model was trained with.</summary>
    public DiffusionSchedule TrainSchedule { get; }

    /// <summary>Whether x̂0 is clipped to [−1, 1] before it is used.</summary>
    public bool ClipSample { get; }

    /// <summary>The original timesteps the model is called at, in calling order (highest first); empty before <see cref="SetTimesteps"/>.</summary>
    public ReadOnlySpan<int> Timesteps => _timesteps;

    /// <summary>
    /// <see cref="TrainSchedule"/> respaced to the sampling steps: its step i is original timestep <c>TimestepMap[i]</c>, so
    /// the model is called at steps n−1, …, 0, and its <c>AlphasCumprodPrev[0]</c> = 1 is the end of sampling (x_0).
    /// </summary>
    /// <exception cref="InvalidOperationException">Before <see cref="SetTimesteps"/>.</exception>
    public DiffusionSchedule StepSchedule => _stepSchedule ?? throw new InvalidOperationException("call SetTimesteps before sampling");

    /// <summary>The most sampling steps this scheduler takes on <see cref="TrainSchedule"/>: its length, unless a scheduler needs fewer.</summary>
    public virtual int MaxSteps => TrainSchedule.NumTimesteps;

    /// <summary>Chooses <paramref name="count"/> sampling steps (1..<see cref="MaxSteps"/>) and starts a new sampling run.</summary>
    /// <exception cref="ArgumentOutOfRangeException">count outside what this scheduler supports for the training schedule.</exception>
    public void SetTimesteps(int count)
    {
        _stepSchedule = TrainSchedule.Respace(KeptSteps(count));
        _timesteps = _stepSchedule.TimestepMap.ToArray();
        Array.Reverse(_timesteps);
        _next = 0;
        Restart();
    }

    /// <summary>
    /// One reverse step at <paramref name="timestep"/>, which must be the next entry of <see cref="Timesteps"/>:
    /// <paramref name="sample"/> holds x_t (N, C, H, W) on entry and the sample at the next timestep on return (x_0
    /// after the last step). <paramref name="predX0"/>, when not empty, receives x̂0 (N, C, H, W) as the step used it
    /// (clipped with <see cref="ClipSample"/>). A stochastic step asks <paramref name="noise"/> for its noise.
    /// </summary>
    /// <exception cref="ArgumentException">Span lengths disagree.</exception>
    /// <exception cref="InvalidOperationException">Out of order, before <see cref="SetTimesteps"/>, or noise needed but not given.</exception>
    public void Step(ModelOutput modelOutput, int timestep, Span<float> sample, Span<float> predX0 = default, NoiseSource? noise = null)
    {
        var steps = StepSchedule;
        if (_next >= _timesteps.Length) throw new InvalidOperationException($"all {_timesteps.Length} steps are taken; call SetTimesteps to sample again");
        if (timestep != _timesteps[_next]) throw new InvalidOperationException($"step {_next} is at timestep {_timesteps[_next]}, not {timestep}");
        if (modelOutput.Epsilon.Length != sample.Length) throw new ArgumentException($"ε has {modelOutput.Epsilon.Length} values for a sample of {sample.Length}");
        if (!modelOutput.VarianceValues.IsEmpty && modelOutput.VarianceValues.Length != sample.Length)
            throw new ArgumentException($"variance values have {modelOutput.VarianceValues.Length} values for a sample of {sample.Length}");
        if (!predX0.IsEmpty && predX0.Length != sample.Length) throw new ArgumentException($"x̂0 has room for {predX0.Length} values, the sample has {sample.Length}");
        StepAt(steps.NumTimesteps - 1 - _next, modelOutput, sample, predX0, noise);
        _next++;
    }

    /// <summary>The steps of <see cref="TrainSchedule"/> to sample at, strictly increasing.</summary>
    protected abstract int[] KeptSteps(int count);

    /// <summary>Forgets the state of a previous run (nothing for one-step schedulers).</summary>
    protected virtual void Restart() { }

    /// <summary>The step at index <paramref name="i"/> of <see cref="StepSchedule"/> (n−1 first, 0 last); arguments are checked.</summary>
    protected abstract void StepAt(int i, ModelOutput modelOutput, Span<float> sample, Span<float> predX0, NoiseSource? noise);

    /// <summary>
    /// x̂0 = √(1/ᾱ_i)·x − √(1/ᾱ_i − 1)·ε (Ho et al. 2020, eq. (15)), clipped to [−1, 1] with <see cref="ClipSample"/>.
    /// </summary>
    protected double PredictX0(int i, double x, double eps)
    {
        var s = StepSchedule;
        double x0 = s.SqrtRecipAlphasCumprod[i] * x - s.SqrtRecipm1AlphasCumprod[i] * eps;
        return ClipSample ? Math.Clamp(x0, -1, 1) : x0;
    }
}
