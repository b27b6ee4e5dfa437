namespace TerDiT.Training;

/// <summary>Arithmetic of the forward and backward matmuls; master weights and optimizer state are always fp32.</summary>
public enum TrainPrecision
{
    Fp32,
    /// <summary>bf16 matmuls and attention on fp32 master weights (<see cref="TerDiT.Model.TerDiTModel.ComputeDType"/>).</summary>
    Bf16,
}

/// <summary>
/// How to train. The optimisation fields (<see cref="BatchSize"/>, <see cref="LearningRate"/>,
/// <see cref="WeightDecay"/>, <see cref="GradClip"/>, <see cref="EmaDecay"/>, <see cref="Seed"/>) are stored
/// in every checkpoint and must be unchanged on resume; <see cref="Steps"/> and the intervals may change.
/// </summary>
public sealed record TrainOptions
{
    /// <summary>
    /// Most optimizer steps a run may have: 10⁹, so that the sample position <c>step · batch</c> fits a 64-bit
    /// integer for any batch size.
    /// </summary>
    public const long MaxSteps = 1_000_000_000;

    /// <summary>Total optimizer steps of the run (a resumed run continues up to this count), at most <see cref="MaxSteps"/>.</summary>
    public long Steps { get; init; } = 1000;
    public int BatchSize { get; init; } = 32;
    /// <summary>AdamW learning rate (constant, no warm-up, as in Large-DiT).</summary>
    public double LearningRate { get; init; } = 1e-4;
    public double WeightDecay { get; init; } = 0;
    /// <summary>Maximum global L2 norm of the gradients; ≤ 0 disables clipping.</summary>
    public double GradClip { get; init; } = 2.0;
    public double EmaDecay { get; init; } = 0.9999;
    /// <summary>Seeds the model initialisation, the data order and every per-step random draw.</summary>
    public ulong Seed { get; init; }
    /// <summary>A checkpoint every this many steps (and always at the end); ≤ 0: only at the end.</summary>
    public long CheckpointEvery { get; init; } = 1000;
    /// <summary>A metrics line every this many steps (and at the end).</summary>
    public long LogEvery { get; init; } = 10;
    /// <summary>Matmul precision; may change between a run and its resumption.</summary>
    public TrainPrecision Precision { get; init; } = TrainPrecision.Fp32;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field by its <c>terdit train</c> option.</summary>
    public TrainOptions Validate()
    {
        void Require(bool ok, string what) { if (!ok) throw new ArgumentException(what); }
        Require(Steps is >= 0 and <= MaxSteps, $"--steps must lie in [0, {MaxSteps}], not {Steps}");
        Require(BatchSize > 0, $"--batch must be positive, not {BatchSize}");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), $"--lr must be positive, not {LearningRate}");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), $"--weight-decay must be ≥ 0, not {WeightDecay}");
        Require(double.IsFinite(GradClip), $"--grad-clip must be finite, not {GradClip}");
        Require(EmaDecay is >= 0 and <= 1, $"--ema-decay must lie in [0, 1], not {EmaDecay}");
        Require(LogEvery > 0, $"--log-every must be positive, not {LogEvery}");
        Require(Enum.IsDefined(Precision), $"--precision {(int)Precision} is not one of {string.Join(", ", Enum.GetNames<TrainPrecision>())}");
        return this;
    }

    /// <summary>The first optimisation field in which <paramref name="other"/> differs, as "name a vs b", or null.</summary>
    public string? OptimisationDifference(TrainOptions other)
    {
        (string, object, object)[] fields =
        [
            ("batch", BatchSize, other.BatchSize), ("lr", LearningRate, other.LearningRate),
            ("weight-decay", WeightDecay, other.WeightDecay), ("grad-clip", GradClip, other.GradClip),
            ("ema-decay", EmaDecay, other.EmaDecay), ("seed", Seed, other.Seed),
        ];
        foreach (var (name, a, b) in fields)
            if (!a.Equals(b)) return $"--{name} {b} (the checkpoint was trained with {a})";
        return null;
    }
}
