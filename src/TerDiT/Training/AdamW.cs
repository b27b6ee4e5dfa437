using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Training;

/// <summary>
/// AdamW with PyTorch's exact update (torch.optim.AdamW, amsgrad off), written on tensors so its
/// whole state (two moments per parameter and the step count) can be saved and restored exactly:
/// <code>
/// p ← p·(1 − lr·wd)
/// m ← β1·m + (1−β1)·g;   v ← β2·v + (1−β2)·g²
/// p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε)
/// </code>
/// It updates <see cref="FlatParameters"/> as one buffer: six kernels a step for the whole model. Unlike
/// torch's, a parameter that received no gradient is not skipped (its gradient reads as zero).
/// </summary>
public sealed class AdamW : IDisposable
{
    readonly FlatParameters parameters;
    readonly Tensor expAvg, expAvgSq; // (P) each, laid out like parameters.Data

    public const double DefaultBeta1 = 0.9, DefaultBeta2 = 0.999, DefaultEps = 1e-8;

    public AdamW(FlatParameters parameters, double lr = 1e-4, double beta1 = DefaultBeta1, double beta2 = DefaultBeta2,
        double eps = DefaultEps, double weightDecay = 0)
    {
        if (lr <= 0 || !double.IsFinite(lr)) throw new ArgumentException($"learning rate must be positive, not {lr}");
        if (beta1 is < 0 or >= 1 || beta2 is < 0 or >= 1) throw new ArgumentException("Adam betas must lie in [0, 1)");
        if (weightDecay < 0) throw new ArgumentException($"weight decay must be ≥ 0, not {weightDecay}");
        this.parameters = parameters;
        LearningRate = lr; Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
        expAvg = parameters.ZerosLikeData();
        expAvgSq = parameters.ZerosLikeData();
    }

    public double LearningRate { get; }
    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }
    /// <summary>Updates taken so far (t in the bias corrections).</summary>
    public long StepCount { get; private set; }

    /// <summary>Applies one update from the parameters' current gradients.</summary>
    public void Step()
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(Beta1, StepCount), bc2Sqrt = Math.Sqrt(1 - Math.Pow(Beta2, StepCount));
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var (p, g) = (parameters.Data, parameters.Grad);
        using var s = new ScalarHolder();
        if (WeightDecay != 0) p.mul_(s.Of(1 - LearningRate * WeightDecay));
        expAvg.lerp_(g, torch.tensor(1 - Beta1));
        expAvgSq.mul_(s.Of(Beta2)).addcmul_(g, g, s.Of(1 - Beta2));
        var denom = expAvgSq.sqrt().div_(s.Of(bc2Sqrt)).PlusInPlace(s.Of(Eps));
        p.addcdiv_(expAvg, denom, s.Of(-LearningRate / bc1));
    }

    /// <summary>The moments by name: <c>exp_avg.NAME</c> and <c>exp_avg_sq.NAME</c> (live views, not copies).</summary>
    public IEnumerable<(string Name, Tensor Value)> State() =>
        parameters.Views(expAvg).Select(v => ("exp_avg." + v.Name, v.View))
            .Concat(parameters.Views(expAvgSq).Select(v => ("exp_avg_sq." + v.Name, v.View)));

    /// <summary>Restores <see cref="State"/> and <see cref="StepCount"/>; every moment must be present with its parameter's shape.</summary>
    public void LoadState(long stepCount, IReadOnlyDictionary<string, Tensor> state)
    {
        if (stepCount < 0) throw new InvalidDataException($"optimizer step count {stepCount} is negative");
        using var _ = torch.no_grad();
        foreach (var (name, dst) in State())
        {
            if (!state.TryGetValue(name, out var src)) throw new InvalidDataException($"optimizer state lacks '{name}'");
            if (!src.shape.SequenceEqual(dst.shape))
                throw new InvalidDataException($"optimizer state '{name}' has shape [{string.Join(", ", src.shape)}], expected [{string.Join(", ", dst.shape)}]");
            dst.copy_(src);
        }
        StepCount = stepCount;
    }

    public void Dispose()
    {
        expAvg.Dispose();
        expAvgSq.Dispose();
    }
}
