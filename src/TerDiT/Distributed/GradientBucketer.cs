using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace TerDiT.Distributed;

/// <summary>
/// Averages parameter gradients across ranks the way PyTorch DDP does, in buckets: the gradients are
/// packed into flat buffers of about <c>bucketBytes</c> each (one dtype and device per bucket, filled in
/// reverse registration order, which is roughly the order backward produces them), every buffer is
/// all-reduced in one grouped collective, divided by WorldSize and unpacked into the gradients.
/// After <see cref="AverageGradients"/> every rank holds <c>mean over ranks of grad_r</c>, bit-identical
/// on all ranks, so W ranks with per-rank batch B take the same step as one process with batch W·B
/// (when the loss is a mean over the batch).
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
    readonly Bucket[] buckets;

    /// <param name="parameters">The parameters to synchronise, with names for error messages; those with
    /// <c>requires_grad</c> false are skipped. Every rank must pass the same list in the same order.</param>
    /// <param name="bucketBytes">Target bucket size; a parameter larger than this gets a bucket of its own.</param>
    public GradientBucketer(IEnumerable<(string Name, Parameter Param)> parameters, ICommunicator communicator, long bucketBytes = DefaultBucketBytes)
    {
        if (bucketBytes <= 0) throw new ArgumentOutOfRangeException(nameof(bucketBytes), $"bucket size must be positive, not {bucketBytes}");
        this.communicator = communicator;
        var list = parameters.Where(p => p.Param.requires_grad).Reverse().ToArray();
        var result = new List<Bucket>();
        var current = new List<(string, Parameter)>();
        long bytes = 0;
        foreach (var p in list)
        {
            long size = p.Param.NumberOfElements * p.Param.ElementSize;
            bool compatible = current.Count == 0 || (current[0].Item2.dtype == p.Param.dtype && current[0].Item2.device.ToString() == p.Param.device.ToString());
            if (current.Count > 0 && (!compatible || bytes + size > bucketBytes))
            {
                result.Add(new Bucket(current.ToArray()));
                current.Clear(); bytes = 0;
            }
            current.Add(p); bytes += size;
        }
        if (current.Count > 0) result.Add(new Bucket(current.ToArray()));
        buckets = result.ToArray();
    }

    /// <summary>Number of buckets.</summary>
    public int BucketCount => buckets.Length;

    /// <summary>Names of the parameters in each bucket, in packing order.</summary>
    public IReadOnlyList<IReadOnlyList<string>> BucketParameters => buckets.Select(b => (IReadOnlyList<string>)b.Parameters.Select(p => p.Name).ToArray()).ToArray();

    /// <summary>
    /// Replaces every gradient by its mean over ranks. Every synchronised parameter must have a
    /// gradient on every rank (unused parameters are not supported: a rank without a gradient throws,
    /// naming the parameter). With one rank the gradients go through the same packing and collective
    /// and come back unchanged (what the NCCL self-test exercises).
    /// </summary>
    public void AverageGradients()
    {
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        foreach (var b in buckets) b.Pack();
        communicator.AllReduceSum(buckets.Select(b => b.Buffer!).ToArray());
        foreach (var b in buckets) b.UnpackAverage(communicator.WorldSize);
    }

    public void Dispose()
    {
        foreach (var b in buckets) b.Buffer?.Dispose();
    }

    sealed class Bucket((string Name, Parameter Param)[] parameters)
    {
        public (string Name, Parameter Param)[] Parameters => parameters;
        public Tensor? Buffer { get; private set; }

        public void Pack()
        {
            var first = parameters[0].Param;
            Buffer ??= torch.empty(parameters.Sum(p => p.Param.NumberOfElements), first.dtype, first.device).DetachFromDisposeScope();
            long offset = 0;
            foreach (var (name, p) in parameters)
            {
                var g = p.grad ?? throw new InvalidOperationException(
                    $"parameter {name} has no gradient: every trainable parameter must receive a gradient on every rank each step");
                long n = p.NumberOfElements;
                Buffer.narrow(0, offset, n).view(p.shape).copy_(g);
                offset += n;
            }
        }

        public void UnpackAverage(int worldSize)
        {
            Buffer!.div_(worldSize);
            long offset = 0;
            foreach (var (_, p) in parameters)
            {
                long n = p.NumberOfElements;
                p.grad!.copy_(Buffer.narrow(0, offset, n).view(p.shape));
                offset += n;
            }
        }
    }
}
