using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// A module whose matrix products can run in a lower precision than its parameters (mixed precision,
/// docs/DESIGN.md "Mixed precision"). <c>null</c> (the default) computes in the parameters' dtype.
/// </summary>
public interface IComputePrecision
{
    /// <summary>
    /// The dtype of the matmuls (and of attention), or <c>null</c> for the parameters' dtype.
    /// Only <c>null</c>, <see cref="ScalarType.Float32"/> and <see cref="ScalarType.BFloat16"/> are allowed.
    /// </summary>
    ScalarType? ComputeDType { get; set; }
}

/// <summary>The linear product shared by the plain and ternary linears, and the dtype check.</summary>
public static class ComputePrecision
{
    /// <summary>
    /// <c>x · weightᵀ + bias</c> computed in <paramref name="dtype"/> (null = the weight's dtype): x, weight
    /// and bias are cast to it first (casts are differentiable, so gradients reach the parameters in
    /// their own dtype) and the result is in that dtype. x (…, in), weight (out, in), bias (out) → (…, out).
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias, ScalarType? dtype)
    {
        var dt = dtype ?? weight.dtype;
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(nn.functional.linear(x.to(dt), weight.to(dt), bias?.to(dt)));
    }

    /// <summary>Returns <paramref name="dtype"/> if it is null, Float32 or BFloat16; throws otherwise.</summary>
    public static ScalarType? Check(ScalarType? dtype) => dtype is null or ScalarType.Float32 or ScalarType.BFloat16
        ? dtype
        : throw new ArgumentException($"compute dtype must be Float32 or BFloat16 (or null for the parameters' dtype), got {dtype}");
}
