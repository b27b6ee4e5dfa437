using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Distributed;

/// <summary>
/// Averages the gradients across ranks in buckets, as PyTorch DDP does: the gradients live in one flat
/// buffer (<see cref="Training.FlatParameters.Grad"/>), which is cut into consecutive slices of at most
/// <c>bucketBytes</c>; every slice is all-reduced in one grouped collective, and the buffer divided by
/// WorldSize. No packing or copying: the slices are views of the gradients themselves. Afterwards every
/// rank holds <c>mean over ranks of grad_r</c>, bit-identical on all ranks, so W ranks with per-rank batch
/// B take the same step as one process with batch W·B (when the loss is a mean over the batch).
/// <para>
/// Not overlapped with backward: TorchSharp 0.107 exposes no tensor gradient hooks (no
/// <c>Tensor.register_hook</c> nor post-accumulate-grad hooks; only module forward hooks), so there is
/// no signal that a bucket's gradients are final before <c>backward()</c> returns. Call this after
/// backward and before gradient clipping and the optimizer step.
/// </para>
/// </summary>
public sealed class GradientBucketer : IDisposable
{
    /// <summary>PyTorch DDP's default bucket size, 25 MiB.</summary>
    public const long DefaultBucketBytes = 25L << 20;

    readonly ICommunicator communicator;
    readonly Tensor gradient;   // (P)
    readonly Tensor[] buckets;  // consecutive views of gradient

    /// <param name="gradient">The flat gradient buffer (one dimension), the same size on every rank.</param>
    /// <param name="bucketBytes">Largest bucket; the last one holds the remainder.</param>
    public GradientBucketer(Tensor gradient, ICommunicator communicator, long bucketBytes = DefaultBucketBytes)
    {
        if (bucketBytes <= 0) throw new ArgumentOutOfRangeException(nameof(bucketBytes), $"bucket size must be positive, not {bucketBytes}");
        if (gradient.dim() != 1 || !gradient.is_contiguous()) throw new ArgumentException("the gradient buffer must be flat and contiguous");
        this.communicator = communicator;
        this.gradient = gradient;
        long perBucket = Math.Max(1, bucketBytes / gradient.ElementSize), total = gradient.NumberOfElements;
        buckets = Enumerable.Range(0, (int)((total + perBucket - 1) / perBucket))
            .Select(i => gradient.narrow(0, i * perBucket, Math.Min(perBucket, total - i * perBucket)).DetachFromDisposeScope())
            .ToArray();
    }

    /// <summary>Number of buckets.</summary>
    public int BucketCount => buckets.Length;

    /// <summary>Elements in each bucket, in buffer order.</summary>
    public IReadOnlyList<long> BucketElements => buckets.Select(b => b.NumberOfElements).ToArray();

    /// <summary>
    /// Replaces every gradient by its mean over ranks. With one rank the gradients go through the same
    /// collective and come back unchanged (what the NCCL self-test exercises).
    /// </summary>
    public void AverageGradients()
    {
        using var _ = torch.no_grad();
        communicator.AllReduceSum(buckets);
        if (communicator.WorldSize > 1)
        {
            using var worldSize = ((long)communicator.WorldSize).ToScalar();
            gradient.div_(worldSize);
        }
    }

    public void Dispose()
    {
        foreach (var b in buckets) b.Dispose();
    }
}
