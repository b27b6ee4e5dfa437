using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// LLaMA RMSNorm over the last dimension: <c>y = x / sqrt(mean(x²) + eps) · weight</c>, the
/// normalisation computed in float32 and cast back to x's dtype before the weight multiplies.
/// Parameter: <c>weight</c> (dim), initialised to ones.
/// </summary>
public sealed class RMSNorm : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;

    public RMSNorm(long dim, double eps = 1e-5) : base(nameof(RMSNorm))
    {
        Eps = eps;
        weight = new Parameter(ones(dim));
        RegisterComponents();
    }

    public double Eps { get; }
    public Parameter Weight => weight;

    /// <summary>(…, dim) → (…, dim).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var xf = x.to(ScalarType.Float32);
        using var eps = Eps.ToScalar();
        var normed = (xf * xf.Squared().mean([-1], keepdim: true).Plus(eps).rsqrt()).to(x.dtype);
        return scope.MoveToOuter(normed * weight);
    }
}
