using static TorchSharp.torch;

namespace TerDiT.Evaluation;

/// <summary>
/// Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
/// Generative Models"). Each set's manifold is the union of balls around its points whose radius is the distance to
/// the point's k-th nearest other point of the same set. Precision = fraction of generated points inside the real
/// manifold (within the radius of at least one real point, ≤); recall = fraction of real points inside the generated
/// manifold. Euclidean distances in float64 on the chosen device, computed in row blocks of <c>blockSize</c>.
/// </summary>
public static class ManifoldPrecisionRecall
{
    /// <summary>Precision and recall of <paramref name="fake"/> (Nf, D) against <paramref name="real"/> (Nr, D);
    /// both sets need more than <paramref name="k"/> points.</summary>
    public static (double Precision, double Recall) Compute(Tensor real, Tensor fake, int k = 3, Device? device = null, int blockSize = 1024)
    {
        if (real.ndim != 2 || fake.ndim != 2 || real.shape[1] != fake.shape[1])
            throw new ArgumentException($"expected feature matrices (N, D) of equal D, got ({string.Join(", ", real.shape)}) and ({string.Join(", ", fake.shape)})");
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), "k must be at least 1");
        if (real.shape[0] <= k || fake.shape[0] <= k) throw new ArgumentException($"each set needs more than k = {k} points, got {real.shape[0]} real and {fake.shape[0]} generated");
        if (blockSize <= 0) throw new ArgumentOutOfRangeException(nameof(blockSize), "block size must be positive");
        device ??= CPU;
        using var r = real.to(float64).to(device);
        using var f = fake.to(float64).to(device);
        using var realRadii = KthNeighbourSquaredRadii(r, k, blockSize);
        using var fakeRadii = KthNeighbourSquaredRadii(f, k, blockSize);
        return (Coverage(r, realRadii, f, blockSize), Coverage(f, fakeRadii, r, blockSize));
    }

    /// <summary>For each point of x (N, D): squared distance to its k-th nearest other point → (N).</summary>
    static Tensor KthNeighbourSquaredRadii(Tensor x, int k, int blockSize)
    {
        long n = x.shape[0];
        var parts = new List<Tensor>();
        try
        {
            for (long start = 0; start < n; start += blockSize)
            {
                using var scope = NewDisposeScope();
                var d2 = SquaredDistances(x.narrow(0, start, Math.Min(blockSize, n - start)), x); // (B, N)
                // The k+1 smallest include the point itself (distance 0): the k-th other neighbour is the last.
                var kth = d2.topk(k + 1, dim: 1, largest: false, sorted: true).values.select(1, k); // (B)
                parts.Add(scope.MoveToOuter(kth));
            }
            return cat(parts, 0); // (N)
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    /// <summary>Fraction of <paramref name="queries"/> (Q, D) within the radius of at least one point of
    /// <paramref name="manifold"/> (M, D) with squared radii <paramref name="radii2"/> (M).</summary>
    static double Coverage(Tensor manifold, Tensor radii2, Tensor queries, int blockSize)
    {
        long q = queries.shape[0], inside = 0;
        for (long start = 0; start < q; start += blockSize)
        {
            using var scope = NewDisposeScope();
            var d2 = SquaredDistances(queries.narrow(0, start, Math.Min(blockSize, q - start)), manifold); // (B, M)
            inside += d2.le(radii2.unsqueeze(0)).any(1).sum().item<long>();
        }
        return inside / (double)q;
    }

    /// <summary>|a_i − b_j|² for a (B, D), b (M, D) → (B, M), via |a|² + |b|² − 2a·b clamped at 0.</summary>
    static Tensor SquaredDistances(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var d2 = a.Squared().sum(1).unsqueeze(1).Plus(b.Squared().sum(1).unsqueeze(0)) - Scalars.Two * a.matmul(b.t());
        return scope.MoveToOuter(d2.clamp_min(Scalars.Zero));
    }
}
