using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Evaluation;

/// <summary>Mean (D) and unbiased covariance (D, D) of a feature set, float64 on the CPU.</summary>
public sealed class FeatureStatistics : IDisposable
{
    FeatureStatistics(Tensor mean, Tensor covariance, int count) { Mean = mean; Covariance = covariance; Count = count; }

    /// <summary>(D) float64.</summary>
    public Tensor Mean { get; }
    /// <summary>(D, D) float64, divided by N − 1.</summary>
    public Tensor Covariance { get; }
    public int Count { get; }

    /// <summary>Statistics of <paramref name="features"/> (N, D), any float dtype and device, N ≥ 2.</summary>
    public static FeatureStatistics FromFeatures(Tensor features)
    {
        if (features.ndim != 2 || features.shape[0] < 2 || features.shape[1] < 1)
            throw new ArgumentException($"expected features of shape (N ≥ 2, D ≥ 1), got ({string.Join(", ", features.shape)})");
        using var scope = NewDisposeScope();
        var x = features.to(float64).cpu();                    // (N, D)
        var mean = x.mean([0]);                                // (D)
        var centred = x - mean;                                // (N, D)
        using var degrees = (x.shape[0] - 1).ToScalar();
        var cov = centred.t().matmul(centred) / degrees;       // (D, D)
        cov = cov.Plus(cov.t()) / Scalars.Two;                 // exactly symmetric
        return new FeatureStatistics(scope.MoveToOuter(mean), scope.MoveToOuter(cov), (int)x.shape[0]);
    }

    public void Dispose() { Mean.Dispose(); Covariance.Dispose(); }
}

/// <summary>
/// Fréchet distance between Gaussians fitted to two feature sets (FID when the features are a network's):
/// <c>d² = |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½</c>, all in float64. The last trace equals
/// tr (Σ₁Σ₂)^½; it is taken through symmetric eigen-decompositions (<c>torch.linalg.eigh</c>): Σ₁^½ from Σ₁'s
/// eigenpairs, then the eigenvalues of the symmetric PSD matrix Σ₁^½ Σ₂ Σ₁^½, whose square roots are summed.
/// Eigenvalues below zero (rounding of PSD matrices) count as zero.
/// </summary>
public static class FrechetDistance
{
    /// <summary>d² between the Gaussians of <paramref name="a"/> and <paramref name="b"/>.</summary>
    public static double Compute(FeatureStatistics a, FeatureStatistics b)
    {
        if (a.Mean.shape[0] != b.Mean.shape[0]) throw new ArgumentException($"feature dimensions differ: {a.Mean.shape[0]} vs {b.Mean.shape[0]}");
        return Compute(a.Mean, a.Covariance, b.Mean, b.Covariance);
    }

    /// <summary>d² between the feature sets <paramref name="a"/> (N₁, D) and <paramref name="b"/> (N₂, D).</summary>
    public static double Compute(Tensor a, Tensor b)
    {
        using var sa = FeatureStatistics.FromFeatures(a);
        using var sb = FeatureStatistics.FromFeatures(b);
        return Compute(sa, sb);
    }

    /// <summary>d² between N(<paramref name="mean1"/>, <paramref name="cov1"/>) and N(<paramref name="mean2"/>, <paramref name="cov2"/>);
    /// means (D), covariances (D, D) symmetric PSD; computed in float64 on the CPU.</summary>
    public static double Compute(Tensor mean1, Tensor cov1, Tensor mean2, Tensor cov2)
    {
        if (mean1.ndim != 1) throw new ArgumentException($"mean1 must be a vector, got ({string.Join(", ", mean1.shape)})");
        long d = mean1.shape[0];
        if (mean2.ndim != 1 || mean2.shape[0] != d) throw new ArgumentException($"mean2 must have shape ({d})");
        foreach (var (t, what) in new[] { (cov1, "cov1"), (cov2, "cov2") })
            if (t.ndim != 2 || t.shape[0] != d || t.shape[1] != d) throw new ArgumentException($"{what} must have shape ({d}, {d})");
        using var scope = NewDisposeScope();
        var m1 = mean1.to(float64).cpu(); var m2 = mean2.to(float64).cpu();
        var c1 = cov1.to(float64).cpu(); var c2 = cov2.to(float64).cpu();
        var s1 = SqrtPsd(c1);                      // (D, D)
        var inner = s1.matmul(c2).matmul(s1);      // (D, D), symmetric PSD
        inner = inner.Plus(inner.t()) / Scalars.Two;
        double traceSqrt = linalg.eigvalsh(inner).clamp_min(Scalars.Zero).sqrt().sum().item<double>();
        double meanTerm = (m1 - m2).Squared().sum().item<double>();
        return meanTerm + c1.trace().item<double>() + c2.trace().item<double>() - 2 * traceSqrt;
    }

    /// <summary>
    /// The symmetric PSD square root S of a symmetric PSD matrix A (D, D): S = V·diag(√max(λ, 0))·Vᵀ from A's eigenpairs,
    /// so S·S = A up to rounding. Returned as float64 on the CPU.
    /// </summary>
    public static Tensor SqrtPsd(Tensor a)
    {
        if (a.ndim != 2 || a.shape[0] != a.shape[1]) throw new ArgumentException($"expected a square matrix, got ({string.Join(", ", a.shape)})");
        using var scope = NewDisposeScope();
        var x = a.to(float64).cpu();
        var (values, vectors) = linalg.eigh(x.Plus(x.t()) / Scalars.Two); // (D), (D, D): columns are eigenvectors
        var s = (vectors * values.clamp_min(Scalars.Zero).sqrt()).matmul(vectors.t());
        return scope.MoveToOuter(s.Plus(s.t()) / Scalars.Two);
    }
}
