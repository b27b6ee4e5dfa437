using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Training;

/// <summary>
/// Exponential moving average of a model's parameters, <c>ema ← decay·ema + (1−decay)·p</c> after every
/// optimizer step, starting from a copy of the initial weights (as DiT does), over <see cref="FlatParameters"/>.
/// </summary>
public sealed class Ema : IDisposable
{
    readonly FlatParameters parameters;
    readonly Tensor shadow; // (P), laid out like parameters.Data

    public Ema(FlatParameters parameters, double decay)
    {
        if (decay is < 0 or > 1) throw new ArgumentException($"EMA decay must lie in [0, 1], not {decay}");
        this.parameters = parameters;
        Decay = decay;
        using var _ = torch.no_grad();
        shadow = parameters.Data.detach().clone().DetachFromDisposeScope();
    }

    public double Decay { get; }

    /// <summary>Moves the average one step towards the current parameters (two kernels for the whole model).</summary>
    public void Update()
    {
        using var _ = torch.no_grad();
        using var decay = Decay.ToScalar();
        using var rest = (1 - Decay).ToScalar();
        shadow.mul_(decay).add_(parameters.Data, rest);
    }

    /// <summary>The averaged weights by parameter name (live views, not copies).</summary>
    public IEnumerable<(string Name, Tensor Value)> Weights() => parameters.Views(shadow);

    /// <summary>Restores the averaged weights; every parameter must be present with its shape.</summary>
    public void Load(IReadOnlyDictionary<string, Tensor> weights)
    {
        using var _ = torch.no_grad();
        foreach (var (name, dst) in Weights())
        {
            if (!weights.TryGetValue(name, out var src)) throw new InvalidDataException($"EMA weights lack '{name}'");
            if (!src.shape.SequenceEqual(dst.shape))
                throw new InvalidDataException($"EMA weight '{name}' has shape [{string.Join(", ", src.shape)}], expected [{string.Join(", ", dst.shape)}]");
            dst.copy_(src);
        }
    }

    public void Dispose()
    {
        shadow.Dispose();
    }
}
