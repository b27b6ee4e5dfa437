using TerDiT.Runtime.Config;
using TerDiT.Runtime.Format;

namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// The diffusion process a model was trained for: its float64 schedule, how its reverse variance is parameterised,
/// and whether samples are clipped; the one factory of schedulers. Training (TorchSharp's <c>Trainer</c>), the
/// TorchSharp samplers and the runtime sampler all build it with <see cref="For"/>.
/// </summary>
public sealed class DiffusionProcess
{
    /// <param name="schedule">The training schedule.</param>
    /// <param name="variance">How the model's reverse variance is obtained (fixes its output channels: 2C for learned range, else C).</param>
    /// <param name="clipSample">Whether samplers clip x̂0 to [−1, 1] (pixel models; latent models sample without clipping).</param>
    public DiffusionProcess(DiffusionSchedule schedule, VarianceKind variance, bool clipSample = true)
    {
        Schedule = schedule ?? throw new ArgumentNullException(nameof(schedule));
        if (!Enum.IsDefined(variance)) throw new ArgumentOutOfRangeException(nameof(variance), variance, "unknown variance kind");
        (Variance, ClipSample) = (variance, clipSample);
    }

    /// <summary>
    /// The process of a model of <paramref name="config"/>: the schedule of <paramref name="record"/> (a packed file's
    /// <c>diffusion</c> metadata; null = DiT's, <c>{"steps":1000,"schedule":"linear","beta_start":0.0001,"beta_end":0.02}</c>),
    /// learned-range variance when <see cref="TerDiTConfig.LearnSigma"/>, else DiT's fixed large variance; samples clipped
    /// to [−1, 1] for a pixel model, not for a <paramref name="latent"/> model (VAE latents are not bounded).
    /// </summary>
    /// <remarks>"linear" is DiT's named schedule: <see cref="DiffusionSchedule.Linear"/>(steps, beta_start, beta_end).</remarks>
    /// <exception cref="ArgumentException">The record names a schedule other than "linear", or its betas leave (0, 1].</exception>
    public static DiffusionProcess For(TerDiTConfig config, TditDiffusion? record = null, bool latent = false)
    {
        ArgumentNullException.ThrowIfNull(config);
        record ??= new TditDiffusion();
        if (record.Schedule != "linear")
            throw new ArgumentException($"diffusion schedule '{record.Schedule}' is not supported (known: linear)");
        var schedule = DiffusionSchedule.Linear(record.Steps, record.BetaStart, record.BetaEnd);
        return new DiffusionProcess(schedule, config.LearnSigma ? VarianceKind.LearnedRange : VarianceKind.FixedLarge, clipSample: !latent);
    }

    /// <summary>
    /// The process of a packed model: <see cref="For(TerDiTConfig, TditDiffusion?, bool)"/> of its config, its <c>diffusion</c>
    /// record and whether it is a latent model (metadata <c>latent</c>). Every backend's loader builds its sampler over this.
    /// </summary>
    /// <exception cref="TditFormatException">The record names a schedule this runtime cannot build.</exception>
    public static DiffusionProcess For(TditFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        try { return For(file.Config, file.Info.Diffusion, latent: file.Info.Latent is not null); }
        catch (ArgumentException e) { throw new TditFormatException($"{file.Path}: {e.Message}", e); }
    }

    /// <summary>The training schedule (float64).</summary>
    public DiffusionSchedule Schedule { get; }

    /// <summary>How the model's reverse variance is obtained.</summary>
    public VarianceKind Variance { get; }

    /// <summary>Whether the model's output has variance channels (2C instead of C).</summary>
    public bool LearnSigma => Variance == VarianceKind.LearnedRange;

    /// <summary>Whether samplers clip x̂0 to [−1, 1].</summary>
    public bool ClipSample { get; }

    /// <summary>A new scheduler of kind <paramref name="kind"/> over <see cref="Schedule"/>; call <see cref="Scheduler.SetTimesteps"/> next.</summary>
    public Scheduler CreateScheduler(SamplerKind kind) => kind switch
    {
        SamplerKind.Ddpm => new DdpmScheduler(Schedule, Variance, ClipSample),
        SamplerKind.Ddim => new DdimScheduler(Schedule, ClipSample),
        SamplerKind.DpmPlusPlus2M => new DpmSolverMultistepScheduler(Schedule, ClipSample),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown sampler"),
    };

    /// <summary>The most sampling steps <paramref name="kind"/> takes on <see cref="Schedule"/> (<see cref="Scheduler.MaxSteps"/>).</summary>
    public int MaxSteps(SamplerKind kind) => CreateScheduler(kind).MaxSteps;

    /// <summary>
    /// <see cref="Schedule"/> respaced to the <paramref name="steps"/> steps <paramref name="kind"/> samples at
    /// (<see cref="Scheduler.StepSchedule"/>): what a tensor implementation of the same sampler runs over.
    /// </summary>
    public DiffusionSchedule SamplingSchedule(SamplerKind kind, int steps)
    {
        var scheduler = CreateScheduler(kind);
        scheduler.SetTimesteps(steps);
        return scheduler.StepSchedule;
    }
}
