using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// A plain linear layer <c>y = x · Wᵀ + b</c> with the parameters of <c>nn.Linear</c> (<c>weight</c>
/// (out, in), then <c>bias</c> (out) when requested) whose product runs in <see cref="ComputeDType"/>
/// (<see cref="ComputePrecision.Linear"/>); the output is in that dtype (null: the weight's dtype).
/// </summary>
public sealed class FullPrecisionLinear : nn.Module<Tensor, Tensor>, IComputePrecision
{
    readonly Parameter weight;
    readonly Parameter? bias;
    ScalarType? computeDType;

    /// <summary>
    /// Creates the layer with weight and bias zero; the owning model initialises them
    /// (<see cref="TerDiTModel.Initialize"/>).
    /// </summary>
    public FullPrecisionLinear(long inFeatures, long outFeatures, bool hasBias = true) : base(nameof(FullPrecisionLinear))
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"linear needs positive sizes, got in={inFeatures}, out={outFeatures}");
        weight = new Parameter(zeros(outFeatures, inFeatures));
        bias = hasBias ? new Parameter(zeros(outFeatures)) : null;
        RegisterComponents();
    }

    /// <summary>Weight, (out, in).</summary>
    public Parameter Weight => weight;
    public Parameter? Bias => bias;

    /// <inheritdoc/>
    public ScalarType? ComputeDType { get => computeDType; set => computeDType = ComputePrecision.Check(value); }

    /// <summary>(…, in) → (…, out) in the compute dtype.</summary>
    public override Tensor forward(Tensor input) => ComputePrecision.Linear(input, weight, bias, computeDType);
}
