using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace TerDiT.Training;

/// <summary>
/// Exponential moving average of a model's parameters, <c>ema ← decay·ema + (1−decay)·p</c> after every
/// optimizer step, starting from a copy of the initial weights (as DiT does).
/// </summary>
public sealed class Ema : IDisposable
{
    readonly (string Name, Parameter Param)[] parameters;
    readonly Tensor[] shadow;

    public Ema(IEnumerable<(string Name, Parameter Param)> parameters, double decay)
    {
        if (decay is < 0 or > 1) throw new ArgumentException($"EMA decay must lie in [0, 1], not {decay}");
        this.parameters = parameters.ToArray();
        Decay = decay;
        using var _ = torch.no_grad();
        shadow = this.parameters.Select(p => p.Param.detach().clone().DetachFromDisposeScope()).ToArray();
    }

    public double Decay { get; }

    /// <summary>Moves the average one step towards the current parameters.</summary>
    public void Update()
    {
        using var _ = torch.no_grad();
        for (int i = 0; i < shadow.Length; i++)
            shadow[i].mul_(Decay).add_(parameters[i].Param, 1 - Decay);
    }

    /// <summary>The averaged weights by parameter name (live tensors, not copies).</summary>
    public IEnumerable<(string Name, Tensor Value)> Weights() => parameters.Select((p, i) => (p.Name, shadow[i]));

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
        foreach (var t in shadow) t.Dispose();
    }
}
